// The downstream request body, kept (up to a limit) so retries and mirrors can replay it, as
// Envoy's router buffers it. Bodies that end within the limit become one Buffer; longer ones
// (and gRPC streams, which must flow before they end) are read through replaying streams.
import { Readable } from 'node:stream';

export class RequestBody {
  /** Bytes received so far. */
  size = 0;
  ended = false;
  /** More than the limit arrived: no replay, no retries, no mirrors. */
  overflowed = false;
  error: Error | undefined;
  private chunks: Buffer[] = [];
  /** Chunks were dropped after overflow; new readers cannot start from the beginning. */
  private released = false;
  private readonly readers = new Set<BodyReader>();
  private readonly limit: number;
  private readonly src: Readable;
  private settledWaiters: (() => void)[] = [];
  private endWaiters: (() => void)[] = [];
  private joined: Buffer | undefined;

  constructor(src: Readable, limit: number) {
    this.src = src;
    this.limit = limit;
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    src.on('end', () => this.onEnd());
    src.on('error', (err: Error) => this.onError(err));
    src.on('close', () => {
      if (!this.ended) this.onError(new Error('downstream closed the request before its end'));
    });
  }

  private onData(chunk: Buffer): void {
    this.size += chunk.length;
    if (!this.overflowed && this.size > this.limit) {
      this.overflowed = true;
      this.settle();
    }
    if (!this.released) this.chunks.push(chunk);
    if (this.overflowed && !this.released) {
      if (this.readers.size === 0) {
        // Hold what we have until the router attaches the one streaming reader.
        this.src.pause();
        return;
      }
      this.release();
    }
    for (const r of this.readers) r.deliver(chunk);
  }

  private release(): void {
    this.released = true;
    this.chunks = [];
  }

  private onEnd(): void {
    this.ended = true;
    for (const r of this.readers) r.deliver(null);
    this.settle();
    for (const w of this.endWaiters) w();
    this.endWaiters = [];
  }

  private onError(err: Error): void {
    if (this.error || this.ended) return;
    this.error = err;
    for (const r of this.readers) r.destroy(err);
    this.settle();
  }

  private settle(): void {
    for (const w of this.settledWaiters) w();
    this.settledWaiters = [];
  }

  /** Resolves once the body ended, overflowed or failed. */
  settled(): Promise<void> {
    if (this.ended || this.overflowed || this.error) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Calls `fn` when the body has been received completely (at once if it already has). */
  onEnded(fn: () => void): void {
    if (this.ended) fn();
    else this.endWaiters.push(fn);
  }

  /** The whole body, when it ended within the limit. */
  buffer(): Buffer | undefined {
    if (!this.ended || this.overflowed) return undefined;
    if (!this.joined) this.joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    return this.joined;
  }

  /** True while a new reader can still start from the first byte. */
  get replayable(): boolean {
    return !this.released && !this.error;
  }

  /**
   * A stream of the body from its first byte (replayed, then live); undefined when that is no
   * longer possible. A `detached` reader (mirrors) never slows the downstream: it buffers instead.
   */
  reader(detached = false): Readable | undefined {
    if (!this.replayable) return undefined;
    const r = new BodyReader(this, detached);
    for (const c of this.chunks) r.deliver(c);
    if (this.ended) r.deliver(null);
    else this.readers.add(r);
    r.once('close', () => {
      this.readers.delete(r);
      this.resumeFrom();
    });
    if (this.overflowed) {
      this.release();
      this.src.resume();
    }
    return r;
  }

  /** Backpressure from a slow reader pauses the downstream; `resumeFrom` lifts it. */
  pauseFor(): void {
    this.src.pause();
  }

  resumeFrom(): void {
    if (this.overflowed && !this.released && this.readers.size === 0) return;
    this.src.resume();
  }
}

class BodyReader extends Readable {
  private readonly body: RequestBody;
  private readonly detached: boolean;

  constructor(body: RequestBody, detached: boolean) {
    super();
    this.body = body;
    this.detached = detached;
  }

  deliver(chunk: Buffer | null): void {
    if (this.destroyed) return;
    if (!this.push(chunk) && chunk !== null && !this.detached) this.body.pauseFor();
  }

  override _read(): void {
    if (!this.detached) this.body.resumeFrom();
  }
}
