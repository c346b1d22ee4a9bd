// One request to one endpoint on a pooled connection (pool.ts), from waiting for a connection to
// the end of the response body: the request headers as they go on the wire, the undici dispatch
// handler, the response and its body, either as a stream or straight to the router's sink
// (`pipeTo`, the fast path), and the keep-alive replay of a request the upstream reset before
// answering (see pool.ts).
//
// Contract: `new Exchange(cluster, host, pool, req, opts).run()` resolves with the response once
// its headers are in, or rejects with an UpstreamError carrying Envoy's flag (UF, UO, UT, UC).
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { type BodyHandle, type BodySink, UpstreamError, type UpstreamOptions, type UpstreamRequest, type UpstreamResponse } from '../core/types.ts';
import type { Host } from './host.ts';
import type { LocalOriginResult } from './outlier.ts';
import type { Conn, HttpPool, PoolCluster, Waiter } from './pool.ts';

const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
// Hop-by-hop and framing headers: each connection has its own (undici refuses some outright).
const requestSkip = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'content-length', 'expect', 'te']);
const responseHop = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'] as const;
const resetCodes = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_SESSION_ERROR']);

type Headers = Record<string, string | string[]>;

function noop(): void {}

function requestHeaders(req: UpstreamRequest, h2: boolean): string[] {
  const out: string[] = ['host', req.authority];
  const headers = req.headers;
  const streaming = req.bodyStream !== undefined;
  for (const k in headers) {
    // A buffered body gets its length from undici; a streamed one keeps a declared length (else chunked).
    if (k === 'content-length' && streaming) {
      const v = headers[k]!;
      out.push(k, typeof v === 'string' ? v : v[0]!);
      continue;
    }
    if (requestSkip.has(k)) {
      // gRPC needs `te: trailers` on HTTP/2; nothing else of these goes upstream.
      if (k === 'te' && h2 && headers[k] === 'trailers') out.push('te', 'trailers');
      continue;
    }
    const v = headers[k]!;
    if (typeof v === 'string') out.push(k, v);
    else for (const x of v) out.push(k, x);
  }
  return out;
}

const S = { waiting: 0, dispatched: 1, streaming: 2, done: 3 } as const;
type State = (typeof S)[keyof typeof S];

class UpstreamBody extends Readable {
  readonly #ex: Exchange;
  constructor(ex: Exchange) {
    super({ highWaterMark: 64 * 1024 });
    this.#ex = ex;
  }
  override _read(): void {
    this.#ex.resume();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#ex.bodyDestroyed(err);
    cb(err);
  }
}

class Response implements UpstreamResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly endpoint: string;
  readonly peerPrincipal: string | undefined;
  readonly localPrincipal: string | undefined;
  readonly #ex: Exchange;
  constructor(ex: Exchange, status: number, headers: Headers, conn: Conn | undefined) {
    this.#ex = ex;
    this.status = status;
    this.headers = headers;
    this.endpoint = ex.host.key;
    this.peerPrincipal = conn?.peerPrincipal;
    this.localPrincipal = conn?.localPrincipal;
  }
  /** A Readable made on first use: the router's fast path (`pipeTo`) never needs one. */
  get body(): Readable {
    return this.#ex.readable();
  }
  pipeTo(sink: BodySink): BodyHandle {
    return this.#ex.pipeTo(sink);
  }
  trailers(): Readonly<Record<string, string | string[]>> | undefined {
    return this.#ex.trailersReceived;
  }
}

/**
 * One request to one endpoint, from waiting for a connection to the end of the response body.
 * It is the undici dispatch handler and the pool waiter itself, so a request allocates little
 * beyond undici's own objects.
 */
export class Exchange implements Dispatcher.DispatchHandler, Waiter {
  readonly host: Host;
  readonly #pool: HttpPool;
  readonly #cluster: PoolCluster;
  readonly #req: UpstreamRequest;
  readonly #opts: UpstreamOptions;
  readonly #headers: string[];
  #resolve!: (r: UpstreamResponse) => void;
  #reject!: (e: Error) => void;
  #state: State = S.waiting;
  #conn: Conn | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  /** The response body's consumer: a Readable (made on demand) or a sink; chunks wait in #pending until one attaches. */
  #body: UpstreamBody | undefined;
  #sink: BodySink | undefined;
  #pending: Buffer[] | undefined;
  #bodyEnded = false;
  #bodyError: Error | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reused = false;
  #replayed = false;
  #keepConn = true;
  trailersReceived: Record<string, string | string[]> | undefined;
  fresh = false;
  waiting = false;

  constructor(cluster: PoolCluster, host: Host, pool: HttpPool, req: UpstreamRequest, opts: UpstreamOptions) {
    this.#cluster = cluster;
    this.host = host;
    this.#pool = pool;
    this.#req = req;
    this.#opts = opts;
    this.#headers = requestHeaders(req, pool.h2);
  }

  run(): Promise<UpstreamResponse> {
    return new Promise<UpstreamResponse>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      const signal = this.#opts.signal;
      if (signal?.aborted) {
        reject(new UpstreamError('DC', 'downstream request aborted before the upstream request'));
        return;
      }
      this.#cluster.rqActive++;
      this.host.active++;
      this.host.total++;
      this.host.lastUsed = Date.now();
      const t = this.#opts.timeoutMs;
      if (t !== undefined && t > 0) this.#timer = setTimeout(() => this.#expired(), t);
      signal?.addEventListener('abort', this);
      this.#acquire();
    });
  }

  #acquire(): void {
    const c = this.#pool.take(this.fresh);
    if (c) this.grant(c);
    else if (!this.#pool.enqueue(this)) this.#fail(new UpstreamError('UO', 'upstream overflow: pending requests limit (max_pending_requests) reached', this.host.key), undefined);
  }

  grant(conn: Conn): void {
    if (this.#state === S.done) {
      this.#pool.release(conn, true);
      return;
    }
    this.#conn = conn;
    this.#reused = conn.connected && conn.dispatched > 0;
    conn.dispatched++;
    this.#state = S.dispatched;
    this.#controller = undefined;
    const req = this.#req;
    conn.client.dispatch({ path: req.path, method: req.method, headers: this.#headers, body: req.body ?? req.bodyStream ?? null }, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#state === S.done) controller.abort(new Error('request ended'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200 || this.#state !== S.dispatched) return;
    this.#state = S.streaming;
    const host = this.host;
    const stats = this.#cluster.stats;
    const outlier = this.#cluster.outlier;
    if (outlier) {
      outlier.putHttp(host, status);
      outlier.putLocal(host, 'success');
    }
    if (status >= 500) {
      host.failures++;
      stats.upstream_rq_5xx++;
    } else if (status >= 400) stats.upstream_rq_4xx++;
    else if (status >= 300) stats.upstream_rq_3xx++;
    else stats.upstream_rq_2xx++;
    if (!this.#pool.h2) {
      const conn = headers.connection;
      if (conn !== undefined && /\bclose\b/i.test(String(conn))) this.#keepConn = false;
      for (const h of responseHop) if (headers[h] !== undefined) delete headers[h];
    }
    this.#controller = controller;
    this.#resolve(new Response(this, status, headers as Headers, this.#conn));
  }

  /** The body as a Readable (made on first use; chunks that arrived before are pushed first). */
  readable(): Readable {
    if (this.#body) return this.#body;
    const body = new UpstreamBody(this);
    // A reset mid-body must not crash the process when the reader has not attached yet; readers
    // (pipeline, for await) still see the error.
    body.on('error', noop);
    this.#body = body;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) for (const c of pending) body.push(c);
    if (this.#bodyError) body.destroy(this.#bodyError);
    else if (this.#bodyEnded) body.push(null);
    return body;
  }

  /** The body pushed straight to `sink` (no stream); the returned handle resumes and cancels. */
  pipeTo(sink: BodySink): BodyHandle {
    if (this.#body || this.#sink) throw new Error('the response body already has a consumer');
    this.#sink = sink;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending) for (const c of pending) sink.data(c);
    if (this.#bodyError) sink.error(this.#bodyError);
    else if (this.#bodyEnded) sink.end();
    return this;
  }

  /** BodyHandle: the sink's consumer gave up (downstream gone, timeout); abort the upstream request. */
  destroy(err?: Error): void {
    this.bodyDestroyed(err ?? null);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#sink) {
      if (!this.#sink.data(chunk)) controller.pause();
    } else if (this.#body) {
      if (!this.#body.push(chunk)) controller.pause();
    } else if (this.#pending) this.#pending.push(chunk);
    else this.#pending = [chunk];
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.#state !== S.streaming) return;
    // undici 7 hands HTTP/2 trailers over as an object, which its handler adapter parses to {}:
    // read them from the controller's raw trailers instead.
    const raw = (controller as { rawTrailers?: unknown }).rawTrailers;
    const source = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, string | string[] | undefined>) : trailers;
    let out: Headers | undefined;
    for (const k of Object.keys(source)) {
      const v = source[k];
      if (v === undefined || k.charCodeAt(0) === 58 /* ':' */) continue;
      out ??= {};
      out[k] = v;
    }
    this.trailersReceived = out;
    this.#finish(this.#keepConn);
    if (this.#sink) this.#sink.end();
    else if (this.#body) this.#body.push(null);
    else this.#bodyEnded = true;
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const state = this.#state;
    if (state === S.done) return;
    if (state === S.streaming) {
      this.#finish(this.#pool.h2);
      this.#bodyFailed(err instanceof UpstreamError ? err : new UpstreamError('UC', `upstream reset after response started: ${err.message}`, this.host.key));
      return;
    }
    if (err instanceof UpstreamError) {
      this.#fail(err, err.flag === 'UT' ? 'timeout' : undefined);
      return;
    }
    const conn = this.#conn;
    const code = (err as { code?: string }).code ?? '';
    if (conn && !conn.connected) {
      const stats = this.#cluster.stats;
      stats.upstream_cx_connect_fail++;
      if (code === 'UND_ERR_CONNECT_TIMEOUT') stats.upstream_cx_connect_timeout++;
      this.#fail(new UpstreamError('UF', `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${err.message}`, this.host.key), 'connect-failed');
      return;
    }
    if (this.#replayable(err, code) && conn) {
      // The connection died under us before the upstream answered: replay once on a fresh one.
      this.#replayed = true;
      this.#cluster.stats.upstream_rq_stale_connection_retry++;
      this.#conn = undefined;
      this.#state = S.waiting;
      this.#pool.release(conn, false);
      this.fresh = true;
      this.#acquire();
      return;
    }
    if (code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'HPE_INVALID_CONSTANT' || (err.name === 'HTTPParserError' && code !== 'UND_ERR_SOCKET')) {
      this.#fail(new UpstreamError('UPE', `upstream protocol error: ${err.message}`, this.host.key), 'connect-failed');
      return;
    }
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
      this.#fail(new UpstreamError('DPE', `request cannot be sent upstream: ${err.message}`, this.host.key), undefined);
      return;
    }
    this.#fail(new UpstreamError('UC', `upstream connect error or disconnect/reset before headers. reset reason: connection termination (${err.message})`, this.host.key), 'connect-failed');
  }

  #replayable(err: Error, code: string): boolean {
    // A streamed body may be partly consumed already: only buffered (or empty) requests replay.
    if (this.#replayed || !this.#reused || this.#req.bodyStream) return false;
    // An HTTP/2 stream refused by the server (or cut by GOAWAY) was never processed.
    if (this.#pool.h2 && (code === 'ERR_HTTP2_GOAWAY_SESSION' || /REFUSED_STREAM/.test(err.message))) return true;
    if (!resetCodes.has(code)) return false;
    const headers = this.#req.headers;
    return idempotentMethods.has(this.#req.method) || headers['idempotency-key'] !== undefined || headers['x-idempotency-key'] !== undefined;
  }

  /** The caller reads more: let undici deliver more. */
  resume(): void {
    this.#controller?.resume();
  }

  /** The response body was destroyed by its reader (or by us); abort the upstream request if it still runs. */
  bodyDestroyed(err: Error | null): void {
    if (this.#state === S.done) return;
    const controller = this.#controller;
    this.#finish(this.#pool.h2);
    controller?.abort(err ?? new Error('response body destroyed'));
  }

  /** The abort signal fired (EventListenerObject, so no closure per request). */
  handleEvent(): void {
    this.#interrupt(new UpstreamError('DC', 'downstream request aborted', this.host.key), undefined);
  }

  #expired(): void {
    this.#timer = undefined;
    this.#cluster.stats.upstream_rq_per_try_timeout++;
    this.#interrupt(new UpstreamError('UT', `upstream request timeout after ${this.#opts.timeoutMs} ms`, this.host.key), 'timeout');
  }

  #interrupt(err: UpstreamError, outlier: LocalOriginResult | undefined): void {
    switch (this.#state) {
      case S.waiting:
        this.#pool.cancel(this);
        this.#fail(err, outlier);
        return;
      case S.dispatched:
        if (this.#controller) this.#controller.abort(err);
        else this.#fail(err, outlier);
        return;
      case S.streaming:
        // Abort upstream first (whoever consumes the body, or nobody yet), then tell the consumer.
        this.bodyDestroyed(err);
        this.#bodyFailed(err);
        return;
      default:
    }
  }

  /** The body fails mid-way: its consumer (or a later one) sees the error. */
  #bodyFailed(err: Error): void {
    if (this.#sink) this.#sink.error(err);
    else if (this.#body) this.#body.destroy(err);
    else this.#bodyError = err;
  }

  #fail(err: UpstreamError, outlier: LocalOriginResult | undefined): void {
    if (outlier) {
      this.host.failures++;
      this.#cluster.outlier?.putLocal(this.host, outlier);
    }
    // An HTTP/2 failure is one stream's; the connection goes only if it is itself closed.
    this.#finish(this.#pool.h2);
    this.#reject(err);
  }

  #finish(reusable: boolean): void {
    if (this.#state === S.done) return;
    this.#state = S.done;
    if (this.#timer) clearTimeout(this.#timer);
    this.#opts.signal?.removeEventListener('abort', this);
    this.#cluster.rqActive--;
    this.host.active--;
    this.#cluster.stats.upstream_rq_completed++;
    const conn = this.#conn;
    if (conn) {
      this.#conn = undefined;
      this.#pool.release(conn, reusable);
    }
  }
}
