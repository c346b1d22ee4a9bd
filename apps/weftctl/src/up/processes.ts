// The processes of a local mesh. Each runs in its own process group (so a Ctrl-C at the terminal
// reaches only `weftctl up`, which then stops everything in order, and so stopping a component also
// stops anything it started), writes its output to a log file, and logs JSON lines that can be
// waited for ("weftd ready", "proxy ready", "listening").
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';

export interface LogLine {
  level?: string;
  msg: string;
  [k: string]: unknown;
}

export interface ComponentOptions {
  /** Shown in messages: `weftd`, `sidecar reviews-v2`. */
  name: string;
  /** Node script and its arguments (run with this Node), or the arguments of `command`. */
  args: readonly string[];
  /** An executable to run instead of this Node (an addon such as /usr/bin/prometheus). */
  command?: string;
  env?: NodeJS.ProcessEnv;
  /** Appends stdout and stderr here. */
  logFile: string;
}

export class Component {
  readonly name: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Both output pipes have closed and the log file has everything the process wrote. */
  readonly closed: Promise<void>;
  /** Date.now() when it was spawned. */
  readonly startedAt = Date.now();
  #lines: LogLine[] = [];
  #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly #log: WriteStream;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(o: ComponentOptions) {
    this.name = o.name;
    this.logFile = o.logFile;
    this.#log = createWriteStream(o.logFile, { flags: 'a' });
    // detached: a process group of its own, so signals are ours to send.
    this.child = spawn(o.command ?? process.execPath, [...o.args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: o.env ?? process.env });
    // A command that cannot be executed reports it as an 'error' event after the throw below: not an uncaught one.
    this.child.on('error', () => {});
    if (this.child.pid === undefined) throw new Error(`could not start ${o.name}`);
    this.pid = this.child.pid;
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let pending = '';
      stream.on('data', (buf: Buffer) => {
        this.#log.write(buf);
        pending += buf.toString();
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        for (const text of parts) if (text.trim()) this.#line(text);
      });
    }
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      }),
    );
    // The log stream ends once both pipes have closed (after exit).
    this.closed = new Promise((resolve) => this.child.on('close', () => this.#log.end(() => resolve())));
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last lines this component logged, for error messages. */
  tail(n = 15): string[] {
    return this.#lines.slice(-n).map((l) => (l.level === 'raw' ? String(l.msg) : JSON.stringify(l)));
  }

  #line(text: string): void {
    let line: LogLine;
    try {
      const parsed = JSON.parse(text) as unknown;
      line = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as LogLine) : { level: 'raw', msg: text };
    } catch {
      line = { level: 'raw', msg: text };
    }
    if (this.#lines.length > 2000) this.#lines = this.#lines.slice(-1000);
    this.#lines.push(line);
    for (const w of [...this.#waiters]) {
      if (!w.match(line)) continue;
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve(line);
    }
  }

  /** Resolves with the first line (logged so far or later) that matches; rejects on exit or timeout. */
  waitFor(match: (l: LogLine) => boolean, what: string, ms: number): Promise<LogLine> {
    const seen = this.#lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        const tail = this.tail();
        reject(new Error(`${this.name} ${why} before ${what}${tail.length ? `; its last lines (${this.logFile}):\n  ${tail.join('\n  ')}` : ` (log: ${this.logFile})`}`));
      };
      const timer = setTimeout(() => fail(`took more than ${Math.round(ms / 1000)} s`), ms);
      const done = (l: LogLine) => {
        clearTimeout(timer);
        resolve(l);
      };
      void this.exited.then((e) => {
        clearTimeout(timer);
        fail(`exited (${e.signal ?? `status ${e.code}`})`);
      });
      this.#waiters.push({ match, resolve: done });
    });
  }

  /** Sends `signal` to the component's process group. */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Whether a process exists (signal 0) and has not exited: a zombie waiting for its reaper (init may take a while) is dead. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // No /proc: signal 0 is all there is.
    return true;
  }
}

/**
 * Stops process groups: SIGTERM to each, then SIGKILL to whatever is left after `graceMs`.
 * Resolves when every group leader has exited (or, for pids we did not start, is gone).
 */
export async function stopGroups(all_: readonly Component[], graceMs: number): Promise<{ killed: string[] }> {
  // Only groups whose leader still runs: the id of a group whose leader exited long ago may
  // belong to someone else by now.
  const components = all_.filter((c) => c.running);
  for (const c of components) c.signal('SIGTERM');
  const all = Promise.all(components.map((c) => c.exited));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
  clearTimeout(timer);
  const killed: string[] = [];
  // A group's leader may be gone while a child it started lives on: SIGKILL the groups in any case.
  for (const c of components) {
    if (timedOut && c.running) killed.push(c.name);
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // Nothing left in that group.
    }
  }
  await all;
  return { killed };
}

/** Stops process groups we only know by pid (a mesh left behind by a `weftctl up` that was killed). */
export async function stopPids(pids: readonly number[], graceMs: number): Promise<void> {
  const signalAll = (signal: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(-pid, signal);
      } catch {
        try {
          process.kill(pid, signal);
        } catch {
          // Gone.
        }
      }
    }
  };
  signalAll('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  signalAll('SIGKILL');
}
