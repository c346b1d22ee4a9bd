// The launcher every Weft command starts through. Commands are TypeScript that Node 24 runs
// directly (type stripping). Started by an older Node (the system one, outside npm scripts),
// the launcher re-runs the command with the Node the workspace pins, forwarding SIGTERM and
// SIGINT so daemons still shut down gracefully. Plain JavaScript: it must load on old Nodes.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * V8 heap sizing for the proxies: a small, fixed young generation. Requests allocate short-lived
 * objects at a steady rate; small semi-spaces make each scavenge short (the pause lands on request
 * latency) and keep resident memory down, instead of V8's default of growing them to 16 MB each.
 */
export const dataPlaneNodeFlags = ['--max-semi-space-size=4', '--min-semi-space-size=4'];

/**
 * Environment for the proxies' process. MALLOC_ARENA_MAX=2: glibc gives every thread that mallocs
 * an arena of its own (up to 8 per core) and keeps what was freed in it; V8's worker threads
 * (compilation, concurrent marking) left 15-20 MB resident in theirs under load. With two arenas
 * weft-proxy's malloc memory under load was 24.7 MB instead of 29.4 (three runs, no CPU change).
 * A value already in the environment wins.
 */
export const dataPlaneEnv = { MALLOC_ARENA_MAX: '2' };

/**
 * @param {string} binUrl `import.meta.url` of the bin file
 * @param {string} name the command's name, for messages
 * @param {() => Promise<number>} run loads and runs the command, resolving to its exit status
 * @param {{ exit?: 'soft' | 'hard', nodeFlags?: string[], env?: Record<string, string> }} [options] `hard` exits as soon as `run`
 *   resolves (daemons whose handles may linger); `soft` (default) sets the exit code and lets stdout
 *   drain (CLIs). `nodeFlags`: V8/Node flags the command runs with (heap sizing for the data plane);
 *   when Node was started without them the process replaces itself (execve: same pid) with them.
 *   `env`: variables the process starts with (read at startup, as glibc's malloc settings are), unless
 *   already set; set the same way.
 */
export async function launch(binUrl, name, run, options = {}) {
  // WEFT_DATA_PLANE_RUNTIME=/path/to/bun runs the data plane (weft-proxy) on Bun instead of Node:
  // the same TypeScript, for issue 14's side-by-side measurements (bench/proxy, packages/proxy/README.md).
  const runtime = process.env.WEFT_DATA_PLANE_RUNTIME;
  if (runtime && options.nodeFlags && !process.versions.bun && typeof process.execve === 'function') {
    process.execve(runtime, [runtime, fileURLToPath(binUrl), ...process.argv.slice(2)], process.env);
  }
  const major = Number(process.versions.node.split('.')[0]);
  const flags = (options.nodeFlags ?? []).filter((f) => !process.execArgv.includes(f) && !process.execArgv.some((a) => a.startsWith(`${f.split('=')[0]}=`)));
  const env = Object.entries(options.env ?? {}).filter(([k]) => process.env[k] === undefined);
  if (major >= 24 && flags.length + env.length > 0 && typeof process.execve === 'function' && process.env.WEFT_NO_NODE_FLAGS !== '1') {
    try {
      process.execve(process.execPath, [process.execPath, ...process.execArgv, ...flags, fileURLToPath(binUrl), ...process.argv.slice(2)], { ...process.env, ...Object.fromEntries(env) });
    } catch {
      // Not replaced (an unusual platform): run as we are, with V8's default heap sizing.
    }
  }
  if (major >= 24) {
    // V8's compile cache (in the OS temp directory) also keeps the type-stripped TypeScript: later
    // starts skip the stripper entirely, which saves about 15 MB of memory per process and startup time.
    // One directory per user: Node's default is shared, and another user's is not writable.
    module.enableCompileCache?.(join(tmpdir(), `weft-compile-cache-${process.getuid?.() ?? 'user'}`));
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
  const child = spawn(pinned, [...(options.nodeFlags ?? []), fileURLToPath(binUrl), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...options.env, ...process.env } });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
