// The upstream response back to the client: hop-by-hop headers dropped, Envoy's
// x-envoy-upstream-service-time, route response mutations, the hash cookie, the attempt count,
// then the body. The fast path (`resp.pipeTo`, the connection pool's direct body) writes chunks
// from the upstream connection to the client through one DownstreamSink; otherwise the body is a
// stream. Trailers pass through (gRPC status recorded); max_stream_duration also bounds the body.
//
// Contract: `respond(ex, resp, startedAt, action, done)` answers the client and calls `done` (when
// given) once the body has ended, failed (UR, the client's stream reset too) or been cancelled
// (client gone, timeout: ex.bodySink.cancel()). A callback, not a promise: the common request has
// nothing waiting for its body (the router waits for the response's finish) and builds none.
import type { OutgoingHttpHeaders } from 'node:http';
import type { BodyHandle, BodySink, UpstreamResponse } from '../core/types.ts';
import type { ResLike } from './codec.ts';
import type { CompiledRouteAction } from './compile.ts';
import type { Exchange } from './exchange.ts';
import { applyHeaderMutations, connectionTokens, type HeaderRecord, isHopByHop } from './headers.ts';
import { finalizeDownstreamHeaders, responseMutations, trailersOnly } from './local-reply.ts';

export function respond(ex: Exchange, resp: UpstreamResponse, startedAt: number, action: CompiledRouteAction, done: () => void = noop): void {
  const res = ex.res;
  if (ex.hooks) for (const h of ex.hooks) h.onUpstreamResponse?.(ex.filterCtx!, resp.status, resp.headers);
  const out: HeaderRecord = {};
  const tokens = connectionTokens(resp.headers.connection);
  for (const k in resp.headers) {
    if (k.charCodeAt(0) === 58 || isHopByHop(k, tokens)) continue;
    out[k] = resp.headers[k]!;
  }
  if (!ex.settings.suppressEnvoyHeaders) out['x-envoy-upstream-service-time'] = String(Math.round(performance.now() - startedAt));
  const mutations = responseMutations(ex);
  if (mutations.length > 0) applyHeaderMutations(out, mutations, ex);
  if (ex.setCookies) {
    const cur = out['set-cookie'];
    out['set-cookie'] = cur === undefined ? ex.setCookies : [...(typeof cur === 'string' ? [cur] : cur), ...ex.setCookies];
  }
  if (ex.route?.virtualHost.includeAttemptCountInResponse) out['x-envoy-attempt-count'] = String(ex.record.attempts);
  const outgoing = out as OutgoingHttpHeaders;
  finalizeDownstreamHeaders(ex, outgoing, resp.status);

  ex.record.responseCode = resp.status;
  ex.responseStarted = true;
  if (resp.pipeTo && !(ex.grpc && outgoing['grpc-status'] !== undefined)) {
    res.writeHead(resp.status, outgoing);
    pipeBody(ex, resp, startedAt, action, done);
    return;
  }
  const body = resp.body;
  ex.upstreamBody = body;
  if (ex.grpc && outgoing['grpc-status'] !== undefined) {
    // A gRPC trailers-only answer (status in the headers, no messages): pass it on as one.
    body.on('error', () => {});
    body.resume();
    trailersOnly(ex, resp.status, outgoing);
    done();
    return;
  }
  res.writeHead(resp.status, outgoing);

  // max_stream_duration also bounds the response body.
  let msdTimer: NodeJS.Timeout | undefined;
  if (action.maxStreamDurationMs !== undefined) {
    const left = action.maxStreamDurationMs - (performance.now() - startedAt);
    msdTimer = setTimeout(
      () => {
        ex.flags.add('UT');
        body.destroy();
        res.destroy();
      },
      Math.max(0, left),
    );
  }

  let over = false;
  const finish = () => {
    if (over) return;
    over = true;
    if (msdTimer) clearTimeout(msdTimer);
    done();
  };
  body.on('data', (chunk: Buffer) => {
    ex.bytesSent += chunk.length;
    if (!res.write(chunk)) body.pause();
  });
  res.on('drain', () => body.resume());
  body.on('end', () => {
    if (ex.gone) return finish();
    const trailers = filterTrailers(resp.trailers?.());
    if (ex.grpc && typeof trailers['grpc-status'] === 'string') ex.record.grpcStatus = Number(trailers['grpc-status']);
    if (Object.keys(trailers).length > 0) res.addTrailers(trailers);
    res.end();
    finish();
  });
  body.on('error', () => {
    // The upstream reset after the headers: the client sees its stream reset too.
    if (!ex.gone && !ex.globalTimedOut) ex.flags.add('UR');
    res.destroy();
    finish();
  });
  body.on('close', () => {
    if (!body.readableEnded) {
      if (!ex.gone && !ex.globalTimedOut && !res.writableFinished) {
        ex.flags.add('UR');
        res.destroy();
      }
      finish();
    }
  });
}

/** The body straight from the cluster's connection to the client: no stream in between (the fast path). */
function pipeBody(ex: Exchange, resp: UpstreamResponse, startedAt: number, action: CompiledRouteAction, done: () => void): void {
  const sink = new DownstreamSink(ex, ex.res, resp, done);
  ex.bodySink = sink;
  // max_stream_duration also bounds the response body.
  if (action.maxStreamDurationMs !== undefined) {
    const left = action.maxStreamDurationMs - (performance.now() - startedAt);
    sink.timer = setTimeout(() => {
      ex.flags.add('UT');
      sink.cancel();
      ex.res.destroy();
    }, Math.max(0, left));
  }
  sink.handle = resp.pipeTo!(sink);
  if (sink.finished) sink.handle = undefined;
}

/**
 * The response body's consumer on the fast path: writes each chunk to the client, pauses the
 * upstream when the client's buffer is full, ends with the trailers. One object per response
 * instead of a stream and its listeners.
 */
export class DownstreamSink implements BodySink {
  readonly #ex: Exchange;
  readonly #res: ResLike;
  readonly #resp: UpstreamResponse;
  readonly #resolve: () => void;
  handle: BodyHandle | undefined;
  timer: NodeJS.Timeout | undefined;
  finished = false;
  #waitingDrain = false;

  constructor(ex: Exchange, res: ResLike, resp: UpstreamResponse, resolve: () => void) {
    this.#ex = ex;
    this.#res = res;
    this.#resp = resp;
    this.#resolve = resolve;
  }

  data(chunk: Buffer): boolean {
    if (this.finished) return true;
    this.#ex.bytesSent += chunk.length;
    if (this.#res.write(chunk)) return true;
    if (!this.#waitingDrain) {
      this.#waitingDrain = true;
      this.#res.on('drain', () => {
        if (!this.finished) this.handle?.resume();
      });
    }
    return false;
  }

  end(): void {
    if (this.finished) return;
    if (!this.#ex.gone) {
      const trailers = filterTrailers(this.#resp.trailers?.());
      if (this.#ex.grpc && typeof trailers['grpc-status'] === 'string') this.#ex.record.grpcStatus = Number(trailers['grpc-status']);
      if (Object.keys(trailers).length > 0) this.#res.addTrailers(trailers);
      this.#res.end();
    }
    this.#done();
  }

  error(): void {
    if (this.finished) return;
    // The upstream reset after the headers: the client sees its stream reset too.
    if (!this.#ex.gone && !this.#ex.globalTimedOut) this.#ex.flags.add('UR');
    this.#res.destroy();
    this.#done();
  }

  /** The exchange gives up on the body (client gone, timeout): abort upstream, stop waiting. */
  cancel(): void {
    if (this.finished) return;
    const handle = this.handle;
    this.#done();
    handle?.destroy();
  }

  #done(): void {
    this.finished = true;
    this.handle = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.#resolve();
  }
}

function noop(): void {}

const forbiddenTrailers = new Set(['content-length', 'transfer-encoding', 'connection', 'host', 'te', 'trailer']);

function filterTrailers(t: Readonly<Record<string, string | string[]>> | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!t) return out;
  for (const k in t) {
    if (k.charCodeAt(0) === 58 || forbiddenTrailers.has(k)) continue;
    out[k] = t[k]!;
  }
  return out;
}
