// The downstream side of HTTP/1.1 on our own codec: one H1Connection per client connection
// parses requests with llhttp (llhttp.ts) and hands each to the pipeline as an H1Request (the
// body, a Readable) and an H1Response (head, body, trailers), the surface of src/http/codec.ts
// that node:http's objects also provide. Requests on a connection are served one at a time in
// order (pipelined requests wait, parsed, until the response before them is finished); the head
// goes out with the first body bytes in one write.
//
// Refused with a local reply and the connection closed: a message llhttp rejects (400: framing
// ambiguities, bad syntax), a head over `maxHeaderSize` (431). CONNECT and Upgrade requests are
// handed to `onUpgrade` with the socket and the bytes after the head, as node:http's 'connect'.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { type ExecuteResult, HeadFields, Parser, type ParserEvents, ParserType } from './llhttp.ts';

export interface H1ServerOptions {
  onRequest(req: H1Request, res: H1Response): void;
  /** CONNECT or an Upgrade request: the socket is the handler's now; `rest` is what followed the head. Without one: 501. */
  onUpgrade?: (req: H1Request, socket: Socket, rest: Buffer) => void;
  /** Idle time between requests before the connection is closed (default 60 s). */
  keepAliveTimeoutMs?: number;
  /** Largest request head, request line and headers together (default 64 KiB): 431 beyond. */
  maxHeaderSize?: number;
  /** Longest a request head may take to arrive, checked as its bytes come (default 60 s): 408 beyond. */
  headersTimeoutMs?: number;
}

/** One request's head and body. */
export class H1Request extends Readable {
  readonly headers: IncomingHttpHeaders = {};
  method = 'GET';
  url = '';
  httpVersionMajor = 1;
  httpVersionMinor = 1;
  /** No body, and the stream has ended already (see ReqLike.bodyless in src/http/codec.ts). */
  bodyless = false;
  readonly socket: Socket;
  readonly #conn: H1Connection;

  constructor(conn: H1Connection, socket: Socket) {
    super();
    this.#conn = conn;
    this.socket = socket;
  }

  get httpVersion(): string {
    return `${this.httpVersionMajor}.${this.httpVersionMinor}`;
  }

  override _read(): void {
    this.#conn.resumeReading();
  }
}

/**
 * A header name or value that cannot end the head early: no CR, LF or NUL (node:http throws on
 * them; a proxy drops the header instead, so that a value built from configuration cannot split
 * the response).
 */
export function headerSafe(text: string): boolean {
  return !/[\r\n\0]/.test(text);
}

const noBodyStatus = (s: number) => s === 204 || s === 304 || (s >= 100 && s < 200);
let dateSecond = 0;
let dateText = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** One response: the head is held until the first body bytes (or the end) so both go in one write. */
export class H1Response extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableFinished = false;
  readonly socket: Socket;
  readonly #conn: H1Connection;
  readonly #head: boolean;
  #headers: OutgoingHttpHeaders = {};
  #chunked = false;
  #noBody = false;
  #close = false;
  #trailers: Record<string, string | string[]> | undefined;
  #ended = false;
  /** The socket is corked by this response until flush(). */
  #corked = false;

  constructor(conn: H1Connection, socket: Socket, req: H1Request, keepAlive: boolean) {
    super();
    this.#conn = conn;
    this.socket = socket;
    this.#head = req.method === 'HEAD';
    this.#close = !keepAlive;
  }

  setHeader(name: string, value: string | number | readonly string[]): void {
    this.#headers[name.toLowerCase()] = value as string;
  }

  getHeader(name: string): string | number | string[] | undefined {
    return this.#headers[name.toLowerCase()];
  }

  writeHead(status: number, headers?: OutgoingHttpHeaders): this {
    this.statusCode = status;
    if (headers) for (const k in headers) if (headers[k] !== undefined) this.#headers[k.toLowerCase()] = headers[k];
    return this;
  }

  #serializeHead(bodyLength: number | undefined): string {
    this.headersSent = true;
    const status = this.statusCode;
    this.#noBody = this.#head || noBodyStatus(status);
    const h = this.#headers;
    const connection = h.connection;
    if (typeof connection === 'string' && /\bclose\b/i.test(connection)) this.#close = true;
    let out = `HTTP/1.1 ${status} ${reason(status)}\r\n`;
    for (const name in h) {
      if (name === 'connection' || name === 'transfer-encoding' || name === 'keep-alive') continue;
      const v = h[name];
      if (v === undefined || !headerSafe(name)) continue;
      if (Array.isArray(v)) {
        for (const one of v) if (headerSafe(one)) out += `${name}: ${one}\r\n`;
      } else if (typeof v === 'number' || headerSafe(v)) out += `${name}: ${v}\r\n`;
    }
    if (h.date === undefined) out += `date: ${httpDate()}\r\n`;
    if (!this.#noBody && h['content-length'] === undefined) {
      if (bodyLength !== undefined) out += `content-length: ${bodyLength}\r\n`;
      else if (this.#conn.http11) {
        this.#chunked = true;
        out += 'transfer-encoding: chunked\r\n';
      } else this.#close = true;
    }
    // As node:http says it (clients and tests read it), though HTTP/1.1 keeps connections by default.
    out += this.#close ? 'connection: close\r\n' : 'connection: keep-alive\r\n';
    return `${out}\r\n`;
  }

  write(chunk: Buffer | string): boolean {
    if (this.#ended) return false;
    const head = this.headersSent ? '' : this.#serializeHead(undefined);
    const s = this.socket;
    if (this.#noBody || chunk.length === 0) return head ? s.write(head, 'latin1') : true;
    // Corked until the next tick (or an end() before it): the head, this chunk and what follows in
    // the same tick leave in one writev.
    this.#cork();
    if (this.#chunked) {
      const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      s.write(`${head}${size.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      return this.#drained(s.write('\r\n'));
    }
    if (head) s.write(head, 'latin1');
    return this.#drained(s.write(chunk));
  }

  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.socket.cork();
    process.nextTick(uncork, this);
  }

  /** Sends what is corked (end() does it at once rather than a tick later). */
  flush(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.socket.uncork();
  }

  #drained(ok: boolean): boolean {
    if (!ok) this.socket.once('drain', () => this.emit('drain'));
    return ok;
  }

  addTrailers(headers: Record<string, string | string[]>): void {
    this.#trailers = headers;
  }

  // The overloads of node:http's ServerResponse.end, so that code holding either can call it.
  end(cb?: () => void): this;
  end(chunk: unknown, cb?: () => void): this;
  end(chunk: unknown, encoding: BufferEncoding, cb?: () => void): this;
  end(first?: unknown, ...rest: unknown[]): this {
    const chunk = typeof first === 'function' ? undefined : (first as Buffer | string | undefined);
    const cb = [first, ...rest].find((a): a is () => void => typeof a === 'function');
    if (cb) this.once('finish', cb);
    if (this.#ended) return this;
    const s = this.socket;
    // Corked for what follows and flushed below, in this tick (a write() before may have corked it already).
    if (!this.#corked) {
      this.#corked = true;
      s.cork();
    }
    if (!this.headersSent) {
      const length = chunk === undefined ? 0 : typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      const head = this.#serializeHead(length);
      s.write(head, 'latin1');
      if (chunk !== undefined && length > 0 && !this.#noBody) s.write(chunk);
    } else {
      if (chunk !== undefined && chunk.length > 0) this.write(chunk);
      if (this.#chunked) {
        let last = '0\r\n';
        if (this.#trailers) for (const [k, v] of Object.entries(this.#trailers)) for (const one of Array.isArray(v) ? v : [v]) last += `${k}: ${one}\r\n`;
        s.write(`${last}\r\n`, 'latin1');
      }
    }
    this.flush();
    this.#ended = true;
    this.writableFinished = true;
    // After the caller's own code (end() may run inside the parser's callbacks): events, and the
    // connection goes on to its next request.
    process.nextTick(finished, this, this.#conn, this.#close);
    return this;
  }

  /** The exchange failed: the client sees the connection close (a half-sent response cannot be finished). */
  destroy(): this {
    if (this.#ended) return this;
    this.#ended = true;
    this.socket.destroy();
    // As node:http's response: 'close' without 'finish' tells the pipeline the exchange is over
    // (its telemetry records the reset) and that the client did not get the whole response.
    process.nextTick(emitClose, this);
    return this;
  }

  /** Close the connection after this response (a drain). */
  closeAfter(): void {
    this.#close = true;
  }

  /** The client went away before the response ended. */
  aborted(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.emit('close');
  }
}

function emitClose(res: H1Response): void {
  res.emit('close');
}

function finished(res: H1Response, conn: H1Connection, close: boolean): void {
  res.emit('finish');
  res.emit('close');
  conn.responseDone(close);
}

function uncork(res: H1Response): void {
  res.flush();
}

const reasons: Record<number, string> = { 100: 'Continue', 200: 'OK', 201: 'Created', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found', 304: 'Not Modified', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 413: 'Payload Too Large', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
function reason(status: number): string {
  return reasons[status] ?? 'Unknown';
}

/** One client connection. */
export class H1Connection implements ParserEvents {
  readonly #socket: Socket;
  readonly #options: H1ServerOptions;
  readonly #parser: Parser;
  #req: H1Request | undefined;
  /** A CONNECT or Upgrade request, until the parser stops for it. */
  #upgrade: H1Request | undefined;
  #res: H1Response | undefined;
  readonly #fields: HeadFields;
  /** Reads parsed later: after the response in progress (pipelining) or while the body's reader is full. */
  #pending: Buffer[] = [];
  #paused = false;
  #closed = false;
  /** When the request head being read began (0: none in progress), and how long it may take. */
  #headStart = 0;
  readonly #headersTimeoutMs: number;
  /** Every response from now on says connection: close (draining). */
  #noKeepAlive = false;
  /** The client sent FIN: close after the response in progress. */
  #clientEnded = false;
  http11 = true;

  get socket(): Socket {
    return this.#socket;
  }

  constructor(socket: Socket, options: H1ServerOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#fields = new HeadFields(options.maxHeaderSize ?? 64 * 1024, (name, value) => this.#header(name, value));
    this.#headersTimeoutMs = options.headersTimeoutMs ?? 60_000;
    this.#parser = new Parser(ParserType.request, this);
    socket.setNoDelay(true);
    // `on`, not setTimeout's callback (a `once`): the timer also fires under a response that takes
    // longer than the idle time, and must still close the connection once it is idle after it.
    socket.setTimeout(options.keepAliveTimeoutMs ?? 60_000);
    socket.on('timeout', this.#onIdle);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose());
  }

  readonly #onIdle = (): void => {
    if (!this.#res) this.#socket.destroy();
  };

  #onData(chunk: Buffer): void {
    // A head sent a byte at a time never idles out; it gets `headersTimeoutMs` in all (node:http's headersTimeout).
    if (this.#headStart > 0 && performance.now() - this.#headStart > this.#headersTimeoutMs) {
      this.#refuse(408);
      return;
    }
    if (this.#paused || this.#pending.length > 0) {
      this.#pending.push(chunk);
      // Bound what a client can queue: stop reading until the queue is parsed.
      this.#socket.pause();
      return;
    }
    this.#parse(chunk);
  }

  #parse(chunk: Buffer): void {
    const r: ExecuteResult = this.#parser.execute(chunk);
    if (r.kind === 'ok') return;
    if (r.kind === 'error') {
      this.#refuse(this.#fields.overflowed ? 431 : 400);
      return;
    }
    if (r.upgrade) {
      const req = this.#upgrade;
      this.#detach();
      if (req && this.#options.onUpgrade) this.#options.onUpgrade(req, this.#socket, r.rest);
      else this.#refuse(501);
      return;
    }
    // Paused after a message: what follows waits for its response.
    this.#paused = true;
    if (r.rest.length > 0) this.#pending.unshift(r.rest);
  }

  /**
   * Stops keep-alive: an idle connection closes now, a busy one after its response. `accepted`:
   * the connection is new (accepted while draining): it is served once, then closed.
   */
  drain(accepted = false): void {
    this.#noKeepAlive = true;
    if (this.#res) this.#res.closeAfter();
    else if (accepted) return;
    else {
      this.#detach();
      this.#socket.end();
    }
  }

  /** Called by the request body when its reader wants more. */
  resumeReading(): void {
    if (!this.#paused && this.#pending.length === 0) this.#socket.resume();
  }

  responseDone(close: boolean): void {
    this.#res = undefined;
    if (close || this.#closed || this.#clientEnded) {
      this.#detach();
      this.#socket.end();
      return;
    }
    // The response ended before its request's body did: read the rest and drop it, as node:http does.
    if (this.#req && !this.#req.readableEnded) this.#req.resume();
    this.#parser.resume();
    this.#paused = false;
    const pending = this.#pending;
    this.#pending = [];
    for (let i = 0; i < pending.length; i++) {
      this.#parse(pending[i]!);
      if (this.#paused) {
        this.#pending.push(...pending.slice(i + 1));
        return;
      }
    }
    this.#socket.resume();
  }

  #refuse(status: number): void {
    if (this.#res?.headersSent) {
      this.#socket.destroy();
      return;
    }
    this.#detach();
    this.#socket.end(`HTTP/1.1 ${status} ${reason(status)}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, 'latin1');
  }

  /** The parser is done with this socket. */
  #detach(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.removeAllListeners('data');
    this.#socket.removeAllListeners('end');
    // Back to paused-until-read, as node:http leaves an upgraded socket: bytes wait for the new reader.
    (this.#socket as { readableFlowing: boolean | null }).readableFlowing = null;
    this.#socket.setTimeout(0);
    this.#socket.removeListener('timeout', this.#onIdle);
    this.#parser.free();
  }

  #onEnd(): void {
    this.#clientEnded = true;
    if (this.#req && !this.#req.readableEnded) this.#req.destroy();
    if (!this.#res) {
      this.#detach();
      this.#socket.end();
    }
  }

  #onClose(): void {
    this.#closed = true;
    this.#parser.free();
    this.#pending = [];
    if (this.#req && !this.#req.readableEnded) this.#req.destroy();
    this.#res?.aborted();
  }

  // ------------------------------------------------------------------ parser events

  onUrl(text: string): boolean {
    if (!this.#req) this.#headStart = performance.now();
    this.#req ??= new H1Request(this, this.#socket);
    this.#req.url += text;
    return this.#fields.count(text);
  }

  onHeaderField(text: string): boolean {
    return this.#fields.field(text);
  }

  onHeaderValue(text: string): boolean {
    return this.#fields.value(text);
  }

  #header(name: string, value: string): void {
    const headers = this.#req!.headers as Record<string, string | string[]>;
    const prev = headers[name];
    // set-cookie is a list, cookie joins with '; ', others with ',' as Envoy joins repeated
    // headers (node:http's ', ' showed: the Gateway API conformance suite checks the exact value).
    if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[name] = `${prev}${name === 'cookie' ? '; ' : ','}${value}`;
  }

  onHeadersComplete(_status: number, upgrade: boolean, keepAlive: boolean): 0 | 1 | 2 {
    this.#fields.end();
    this.#headStart = 0;
    this.#req ??= new H1Request(this, this.#socket);
    const req = this.#req;
    req.method = this.#parser.method;
    req.httpVersionMajor = this.#parser.httpMajor;
    req.httpVersionMinor = this.#parser.httpMinor;
    this.http11 = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
    if (upgrade) {
      this.#upgrade = req;
      return 2;
    }
    const res = new H1Response(this, this.#socket, req, keepAlive && !this.#noKeepAlive);
    this.#res = res;
    // The keep-alive timer stays armed (Node re-arms it on every read and write): it closes the
    // connection only while no response is in progress, so a request never needs it changed.
    const h = req.headers;
    if (h['transfer-encoding'] === undefined && (h['content-length'] === undefined || h['content-length'] === '0')) {
      // Nothing will be read: end the body now, so nobody needs to resume it.
      req.bodyless = true;
      req.push(null);
    }
    if (req.headers.expect === '100-continue' && this.http11) this.#socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    this.#options.onRequest(req, res);
    return 0;
  }

  onBody(chunk: Buffer): void {
    const req = this.#req;
    if (req && !req.push(chunk)) this.#socket.pause();
  }

  onMessageComplete(): boolean {
    const req = this.#req;
    this.#req = undefined;
    if (req && !req.bodyless) req.push(null);
    // Pause until the response is done; the next request is parsed then.
    return this.#res !== undefined;
  }
}
