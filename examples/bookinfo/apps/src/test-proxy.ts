// For tests: a small forwarding HTTP proxy standing where a sidecar's outbound port would be.
// It takes absolute-form requests (`GET http://reviews:9080/reviews/0`), records what arrived,
// forwards to the real address registered for the authority, and can inject a delay or an abort
// for requests that match, as a mesh's fault injection would.
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  /** The authority asked for, e.g. `reviews:9080`. */
  authority: string;
  /** The request target as received (absolute form). */
  target: string;
  method: string;
  headers: IncomingHttpHeaders;
}

export interface Fault {
  /** Which requests: by authority, optionally only with this `end-user`. */
  authority: string;
  endUser?: string;
  delayMs?: number;
  abortStatus?: number;
}

export interface TestProxy {
  url: string;
  seen: Seen[];
  routes: Map<string, string>;
  faults: Fault[];
  close(): Promise<void>;
}

export async function startTestProxy(routes: Record<string, string> = {}): Promise<TestProxy> {
  const seen: Seen[] = [];
  const table = new Map(Object.entries(routes));
  const faults: Fault[] = [];
  const server: Server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute-form request target expected\n');
      return;
    }
    seen.push({ authority: target.host, target: req.url ?? '', method: req.method ?? 'GET', headers: req.headers });
    const forward = () => {
      const base = table.get(target.host);
      if (!base) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('no healthy upstream');
        return;
      }
      const b = new URL(base);
      const up = request({ host: b.hostname, port: b.port, method: req.method, path: target.pathname + target.search, headers: { ...req.headers, host: target.host }, agent: false }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream connect error or disconnect/reset before headers');
        else res.destroy();
      });
      req.pipe(up);
    };
    const fault = faults.find((f) => f.authority === target.host && (f.endUser === undefined || req.headers['end-user'] === f.endUser));
    const abort = fault?.abortStatus;
    const delay = fault?.delayMs;
    if (abort) {
      res.writeHead(abort, { 'content-type': 'text/plain' }).end('fault filter abort');
      return;
    }
    if (delay) {
      const t = setTimeout(forward, delay);
      res.on('close', () => clearTimeout(t));
    } else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    routes: table,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
