// What state of the world and delta share: generate a watched type for a connection, send what
// the client lacks (sotw.ts or delta.ts decide what that is and write it), and keep the books:
// nonces, sent/ACKed/NACKed versions, and each push's convergence once every type it sent is answered.
import { randomBytes } from 'node:crypto';
import type { Logger } from '@weft/model';
import type { PushContext } from '../core/types.ts';
import type { DiscoveryEvent } from './api.ts';
import type { Connection, WatchedType } from './connection.ts';
import { sendDelta } from './delta.ts';
import type { FlowControl } from './flow.ts';
import { type EncodeSteps, type Generated, type Generation, isSteps } from './generation.ts';
import type { PilotMetrics } from './metrics.ts';
import { monotonicMs } from './push-request.ts';
import { sendSotw } from './sotw.ts';
import type { TimeSlice } from './time-slice.ts';
import { shortTypeName } from './types.ts';
import { drain } from './wire.ts';

export interface RespondOptions {
  /** Send even if the client already has all of it (answering a request). */
  force: boolean;
  /** Generate only these names (subscription additions, endpoint-only pushes); default: the whole subscription. */
  names?: string[];
  /** The push's first change (monotonic ms): the response counts toward convergence. */
  start?: number;
}

export type RespondResult = 'sent' | 'unchanged' | 'no-generator' | Error;

export interface ResponderDeps {
  generation: Generation;
  flow: FlowControl;
  metrics: PilotMetrics;
  log: Logger;
  emit: (event: DiscoveryEvent) => void;
}

export class Responder {
  readonly metrics: PilotMetrics;
  readonly log: Logger;
  readonly #generation: Generation;
  readonly #flow: FlowControl;
  readonly #emit: (event: DiscoveryEvent) => void;
  readonly #noncePrefix = randomBytes(4).toString('hex');
  #nonceCounter = 0;

  constructor(deps: ResponderDeps) {
    this.#generation = deps.generation;
    this.#flow = deps.flow;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.#emit = deps.emit;
  }

  /** Generates `w`'s type for the connection and sends what the client lacks. */
  respond(conn: Connection, w: WatchedType, push: PushContext, options: RespondOptions): RespondResult {
    const names = options.names ?? w.subscription();
    const generated = this.#generation.generate(conn.proxy, w.typeUrl, push, names);
    return this.#finish(conn, w, push, options, names, isSteps(generated) ? drain(generated) : generated);
  }

  /**
   * `respond` within a push: encoding a big type goes in steps, yielding to the event loop when the
   * slice is used up. Synchronous when nothing needs encoding (a cache hit: the common case of a
   * push to many alike proxies), so most proxies cost no promise per type.
   */
  respondInPush(conn: Connection, w: WatchedType, push: PushContext, options: RespondOptions, slice: TimeSlice): RespondResult | Promise<RespondResult> {
    const names = options.names ?? w.subscription();
    const generated: Generated | Error | undefined | EncodeSteps = this.#generation.generate(conn.proxy, w.typeUrl, push, names);
    if (!isSteps(generated)) return this.#finish(conn, w, push, options, names, generated);
    return this.#encodeInSteps(conn, w, push, options, names, generated, slice);
  }

  async #encodeInSteps(
    conn: Connection,
    w: WatchedType,
    push: PushContext,
    options: RespondOptions,
    names: readonly string[] | undefined,
    steps: EncodeSteps,
    slice: TimeSlice,
  ): Promise<RespondResult> {
    for (;;) {
      if (slice.over()) {
        await slice.yield();
        if (conn.closed) return 'unchanged';
      }
      const r = steps.next();
      if (r.done) return this.#finish(conn, w, push, options, names, r.value);
    }
  }

  /** Answers a request (always sends); `names` only (subscription additions) or the whole subscription. */
  respondToRequest(conn: Connection, w: WatchedType, push: PushContext, names: string[] | undefined): void {
    const options: RespondOptions = { force: true };
    if (names) options.names = names;
    const result = this.respond(conn, w, push, options);
    if (result instanceof Error) this.log.error('generating a response failed', { proxy: conn.proxy.id, type: shortTypeName(w.typeUrl), error: result.message });
    conn.pushVersion ||= push.version;
  }

  #finish(conn: Connection, w: WatchedType, push: PushContext, options: RespondOptions, names: readonly string[] | undefined, generated: Generated | Error | undefined): RespondResult {
    if (generated === undefined) return 'no-generator';
    if (generated instanceof Error) {
      this.metrics.generateErrors.inc({ type: shortTypeName(w.typeUrl) });
      return generated;
    }
    const sent = conn.mode === 'sotw' ? sendSotw(this, conn, w, push, generated, options) : sendDelta(this, conn, w, push, generated, options, names);
    return sent ? 'sent' : 'unchanged';
  }

  /** Writes an encoded response under flow control. */
  write(conn: Connection, bytes: Buffer): void {
    this.#flow.write(conn, bytes);
  }

  nonce(): string {
    return `${this.#noncePrefix}-${(++this.#nonceCounter).toString(36)}`;
  }

  /** The nonce of a whole-set response shared by every proxy it goes to. */
  sharedNonce(version: string, generatedId: number): string {
    return `${this.#noncePrefix}-${version}-${generatedId.toString(36)}`;
  }

  recordSent(conn: Connection, w: WatchedType, version: string, nonce: string, count: number, start: number | undefined): void {
    w.nonceSent = nonce;
    w.versionSent = version;
    w.sentAt = new Date();
    w.resourcesSent = count;
    this.metrics.push(w.typeUrl);
    if (start === undefined) return;
    conn.pending ??= { start, version, awaiting: new Set(), rejected: false };
    const p = conn.pending;
    p.start = Math.min(p.start, start);
    p.version = version;
    p.awaiting.add(w.typeUrl);
  }

  recordAck(conn: Connection, w: WatchedType): void {
    w.nonceAcked = w.nonceSent;
    w.versionAcked = w.versionSent;
    w.ackedAt = new Date();
    this.#emit({ type: 'ack', connection: conn, typeUrl: w.typeUrl, version: w.versionAcked });
    this.#settle(conn, w.typeUrl, false);
  }

  recordNack(conn: Connection, w: WatchedType, reason: string): void {
    w.nonceNacked = w.nonceSent;
    w.versionNacked = w.versionSent;
    w.nackReason = reason;
    w.nackedAt = new Date();
    this.metrics.reject(w.typeUrl);
    this.log.warn('config rejected by proxy (NACK)', {
      proxy: conn.proxy.id,
      type: shortTypeName(w.typeUrl),
      version: w.versionNacked,
      acceptedVersion: w.versionAcked,
      reason,
    });
    this.#emit({ type: 'nack', connection: conn, typeUrl: w.typeUrl, version: w.versionNacked, reason });
    this.#settle(conn, w.typeUrl, true);
  }

  /** A pushed type was answered; when the whole push is, record its convergence time. */
  #settle(conn: Connection, typeUrl: string, rejected: boolean): void {
    const p = conn.pending;
    if (!p?.awaiting.delete(typeUrl)) return;
    p.rejected ||= rejected;
    if (p.awaiting.size > 0) return;
    conn.pending = undefined;
    if (p.rejected) return;
    const ms = monotonicMs() - p.start;
    conn.lastConvergenceMs = ms;
    this.metrics.convergence.observe(ms / 1000);
    this.#emit({ type: 'converged', connection: conn, version: p.version, ms });
  }
}
