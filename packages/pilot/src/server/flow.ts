// Flow control: response bytes the transport holds for all streams together are bounded. Above the
// bound, pushes wait and requests queue (in arrival order) until slow readers drain, at most a
// second, so one stuck reader cannot stall everyone else.
import type { Connection } from './connection.ts';

export class FlowControl {
  readonly #max: number;
  #inflight = 0;
  /** Requests waiting for the transport to drain, in arrival order. */
  readonly #deferred: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  #deferTimer: NodeJS.Timeout | undefined;

  constructor(maxInflightBytes: number) {
    this.#max = maxInflightBytes;
  }

  /** The transport holds more than the bound: a push should wait for `drained()`. */
  get over(): boolean {
    return this.#inflight > this.#max;
  }

  /** Runs a request now, or after what is queued before it once the transport drains. */
  admit(run: () => void): void {
    if (this.#deferred.length === 0 && this.#inflight <= this.#max) {
      run();
      return;
    }
    this.#deferred.push(run);
    // A reader that never drains must not hold everyone else's requests for long.
    this.#deferTimer ??= setTimeout(() => {
      this.#deferTimer = undefined;
      for (const r of this.#deferred.splice(0)) r();
    }, 1000);
  }

  /** Writes a response, counting its bytes until the transport takes them. */
  write(conn: Connection, bytes: Buffer): void {
    const n = bytes.length;
    conn.pendingBytes += n;
    this.#inflight += n;
    conn.write(bytes, () => {
      if (conn.closed) return;
      conn.pendingBytes -= n;
      this.#inflight -= n;
      this.#onDrain();
    });
  }

  /** A closed connection's bytes no longer count. */
  release(conn: Connection): void {
    this.#inflight -= conn.pendingBytes;
    conn.pendingBytes = 0;
    queueMicrotask(() => this.#onDrain());
  }

  /** Resolves when the transport holds at most half the bound, or after a second (a stuck reader must not stop pushes). */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 1000);
      this.#drainWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  stop(): void {
    if (this.#deferTimer) clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    this.#deferred.length = 0;
  }

  #onDrain(): void {
    while (this.#deferred.length > 0 && this.#inflight <= this.#max) this.#deferred.shift()!();
    if (this.#deferred.length === 0 && this.#deferTimer) {
      clearTimeout(this.#deferTimer);
      this.#deferTimer = undefined;
    }
    if (this.#inflight <= this.#max / 2 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
  }
}
