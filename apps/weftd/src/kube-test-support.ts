// What the Kubernetes-tier tests of weftd share: weftd as a child process whose JSON log lines are
// kept and waited for, polling until a condition holds, a free port.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/weftd.js', import.meta.url));

export interface LogLine {
  level?: string;
  scope?: string;
  msg: string;
  [k: string]: unknown;
}

/** A weftd child process; its log lines (JSON on stderr) are kept in `lines`. */
export class WeftdProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  /** The ports weftd's ready line reports, once ready() resolved. */
  caPort = 0;
  monitoringPort = 0;

  /** Tells several weftds apart in failure messages. */
  readonly name: string;

  constructor(args: readonly string[], name = 'weftd') {
    this.name = name;
    this.child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let pending = '';
    this.child.stderr!.on('data', (b: Buffer) => {
      pending += b.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const p of parts) {
        if (!p.trim()) continue;
        try {
          this.lines.push(JSON.parse(p) as LogLine);
        } catch {
          this.lines.push({ level: 'raw', msg: p });
        }
      }
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** The first line matching, waiting up to `ms`; throws with the last lines if weftd exits first or time runs out. */
  async waitFor(match: (l: LogLine) => boolean, what: string, ms = 60_000): Promise<LogLine> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > end) {
        throw new Error(`${this.name} did not log ${what}; last lines:\n${this.lines.slice(-30).map((l) => JSON.stringify(l)).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits for `weftd ready` and keeps the ports it reports. */
  async ready(): Promise<this> {
    const line = await this.waitFor((l) => l.msg === 'weftd ready', 'weftd ready', 60_000);
    this.caPort = line.caPort as number;
    this.monitoringPort = line.monitoringPort as number;
    return this;
  }

  /** A debug endpoint of its monitoring port (after ready()), as JSON. */
  async debug<T>(path: string): Promise<T> {
    return (await (await fetch(`http://127.0.0.1:${this.monitoringPort}${path}`)).json()) as T;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Polls `check` every 100 ms until it gives a value; throws naming `what` after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A port free on `host` now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
