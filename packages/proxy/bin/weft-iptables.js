#!/usr/bin/env node
// Launcher: weft-iptables is TypeScript run by Node 24's type stripping. If an older Node started
// this file (the system one, outside npm scripts), re-run it with the Node the workspace pins.
import { spawnSync } from 'node:child_process';
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
    console.error(`weft-iptables needs Node 24 or newer (this is ${process.version}); run \`npm ci\` in the Weft checkout`);
    process.exit(2);
  }
  const r = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const { runIptablesCli } = await import('../src/capture/cli.ts');
process.exitCode = await runIptablesCli(process.argv.slice(2));
