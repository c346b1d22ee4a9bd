// What the end-to-end suites share: a child process whose JSON log lines are kept and can be
// waited for (weftd, proxies, backends all log one JSON object per line).
import { type ChildProcess, spawn } from 'node:child_process';

export interface LogLine {
  level?: string;
  scope?: string;
  msg: string;
  [k: string]: unknown;
}

/** A child process whose stdout and stderr JSON lines are kept and can be waited for. */
export class JsonProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  readonly #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  /** `args` run under Node, or under `options.command` (a program of another language, e.g. a Go test server). */
  constructor(name: string, args: readonly string[], options: { command?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.name = name;
    this.child = spawn(options.command ?? process.execPath, [...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: options.env } : {}) });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let pending = '';
      stream.on('data', (buf: Buffer) => {
        pending += buf.toString();
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        for (const text of parts) if (text.trim()) this.#line(text);
      });
    }
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  #line(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { level: 'raw', msg: text };
    }
    this.lines.push(line);
    for (const w of [...this.#waiters]) {
      if (!w.match(line)) continue;
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve(line);
    }
  }

  waitFor(match: (l: LogLine) => boolean, what: string, ms = 20_000, from = 0): Promise<LogLine> {
    const seen = this.lines.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`${this.name} ${why} before logging ${what}; last lines:\n${this.lines.slice(-25).map((l) => JSON.stringify(l)).join('\n')}`));
      const timer = setTimeout(() => fail(`took more than ${ms} ms`), ms);
      void this.exited.then((code) => {
        clearTimeout(timer);
        fail(`exited (${code})`);
      });
      this.#waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
