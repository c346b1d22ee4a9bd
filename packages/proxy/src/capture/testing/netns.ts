// Network-namespace "pods" for tests that need real capture: each pod is a network namespace with
// one interface (eth0) on a bridge that lives in a namespace of its own, an address in
// 10.240.0.0/24 that exists only inside these namespaces, and a hosts file naming every pod
// (`ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts). Nothing is added to the
// host's own namespace: no interface, no address, no route, no iptables rule.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { noteSkip, unmet } from '@weft/testing';

export interface NetnsPod {
  /** The pod's short name, resolvable by every pod through its hosts file. */
  name: string;
  /** The network namespace (as `ip netns` knows it). */
  netns: string;
  /** The pod's address on the pod network. */
  address: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Run as this UID and GID (through setpriv, supplementary groups cleared). */
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
}

export interface NetnsLab {
  pods: NetnsPod[];
  pod(name: string): NetnsPod;
  /** Starts a long-running process inside a pod; it is killed by destroy(). */
  spawn(pod: NetnsPod, argv: string[], options?: ExecOptions): ChildProcess;
  /** Runs a command inside a pod to completion. */
  run(pod: NetnsPod, argv: string[], options?: ExecOptions & { timeoutMs?: number }): Promise<RunResult>;
  /** Kills the processes started with spawn(), deletes the namespaces and their /etc/netns files. */
  destroy(): Promise<void>;
}

const requiredTools = ['ip', 'iptables', 'iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore', 'setpriv', 'nsenter', 'curl'];

/**
 * Why the network-namespace tests cannot run here (not root, a tool missing, namespaces not
 * permitted), or undefined when they can. A reason is printed for `npm test`'s summary
 * (@weft/testing noteSkip), so call it while the test file is collected.
 */
export function netnsSkipReason(): string | undefined {
  return noteSkip(netnsUnmet());
}

function netnsUnmet(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  const need = unmet({ root: true, tools: requiredTools });
  if (need) return need;
  const probe = `weft-probe-${randomBytes(3).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `cannot create a network namespace: ${(add.stderr || add.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

function sh(argv: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.on('error', (err) => resolve({ code: 127, stdout, stderr: stderr + err.message }));
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    // A child may exit before reading its input; that is its answer, not an error here.
    child.stdin?.on('error', () => {});
    child.stdin?.end(options.input);
  });
}

async function must(argv: string[]): Promise<void> {
  const r = await sh(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr.trim()}`);
}

function wrap(pod: NetnsPod, argv: string[], options: ExecOptions): string[] {
  const user =
    options.uid === undefined ? [] : ['setpriv', `--reuid=${options.uid}`, `--regid=${options.gid ?? options.uid}`, '--clear-groups', '--'];
  return ['ip', 'netns', 'exec', pod.netns, ...user, ...argv];
}

/**
 * Creates one namespace per name (`weft-<name>-<random>`) on a shared bridge. The pods get
 * 10.240.0.2, .3, ... in the order given. On failure, whatever was created is removed again.
 */
export async function createNetnsLab(names: string[]): Promise<NetnsLab> {
  const suffix = randomBytes(3).toString('hex');
  const bridgeNs = `weft-br-${suffix}`;
  const pods: NetnsPod[] = names.map((name, i) => ({ name, netns: `weft-${name}-${suffix}`, address: `10.240.0.${i + 2}` }));
  const children = new Set<ChildProcess>();
  let destroyed = false;

  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    await Promise.all(
      [...children].map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('close', r)) : undefined)),
    );
    for (const ns of [...pods.map((p) => p.netns), bridgeNs]) {
      await sh(['ip', 'netns', 'del', ns]);
      rmSync(join('/etc/netns', ns), { recursive: true, force: true });
    }
  };

  try {
    await must(['ip', 'netns', 'add', bridgeNs]);
    await must(['ip', '-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await must(['ip', '-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    const hosts = ['127.0.0.1\tlocalhost', '::1\tlocalhost', ...pods.map((p) => `${p.address}\t${p.name}`)].join('\n');
    for (const [i, pod] of pods.entries()) {
      await must(['ip', 'netns', 'add', pod.netns]);
      const dir = join('/etc/netns', pod.netns);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'hosts'), `${hosts}\n`);
      // Names resolve from the hosts file; a DNS fallback stays on the pod's own loopback.
      writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      // Both ends are created inside namespaces we own; the host namespace never sees them.
      await must(['ip', '-n', bridgeNs, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns]);
      await must(['ip', '-n', bridgeNs, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
      await must(['ip', '-n', pod.netns, 'link', 'set', 'lo', 'up']);
      await must(['ip', '-n', pod.netns, 'addr', 'add', `${pod.address}/24`, 'dev', 'eth0']);
      await must(['ip', '-n', pod.netns, 'link', 'set', 'eth0', 'up']);
    }
  } catch (err) {
    await destroy();
    throw err;
  }

  return {
    pods,
    pod(name) {
      const p = pods.find((x) => x.name === name);
      if (!p) throw new Error(`no pod ${name}`);
      return p;
    },
    spawn(pod, argv, options = {}) {
      const full = wrap(pod, argv, options);
      const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
      children.add(child);
      return child;
    },
    run(pod, argv, options = {}) {
      return sh(wrap(pod, argv, options), { ...(options.env ? { env: options.env } : {}), ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
    },
    destroy,
  };
}

/** Resolves with the first JSON line of `child`'s stdout for which `match` is true. */
export function waitForLine(child: ChildProcess, match: (entry: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let pending = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; stderr: ${stderr.trim()}`)), timeoutMs);
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited with ${code} before the expected log line; stderr: ${stderr.trim()}`));
    });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (match(entry)) {
            clearTimeout(timer);
            resolve(entry);
          }
        } catch {}
      }
    });
  });
}

/** Collects every JSON line a process prints on stdout. */
export function collectJsonLines(child: ChildProcess): Array<Record<string, unknown>> {
  const entries: Array<Record<string, unknown>> = [];
  let pending = '';
  child.stdout?.on('data', (d: Buffer | string) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        entries.push(JSON.parse(line) as Record<string, unknown>);
      } catch {}
    }
  });
  return entries;
}
