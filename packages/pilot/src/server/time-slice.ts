// Long synchronous work (a push to thousands of proxies, a route configuration of thousands of
// virtual hosts) yields to the event loop whenever it has run its share, so health checks, ACKs
// and keepalives are still answered.
import { monotonicMs } from './push-request.ts';

/** Tells a long synchronous loop when it has run its share of the event loop and should yield. */
export class TimeSlice {
  readonly #ms: number;
  #start = monotonicMs();

  constructor(ms: number) {
    this.#ms = ms;
  }

  over(): boolean {
    return monotonicMs() - this.#start >= this.#ms;
  }

  reset(): void {
    this.#start = monotonicMs();
  }

  /** Lets timers, I/O and other requests run (setImmediate), then starts a new slice. */
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.reset();
  }
}
