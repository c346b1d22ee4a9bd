// Supervision of the local mesh's processes, as the kubelet restarts a pod's containers: a
// component that exits when nobody asked it to is started again, with the same command line (so
// on the same addresses and ports), after a backoff that grows while it keeps failing soon after
// starting. Each exit and restart is told to listeners (`weftctl up` prints them) and written into
// the component's own log, so its log reads in order: its last lines, why it ended, the next start.
import { appendFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createLogger } from '@weft/model';
import { Component, type LogLine } from './processes.ts';
import type { RunState } from './state.ts';

export interface Backoff {
  /** Wait before the first restart after a run that lasted, ms. */
  initialMs: number;
  /** The wait doubles with each exit in a row, up to this, ms. */
  maxMs: number;
  /** A run at least this long counts as healthy: the next exit starts from `initialMs` again. */
  stableMs: number;
  /** This many quick exits in a row is a crash loop: said loudly, and retried at `maxMs`. */
  crashLoopAfter: number;
}

/**
 * 0.2 s doubling to 10 s; reset by 10 s of running. A single SIGKILL is restarted after 0.2 s, so
 * a component is back in its start time plus 0.2 s (weftd and the proxies start in 1-3 s here); a
 * crash loop reaches the 10 s cap after five exits (0.2+0.4+0.8+1.6+3.2 s of waiting) and is then
 * retried every 10 s, never given up: the rest of the mesh keeps serving meanwhile.
 */
export const defaultBackoff: Backoff = { initialMs: 200, maxMs: 10_000, stableMs: 10_000, crashLoopAfter: 5 };

/** The wait before restart number `failures` (1 = the first exit in a row). */
export function backoffDelay(b: Backoff, failures: number): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, failures - 1));
}

export interface ListenAddress {
  address: string;
  port: number;
  /** What it is, in messages: `xDS`, `the application's port`. */
  what: string;
}

export interface SupervisedOptions {
  /** Shown in messages: `weftd`, `details-v1 sidecar`. */
  name: string;
  /** The command line of each start (Node script and arguments), evaluated at each start. */
  args: () => readonly string[];
  /** An executable to run instead of this Node (see ComponentOptions.command). */
  command?: string;
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /** The log line that says it is ready (a restart counts as back then). */
  ready: (l: LogLine) => boolean;
  /** Where it listens, checked before each restart: a port taken meanwhile is said and retried later. */
  listens?: () => readonly ListenAddress[];
  backoff?: Backoff;
}

export type SupervisionEvent = { name: string; logFile: string } & (
  | { type: 'exited'; pid: number; reason: string; ranMs: number; restartInMs?: number; failures: number }
  | { type: 'crash-loop'; failures: number; reason: string; retryEveryMs: number }
  | { type: 'ports-busy'; busy: readonly ListenAddress[]; restartInMs: number }
  | { type: 'restarted'; pid: number; restarts: number }
  | { type: 'ready'; pid: number; restarts: number; downMs: number }
  | { type: 'start-failed'; error: string; restartInMs: number }
);

/** How an exit reads: `was killed (SIGKILL)`, `exited with status 1`. */
export function exitReason(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `was killed (${e.signal})` : `exited with status ${e.code}`;
}

/** Whether `port` can be bound on `address` now. */
export function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = createServer();
    s.once('error', () => resolvePromise(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolvePromise(true)));
  });
}

/** A port free on `address` now (bound at 0 and closed again; the component binds it next). */
export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePromise(port));
    });
  });
}

/** Seconds for messages: `0.2 s`, `10 s`. */
export function seconds(ms: number): string {
  return `${ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000)} s`;
}

/**
 * One component under supervision. `start()` runs it; restarts begin once `supervise()` is called
 * (`weftctl up` calls it when the whole mesh is ready: before that, an exit fails the start);
 * `stop()` ends the restarts and hands back the running process for the caller to stop with the rest.
 */
export class Supervised {
  readonly name: string;
  readonly logFile: string;
  readonly #o: SupervisedOptions;
  readonly #backoff: Backoff;
  readonly #listeners: ((e: SupervisionEvent) => void)[] = [];
  readonly #log;
  #current: Component | undefined;
  #supervising = false;
  #stopping = false;
  #timer: NodeJS.Timeout | undefined;
  #restarts = 0;
  #failures = 0;
  #phase: RunState['phase'] = 'starting';
  #lastExit: RunState['lastExit'];
  #exitedAt = 0;
  #nextStartAt: number | undefined;

  constructor(o: SupervisedOptions) {
    this.name = o.name;
    this.logFile = o.logFile;
    this.#o = o;
    this.#backoff = o.backoff ?? defaultBackoff;
    // Our lines in the component's log, in its own format (JSON lines), scope `supervisor`.
    this.#log = createLogger({ scope: 'supervisor', level: 'info', sink: (line) => void appendFile(o.logFile, `${line}\n`).catch(() => {}) });
  }

  /** The process running now (or the last one, when it is waiting to restart). */
  get current(): Component {
    if (!this.#current) throw new Error(`${this.name} was not started`);
    return this.#current;
  }

  get pid(): number {
    return this.current.pid;
  }

  /** Waits for a line of the current process (see Component.waitFor). */
  waitFor(match: (l: LogLine) => boolean, what: string, ms: number): Promise<LogLine> {
    return this.current.waitFor(match, what, ms);
  }

  onEvent(listener: (e: SupervisionEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** What mesh.json records. */
  status(): RunState {
    const c = this.#current;
    return {
      phase: this.#phase,
      restarts: this.#restarts,
      since: new Date(c?.startedAt ?? Date.now()).toISOString(),
      failures: this.#failures,
      crashLoop: this.#failures >= this.#backoff.crashLoopAfter,
      ...(this.#lastExit ? { lastExit: this.#lastExit } : {}),
      ...(this.#nextStartAt !== undefined && this.#phase === 'waiting' ? { nextStartAt: new Date(this.#nextStartAt).toISOString() } : {}),
    };
  }

  /** The first start. */
  start(): Component {
    if (this.#current) throw new Error(`${this.name} was already started`);
    return this.#spawn();
  }

  /** From now on an unexpected exit is followed by a restart. */
  supervise(): void {
    this.#supervising = true;
    // It may have exited while nobody supervised: start it again now.
    if (this.#current && !this.#current.running && !this.#stopping && this.#timer === undefined) this.#schedule(this.#backoff.initialMs);
  }

  /** No more restarts (a pending one is cancelled); resolves to the process still running, if any, for the caller to stop. */
  stop(): Component | undefined {
    this.#stopping = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#phase === 'waiting' || this.#phase === 'exited') this.#phase = 'stopped';
    return this.#current?.running ? this.#current : undefined;
  }

  /** Marks it stopped once its process has ended (after `stop`). */
  stopped(): void {
    this.#phase = 'stopped';
  }

  #emit(e: SupervisionEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure must not stop supervision.
      }
    }
  }

  #spawn(): Component {
    const c = new Component({ name: this.name, args: this.#o.args(), logFile: this.logFile, ...(this.#o.command ? { command: this.#o.command } : {}), ...(this.#o.env ? { env: this.#o.env } : {}) });
    this.#current = c;
    this.#phase = 'starting';
    this.#nextStartAt = undefined;
    void c.waitFor(this.#o.ready, 'it was ready', 24 * 3600_000).then(
      () => {
        if (this.#current !== c || this.#stopping) return;
        this.#phase = 'running';
        if (this.#restarts > 0) this.#emit({ type: 'ready', name: this.name, logFile: this.logFile, pid: c.pid, restarts: this.#restarts, downMs: Date.now() - this.#exitedAt });
      },
      () => {},
    );
    void c.exited.then((e) => this.#exited(c, e));
    return c;
  }

  #exited(c: Component, e: { code: number | null; signal: NodeJS.Signals | null }): void {
    if (this.#current !== c) return;
    if (this.#stopping) {
      this.#phase = 'stopped';
      return;
    }
    // What the process started lives in its group: nothing of it may outlive it (no orphans
    // holding its ports). The group id is still ours: its leader has only just been reaped.
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // Nothing left in the group.
    }
    const now = Date.now();
    const ranMs = now - c.startedAt;
    if (ranMs >= this.#backoff.stableMs) this.#failures = 0;
    this.#failures++;
    this.#exitedAt = now;
    const reason = exitReason(e);
    this.#lastExit = { at: new Date(now).toISOString(), reason, ranMs };
    const restartInMs = this.#supervising ? backoffDelay(this.#backoff, this.#failures) : undefined;
    this.#phase = restartInMs === undefined ? 'exited' : 'waiting';
    if (restartInMs !== undefined) this.#schedule(restartInMs);
    this.#emit({ type: 'exited', name: this.name, logFile: this.logFile, pid: c.pid, reason, ranMs, failures: this.#failures, ...(restartInMs !== undefined ? { restartInMs } : {}) });
    const crashLoop = restartInMs !== undefined && this.#failures === this.#backoff.crashLoopAfter;
    if (crashLoop) this.#emit({ type: 'crash-loop', name: this.name, logFile: this.logFile, failures: this.#failures, reason, retryEveryMs: this.#backoff.maxMs });
    // After the process's own last lines (its pipes drain after the exit).
    void Promise.race([c.closed, new Promise((r) => setTimeout(r, 1000))]).then(() => {
      const fields = { pid: c.pid, reason, ranMs, restarts: this.#restarts, failuresInARow: this.#failures };
      if (restartInMs === undefined) this.#log.warn(`${this.name} ${reason}; not restarted (the mesh was not ready yet)`, fields);
      else this.#log.warn(`${this.name} ${reason} after ${seconds(ranMs)}; restarting in ${seconds(restartInMs)}`, { ...fields, restartInMs });
      if (crashLoop) this.#log.error(`${this.name} is in a crash loop: ${this.#failures} exits in a row, each within ${seconds(this.#backoff.stableMs)} of its start; retried every ${seconds(this.#backoff.maxMs)}`, fields);
    });
  }

  #schedule(ms: number): void {
    this.#nextStartAt = Date.now() + ms;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#restart();
    }, ms);
  }

  /** A restart that could not happen now counts as one more failure in a row: the wait grows. */
  #retryLater(): number {
    this.#failures++;
    const ms = backoffDelay(this.#backoff, this.#failures);
    this.#phase = 'waiting';
    this.#schedule(ms);
    return ms;
  }

  async #restart(): Promise<void> {
    if (this.#stopping) return;
    const listens = this.#o.listens?.() ?? [];
    const busy: ListenAddress[] = [];
    for (const l of listens) if (!(await canBind(l.address, l.port))) busy.push(l);
    if (this.#stopping) return;
    if (busy.length > 0) {
      const restartInMs = this.#retryLater();
      this.#emit({ type: 'ports-busy', name: this.name, logFile: this.logFile, busy, restartInMs });
      this.#log.error(`cannot restart ${this.name}: ${busy.map((b) => `${b.address}:${b.port} (${b.what})`).join(', ')} in use by another process; retrying in ${seconds(restartInMs)}`, { restartInMs });
      return;
    }
    this.#restarts++;
    this.#log.info(`starting ${this.name} again (restart ${this.#restarts})`, { restarts: this.#restarts });
    let c: Component;
    try {
      c = this.#spawn();
    } catch (e) {
      const restartInMs = this.#retryLater();
      this.#emit({ type: 'start-failed', name: this.name, logFile: this.logFile, error: (e as Error).message, restartInMs });
      return;
    }
    this.#emit({ type: 'restarted', name: this.name, logFile: this.logFile, pid: c.pid, restarts: this.#restarts });
  }
}
