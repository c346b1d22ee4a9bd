#!/usr/bin/env node
// Launcher: weft-proxy is TypeScript run by Node 24's type stripping. If an older Node started this
// file (the system one, outside npm scripts), run it with the Node the workspace pins, passing
// SIGTERM and SIGINT on so the proxy still drains and stops gracefully.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  let dir = dirname(fileURLToPath(import.meta.url));
  let pinned;
  for (let i = 0; i < 6 && !pinned; i++, dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'node', 'bin', 'node');
    if (existsSync(candidate)) pinned = candidate;
  }
  if (!pinned) {
    console.error(`weft-proxy needs Node 24 or newer (this is ${process.version}); run \`npm ci\` in the Weft checkout`);
    process.exit(2);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
} else {
  const { main } = await import('../src/main.ts');
  process.exit(await main(process.argv.slice(2)));
}
