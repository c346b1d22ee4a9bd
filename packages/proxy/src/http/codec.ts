// The seam between an HTTP codec and the request pipeline. The stages (src/http/*) read the
// request and write the response only through these two interfaces, which node:http's
// IncomingMessage/ServerResponse and node:http2's compatibility API both satisfy; another codec
// (an HTTP/1.1 parser over node:net, Bun's server) plugs in by providing the same surface.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { H1Request, H1Response } from '../codec/h1-server.ts';

/** The request objects the listeners hand over today. */
export type DownstreamRequest = IncomingMessage | Http2ServerRequest | H1Request;
export type DownstreamResponse = ServerResponse | Http2ServerResponse | H1Response;

/** What the pipeline reads of a request: its head, and its body as a stream. */
export interface ReqLike extends Readable {
  readonly headers: IncomingHttpHeaders;
  readonly method?: string;
  /** The request target (origin or absolute form); HTTP/2 has `:path` in `headers` instead. */
  readonly url?: string;
  readonly httpVersionMajor: number;
  /** HTTP/2 only: the stream, to tell a request without a body (END_STREAM on its headers). */
  readonly stream?: { readonly endAfterHeaders?: boolean };
  /**
   * Our HTTP/1.1 codec only: the request has no body (no Content-Length or 0, no Transfer-Encoding)
   * and its stream has already ended, so there is nothing to read or drain (resuming it would only
   * run the stream machinery's end and close ticks for nothing).
   */
  readonly bodyless?: boolean;
}

/** What the pipeline does with a response: one head, body chunks with backpressure, trailers, end or reset. */
export interface ResLike {
  readonly headersSent: boolean;
  readonly writableFinished: boolean;
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer | string): unknown;
  addTrailers(headers: Record<string, string | string[]>): void;
  /** Resets the stream (HTTP/2) or closes the connection (HTTP/1): the client sees the exchange fail. */
  destroy(err?: Error): unknown;
  /** `finish`: the response is sent; `close`: the exchange is over (before `finish`: the client left); `drain`: write more. */
  on(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
  /** HTTP/2 only: the stream, for responses that end on their headers (gRPC trailers-only). */
  readonly stream?: { respond(headers: OutgoingHttpHeaders, options: { endStream: boolean }): void };
}
