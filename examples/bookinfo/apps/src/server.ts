// The HTTP server every service runs on: listens, logs one line per request, and stops
// gracefully (no new connections, requests in flight finish within a drain period).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface ListenOptions {
  /** Address to bind; default `::` (every address, IPv6 and IPv4), as the original services. */
  address?: string;
  /** Port to bind; default 9080. 0 picks a free port. */
  port?: number;
}

/** A running service. */
export interface RunningService {
  readonly service: string;
  readonly version: string;
  /** The bound address and port. */
  readonly address: string;
  readonly port: number;
  /** `http://address:port` (IPv6 addresses in brackets; `::` and `0.0.0.0` as loopback). */
  readonly url: string;
  /**
   * Stops accepting connections, lets requests in flight finish for up to `drainMs` (default
   * 5000), then closes what is left.
   */
  close(drainMs?: number): Promise<void>;
}

export async function serve(service: string, version: string, listen: ListenOptions, log: Logger, handler: Handler): Promise<RunningService> {
  let inFlight = 0;
  let stopping = false;
  const server: Server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const start = performance.now();
    inFlight++;
    // While stopping, every response closes its connection once sent.
    if (stopping) res.shouldKeepAlive = false;
    res.on('close', () => {
      inFlight--;
      log.info('request', {
        method: req.method,
        path: req.url,
        status: res.statusCode,
        ms: Math.round(performance.now() - start),
        ...(res.writableFinished ? {} : { aborted: true }),
      });
      if (stopping) setImmediate(() => server.closeIdleConnections());
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://service');
    } catch {
      sendText(res, 400, 'text/plain', 'bad request target\n');
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        log.error('handler failed', { path: req.url, error: err });
        if (!res.headersSent) sendText(res, 500, 'text/plain', 'internal error\n');
        else res.destroy();
      });
  });
  const address = listen.address ?? '::';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 9080, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const host = bound.address === '::' ? '::1' : bound.address === '0.0.0.0' ? '127.0.0.1' : bound.address;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}`;
  log.info('listening', { service, version, address: bound.address, port: bound.port });
  let closing: Promise<void> | undefined;
  return {
    service,
    version,
    address: bound.address,
    port: bound.port,
    url,
    close(drainMs = 5000) {
      closing ??= new Promise<void>((resolve) => {
        log.info('stopping', { inFlight, drainMs });
        stopping = true;
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), drainMs);
        void closed.then(() => {
          clearTimeout(timer);
          log.info('stopped', { service, version });
          resolve();
        });
      });
      return closing;
    },
  };
}

export function sendText(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string | string[]> = {}): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(buf.length), ...headers });
  res.end(buf);
}

export function sendJson(res: ServerResponse, status: number, body: string): void {
  sendText(res, status, 'application/json', body);
}

/** The request body, up to `limit` bytes (more is an error). */
export function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error(`request body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
