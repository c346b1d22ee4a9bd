// The launcher every Weft command starts through. Commands are TypeScript that Node 24 runs
// directly (type stripping). Started by an older Node (the system one, outside npm scripts),
// the launcher re-runs the command with the Node the workspace pins, forwarding SIGTERM and
// SIGINT so daemons still shut down gracefully. Plain JavaScript: it must load on old Nodes.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @param {string} binUrl `import.meta.url` of the bin file
 * @param {string} name the command's name, for messages
 * @param {() => Promise<number>} run loads and runs the command, resolving to its exit status
 * @param {{ exit?: 'soft' | 'hard' }} [options] `hard` exits as soon as `run` resolves (daemons
 *   whose handles may linger); `soft` (default) sets the exit code and lets stdout drain (CLIs)
 */
export async function launch(binUrl, name, run, options = {}) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) {
    const code = await run();
    if (options.exit === 'hard') process.exit(code);
    process.exitCode = code;
    return;
  }
  let dir = dirname(fileURLToPath(binUrl));
  let pinned;
  for (let i = 0; i < 6 && !pinned; i++, dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'node', 'bin', 'node');
    if (existsSync(candidate)) pinned = candidate;
  }
  if (!pinned) {
    console.error(`${name} needs Node 24 or newer (this is ${process.version}); run \`npm ci\` in the Weft checkout`);
    process.exit(2);
  }
  const child = spawn(pinned, [fileURLToPath(binUrl), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
