// weftd as a child process, with its JSON log lines parsed and waitable.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const weftdBin = fileURLToPath(new URL('../../../apps/weftd/bin/weftd.js', import.meta.url));

export interface LogLine {
  level: string;
  scope?: string;
  msg: string;
  [k: string]: unknown;
}

export class WeftdProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  readonly #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [weftdBin, ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
    let pending = '';
    this.child.stderr!.on('data', (buf: Buffer) => {
      pending += buf.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const text of parts) {
        if (!text.trim()) continue;
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
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  waitFor(match: (l: LogLine) => boolean, what: string, ms = 30_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`weftd did not log ${what} within ${ms} ms; last lines:\n${this.lines.slice(-30).map((l) => JSON.stringify(l)).join('\n')}`)), ms);
      this.#waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
