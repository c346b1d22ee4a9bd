// The upstream side of HTTP/1.1 on our own codec: one H1Client is one connection to one endpoint,
// carrying one request at a time (keep-alive, no pipelining), with the dispatch surface the pool's
// exchanges already speak (undici's DispatchHandler: onRequestStart, onResponseStart,
// onResponseData, onResponseEnd, onResponseError and a controller to pause, resume and abort).
// Responses are parsed by llhttp (llhttp.ts); body chunks reach the handler as slices of the
// socket's reads. The pool (cluster/pool.ts) decides when a connection is opened, reused and closed.
//
// Keep-alive as undici keeps it: an idle connection closes after `keepAliveTimeoutMs`, or after the
// server's `Keep-Alive: timeout=N` less `keepAliveTimeoutThresholdMs` (at most `keepAliveMaxTimeoutMs`).
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { headerSafe } from './h1-server.ts';
import { HeadFields, Parser, type ParserEvents, ParserType } from './llhttp.ts';

export interface H1ClientOptions {
  /** Opens the connection (TLS included); called on the first dispatch. */
  connect(cb: (err: Error | null, socket: Socket | null) => void): void;
  keepAliveTimeoutMs: number;
  keepAliveMaxTimeoutMs: number;
  keepAliveTimeoutThresholdMs: number;
  /** Largest response head (default 64 KiB): beyond, the request fails with UND_ERR_HEADERS_OVERFLOW. */
  maxHeaderSize?: number;
}

export interface H1DispatchOptions {
  path: string;
  method: string;
  /** Name, value, name, value…; `host` among them. Framing headers are the client's. */
  headers: string[];
  body: Buffer | string | Readable | null;
}

export interface H1Controller {
  pause(): void;
  resume(): void;
  abort(reason: Error): void;
}

/** The handler side of a dispatch (undici's DispatchHandler, as far as the pool uses it). */
export interface H1Handler {
  onRequestStart?(controller: H1Controller, context: unknown): void;
  onResponseStart?(controller: H1Controller, status: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void;
  onResponseData?(controller: H1Controller, chunk: Buffer): void;
  onResponseEnd?(controller: H1Controller, trailers: Record<string, string | string[] | undefined>): void;
  onResponseError?(controller: H1Controller, err: Error): void;
}

/** An error with undici's codes, which the pool maps to Envoy's flags. */
function failure(code: string, message: string, name = 'Error'): Error {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  e.name = name;
  return e;
}

const bodyMethods = new Set(['POST', 'PUT', 'PATCH']);

export class H1Client extends EventEmitter implements ParserEvents, H1Controller {
  readonly #options: H1ClientOptions;
  #socket: Socket | undefined;
  #connecting = false;
  #parser: Parser | undefined;
  /** The request in flight, and whether its response may have a body. */
  #handler: H1Handler | undefined;
  #head = false;
  #started = false;
  #headers: Record<string, string | string[] | undefined> = {};
  #trailers: Record<string, string | string[] | undefined> | undefined;
  readonly #fields: HeadFields;
  #keepAlive = true;
  #idleMs: number;
  /** One timer per connection, re-armed (refresh) each time it goes idle; it closes only an idle connection. */
  #idleTimer: NodeJS.Timeout | undefined;
  #idleTimerMs = 0;
  #idle = false;
  #queued: H1DispatchOptions | undefined;
  /** A streamed request body still being written: the connection cannot carry another request until it ends. */
  #bodyStream: { stop(): void } | undefined;
  destroyed = false;
  closed = false;
  #closing = false;

  constructor(options: H1ClientOptions) {
    super();
    this.#options = options;
    this.#fields = new HeadFields(options.maxHeaderSize ?? 64 * 1024, (name, value) => this.#header(name, value));
    this.#idleMs = options.keepAliveTimeoutMs;
  }

  /** Sends one request; the handler hears of its response. One at a time: the pool sees to it. */
  dispatch(opts: H1DispatchOptions, handler: H1Handler): boolean {
    if (!headerSafe(opts.path) || !headerSafe(opts.method) || opts.path.includes(' ')) {
      handler.onResponseError?.(this, failure('UND_ERR_INVALID_ARG', 'the request line would carry a space, CR, LF or NUL'));
      return false;
    }
    if (this.destroyed || this.closed || this.#closing || this.#handler) {
      handler.onResponseError?.(this, failure(this.destroyed ? 'UND_ERR_DESTROYED' : 'UND_ERR_CLOSED', 'the connection is closed'));
      return false;
    }
    this.#handler = handler;
    this.#started = false;
    this.#head = opts.method === 'HEAD';
    this.#idle = false;
    handler.onRequestStart?.(this, {});
    if (this.#handler !== handler) return true;
    if (this.#socket) this.#write(opts);
    else {
      this.#queued = opts;
      if (!this.#connecting) this.#connect();
    }
    return true;
  }

  #connect(): void {
    this.#connecting = true;
    this.#options.connect((err, socket) => {
      this.#connecting = false;
      if (err || !socket) {
        // The request hears why first; then the pool learns the connection is gone.
        this.#fail(err ?? failure('UND_ERR_SOCKET', 'connect failed'));
        this.emit('connectionError', err);
        this.#teardown();
        return;
      }
      if (this.destroyed) {
        socket.destroy();
        return;
      }
      this.#socket = socket;
      this.#parser = new Parser(ParserType.response, this);
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
      socket.on('end', () => this.#onEnd());
      socket.on('error', (e: Error) => this.#onSocketGone(e));
      socket.on('close', () => this.#onSocketGone(failure('UND_ERR_SOCKET', 'other side closed')));
      const queued = this.#queued;
      this.#queued = undefined;
      if (queued && this.#handler) this.#write(queued);
    });
  }

  #write(opts: H1DispatchOptions): void {
    const s = this.#socket!;
    let head = `${opts.method} ${opts.path} HTTP/1.1\r\n`;
    const h = opts.headers;
    let length = -1;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!;
      const value = h[i + 1]!;
      // A name or value that would end the head early is dropped (node:http and undici refuse them).
      if (!headerSafe(name) || !headerSafe(value)) continue;
      if (name === 'content-length') length = Number(value);
      head += `${name}: ${value}\r\n`;
    }
    const body = opts.body;
    if (body === null) {
      if (length < 0 && bodyMethods.has(opts.method)) head += 'content-length: 0\r\n';
      s.write(`${head}connection: keep-alive\r\n\r\n`, 'latin1');
      return;
    }
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      const n = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
      if (length < 0) head += `content-length: ${n}\r\n`;
      s.cork();
      s.write(`${head}connection: keep-alive\r\n\r\n`, 'latin1');
      if (n > 0) s.write(body);
      s.uncork();
      return;
    }
    const chunked = length < 0;
    s.write(`${head}${chunked ? 'transfer-encoding: chunked\r\n' : ''}connection: keep-alive\r\n\r\n`, 'latin1');
    const stream = body;
    const onData = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      if (chunked) {
        s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        s.write(chunk);
      }
      const ok = chunked ? s.write('\r\n', 'latin1') : s.write(chunk);
      if (!ok) {
        stream.pause();
        s.once('drain', () => stream.resume());
      }
    };
    const onEnd = () => {
      this.#bodyStream = undefined;
      if (chunked && !s.destroyed) s.write('0\r\n\r\n', 'latin1');
    };
    const onError = (e: Error) => this.abort(e);
    this.#bodyStream = { stop: () => {
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.removeListener('error', onError);
    } };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  }

  #onData(chunk: Buffer): void {
    if (!this.#handler) {
      // Bytes nobody asked for: the connection cannot be trusted for another request.
      this.destroy();
      return;
    }
    const r = this.#parser!.execute(chunk);
    if (r.kind === 'error') {
      const overflow = this.#fields.overflowed;
      this.#fail(overflow ? failure('UND_ERR_HEADERS_OVERFLOW', 'response headers too large') : failure(r.code, `${r.code}: ${r.reason}`, 'HTTPParserError'));
      this.destroy();
    }
  }

  #onEnd(): void {
    // A response delimited by the end of the connection ends here.
    if (this.#handler && this.#started) this.#parser?.finish();
    this.#onSocketGone(failure('UND_ERR_SOCKET', 'other side closed'));
  }

  #onSocketGone(err: Error): void {
    if (this.closed) return;
    this.#fail(err);
    this.#teardown();
  }

  #teardown(): void {
    if (this.closed) return;
    this.closed = true;
    this.#bodyStream?.stop();
    this.#bodyStream = undefined;
    this.destroyed = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#parser?.free();
    this.#socket?.destroy();
    this.emit('disconnect');
  }

  /** The request in flight fails with `err` (once). */
  #fail(err: Error): void {
    const h = this.#handler;
    if (!h) return;
    this.#handler = undefined;
    h.onResponseError?.(this, err);
  }

  // ------------------------------------------------------------------ controller

  pause(): void {
    this.#socket?.pause();
  }

  resume(): void {
    this.#socket?.resume();
  }

  abort(reason: Error): void {
    if (!this.#handler) return;
    this.#fail(reason);
    this.destroy();
  }

  // ------------------------------------------------------------------ lifecycle

  /** Closes once idle. */
  close(): Promise<void> {
    this.#closing = true;
    if (!this.#handler) this.#teardown();
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    this.#fail(failure('UND_ERR_DESTROYED', 'the connection was destroyed'));
    this.#teardown();
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ parser events

  onUrl(): boolean {
    return true;
  }

  onHeaderField(text: string): boolean {
    return this.#fields.field(text);
  }

  onHeaderValue(text: string): boolean {
    return this.#fields.value(text);
  }

  #header(name: string, value: string): void {
    if (this.#started) this.#trailers ??= {};
    const into = this.#started ? this.#trailers! : this.#headers;
    const prev = into[name];
    if (prev === undefined) into[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else into[name] = [prev, value];
  }

  onHeadersComplete(status: number, _upgrade: boolean, keepAlive: boolean): 0 | 1 | 2 {
    this.#fields.end();
    const headers = this.#headers;
    this.#headers = {};
    // 1xx: informational, the real response follows.
    if (status < 200) return 0;
    this.#keepAlive = keepAlive;
    const ka = headers['keep-alive'];
    if (typeof ka === 'string') {
      const m = /timeout=(\d+)/i.exec(ka);
      if (m) this.#idleMs = Math.min(Number(m[1]) * 1000 - this.#options.keepAliveTimeoutThresholdMs, this.#options.keepAliveMaxTimeoutMs);
    }
    this.#started = true;
    // This connection will not carry another request (the server closes it, or the request body
    // is still being sent): say so the way the pool reads it, so it is not handed out again.
    if (!keepAlive || this.#bodyStream) headers.connection = 'close';
    this.#handler?.onResponseStart?.(this, status, headers);
    return this.#head || status === 204 || status === 304 ? 1 : 0;
  }

  onBody(chunk: Buffer): void {
    this.#handler?.onResponseData?.(this, chunk);
  }

  onMessageComplete(): boolean {
    if (!this.#started) return false;
    this.#fields.end();
    this.#started = false;
    const h = this.#handler;
    const trailers = this.#trailers ?? {};
    this.#trailers = undefined;
    this.#handler = undefined;
    // The upstream may answer before the request body is all sent (an early 401 or 413): the rest
    // of that body would run into the next request, so such a connection is not reused.
    const reuse = this.#keepAlive && !this.#closing && this.#idleMs > 0 && !this.#bodyStream;
    if (reuse) {
      this.#idle = true;
      if (this.#idleTimer && this.#idleTimerMs === this.#idleMs) this.#idleTimer.refresh();
      else {
        if (this.#idleTimer) clearTimeout(this.#idleTimer);
        this.#idleTimerMs = this.#idleMs;
        this.#idleTimer = setTimeout(() => {
          if (this.#idle) this.#teardown();
        }, this.#idleMs);
        this.#idleTimer.unref();
      }
    }
    // The handler may hand this connection the next request right away (the pool releases it here).
    h?.onResponseEnd?.(this, trailers);
    if (!reuse && !this.#handler) queueMicrotask(() => this.#teardown());
    return false;
  }
}
