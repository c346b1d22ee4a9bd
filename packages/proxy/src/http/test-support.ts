// Helpers for the router tests: real HTTP/1.1 and h2c echo backends on 127.0.0.1, the router
// served by a real node:http / node:http2 server, and a small stand-in ClusterManager (the real
// one lives in src/cluster) that sends each request to a backend over node:http or node:http2.
import { once } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { decodeMessage, encodeMessage, type RouteConfiguration, type RouteConfiguration__Output } from '@weft/xds';
import {
  type Cancellation,
  type ClusterManager,
  type EndpointStatus,
  type RequestRecord,
  type UpstreamCluster,
  UpstreamError,
  type UpstreamOptions,
  type UpstreamRequest,
  type UpstreamResponse,
} from '../core/types.ts';
import { type CompiledRoutes, compileRouteConfiguration } from './compile.ts';
import type { HcmSettings } from './hcm.ts';
import { handleHttpRequest } from './router.ts';

/** Puts a hand-written RouteConfiguration through the real protos, as the xDS client would decode it. */
export function decodeRouteConfig(rc: RouteConfiguration): RouteConfiguration__Output {
  const name = 'envoy.config.route.v3.RouteConfiguration';
  return decodeMessage(name, encodeMessage(name, rc));
}

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly seen: SeenRequest[];
  /** Replaces the behaviour; return true when the handler answered. */
  handle: ((req: SeenRequest, res: ServerResponse, n: number) => boolean | Promise<boolean>) | undefined;
  close(): Promise<void>;
}

/** An HTTP/1.1 echo backend: answers JSON `{backend, method, path, headers, body}` with `x-backend`. */
export async function startBackend(name: string): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const backend: Backend = {
    name,
    port: 0,
    address: '',
    seen,
    handle: undefined,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  const server = http.createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const s: SeenRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
    seen.push(s);
    if (backend.handle && (await backend.handle(s, res, seen.length))) return;
    res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name, server: 'echo' });
    res.end(JSON.stringify({ backend: name, ...s }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return Object.assign(backend, { port, address: `127.0.0.1:${port}` });
}

/** A stand-in cluster: round robin (or hash) over fixed endpoints, node:http or node:http2 upstream. */
export class StandInCluster implements UpstreamCluster {
  readonly name: string;
  endpoints: string[];
  readonly h2: boolean;
  /** Every call's options, for asserting hash keys and excluded endpoints. */
  readonly calls: { req: UpstreamRequest; opts: UpstreamOptions }[] = [];
  /** Makes the next calls fail with this error before any connection. */
  failWith: UpstreamError | undefined;
  /** Retries allowed in flight (the retry circuit breaker); undefined: no breaker. */
  retryBudget: number | undefined;
  acquireRetry?: () => (() => void) | undefined = () => {
    if (this.retryBudget === undefined) return () => {};
    if (this.retryBudget <= 0) return undefined;
    this.retryBudget--;
    return () => {
      this.retryBudget = (this.retryBudget ?? 0) + 1;
    };
  };
  private next = 0;
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private readonly agent = new http.Agent({ keepAlive: true });

  constructor(name: string, endpoints: string[], h2 = false) {
    this.name = name;
    this.endpoints = endpoints;
    this.h2 = h2;
  }

  private pick(opts: UpstreamOptions): string {
    const candidates = this.endpoints.filter((e) => !opts.excludeEndpoints?.has(e));
    const list = candidates.length > 0 ? candidates : this.endpoints;
    if (list.length === 0) throw new UpstreamError('UH', 'no healthy upstream');
    if (opts.hashKey !== undefined) {
      let h = 0;
      for (const c of opts.hashKey) h = (h * 31 + c.charCodeAt(0)) >>> 0;
      return list[h % list.length]!;
    }
    return list[this.next++ % list.length]!;
  }

  request(req: UpstreamRequest, opts: UpstreamOptions): Promise<UpstreamResponse> {
    this.calls.push({ req: { ...req, headers: { ...req.headers } }, opts });
    if (this.failWith) return Promise.reject(this.failWith);
    let endpoint: string;
    try {
      endpoint = this.pick(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.h2 ? this.viaH2(endpoint, req, opts) : this.viaH1(endpoint, req, opts);
  }

  private viaH1(endpoint: string, req: UpstreamRequest, opts: UpstreamOptions): Promise<UpstreamResponse> {
    const [host, port] = endpoint.split(':') as [string, string];
    return new Promise((resolve, reject) => {
      const r = http.request({ host, port: Number(port), method: req.method, path: req.path, headers: { ...req.headers, host: req.authority }, agent: this.agent, signal: abortSignal(opts.signal) });
      r.on('response', (res) => {
        resolve({ status: res.statusCode ?? 502, headers: res.headers as Record<string, string | string[]>, body: res, endpoint, trailers: () => res.trailers as Record<string, string> });
      });
      r.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') reject(new UpstreamError('UF', `connection refused: ${err.message}`, endpoint));
        else reject(new UpstreamError('UC', err.message, endpoint));
      });
      if (req.bodyStream) req.bodyStream.pipe(r);
      else r.end(req.body);
    });
  }

  private viaH2(endpoint: string, req: UpstreamRequest, opts: UpstreamOptions): Promise<UpstreamResponse> {
    let session = this.sessions.get(endpoint);
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(`http://${endpoint}`);
      session.on('error', () => {});
      this.sessions.set(endpoint, session);
    }
    const s = session;
    return new Promise((resolve, reject) => {
      const stream = s.request({ ':method': req.method, ':path': req.path, ':authority': req.authority, ...req.headers }, { signal: abortSignal(opts.signal) } as http2.ClientSessionRequestOptions);
      let trailers: Record<string, string | string[]> | undefined;
      stream.on('trailers', (t) => {
        trailers = {};
        for (const k in t) if (!k.startsWith(':')) trailers[k] = t[k] as string;
      });
      const body = new PassThrough();
      let answered = false;
      stream.on('response', (headers) => {
        answered = true;
        const out: Record<string, string | string[]> = {};
        for (const k in headers) if (!k.startsWith(':')) out[k] = headers[k] as string;
        stream.pipe(body);
        resolve({ status: Number(headers[':status']), headers: out, body, endpoint, trailers: () => trailers });
      });
      stream.on('error', (err: NodeJS.ErrnoException) => {
        if (answered) body.destroy(err);
        reject(new UpstreamError(err.code === 'ECONNREFUSED' ? 'UF' : 'UC', err.message, endpoint));
      });
      if (req.bodyStream) req.bodyStream.pipe(stream);
      else stream.end(req.body);
    });
  }

  connect(): Promise<never> {
    return Promise.reject(new UpstreamError('UF', 'not supported by the stand-in'));
  }

  close(): void {
    for (const s of this.sessions.values()) s.destroy();
    this.agent.destroy();
  }
}

export class StandInClusterManager implements ClusterManager {
  readonly clusters = new Map<string, UpstreamCluster>();

  add(c: UpstreamCluster): this {
    this.clusters.set(c.name, c);
    return this;
  }

  update(): void {}

  get(name: string): UpstreamCluster | undefined {
    return this.clusters.get(name);
  }

  status(): ReadonlyMap<string, readonly EndpointStatus[]> {
    return new Map();
  }

  async close(): Promise<void> {
    for (const c of this.clusters.values()) if (c instanceof StandInCluster) c.close();
  }
}

export function newRecord(): RequestRecord {
  return {
    direction: 'outbound',
    listener: 'test',
    protocol: 'HTTP/1.1',
    startTime: Date.now(),
    durationMs: 0,
    responseCode: 0,
    responseFlags: new Set(),
    bytesReceived: 0,
    bytesSent: 0,
    attempts: 0,
  };
}

export interface RouterServer {
  readonly port: number;
  readonly url: string;
  /** Records of finished requests, in completion order. */
  readonly records: RequestRecord[];
  routes: CompiledRoutes;
  /** Resolves with the next finished request's record. */
  nextRecord(): Promise<RequestRecord>;
  close(): Promise<void>;
}

/** The router behind a real server: HTTP/1.1 (`node:http`) or h2c (`node:http2`). */
export async function startRouter(
  rc: RouteConfiguration,
  clusters: ClusterManager,
  options: { h2?: boolean; settings?: Partial<HcmSettings>; random?: () => number } = {},
): Promise<RouterServer> {
  const records: RequestRecord[] = [];
  const waiters: ((r: RequestRecord) => void)[] = [];
  const state = { routes: compileRouteConfiguration(decodeRouteConfig(rc)) };
  const { defaultHcmSettings } = await import('./hcm.ts');
  const settings = { ...defaultHcmSettings, ...options.settings };
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    const record = newRecord();
    const sock = req.socket;
    void handleHttpRequest(req, res, {
      routes: state.routes,
      clusters,
      record,
      sourceAddress: sock.remoteAddress ?? '',
      ...(sock.remotePort !== undefined ? { sourcePort: sock.remotePort } : {}),
      ...(sock.localAddress !== undefined ? { localAddress: sock.localAddress } : {}),
      ...(sock.localPort !== undefined ? { localPort: sock.localPort } : {}),
      settings,
      ...(options.random ? { random: options.random } : {}),
    }).then(() => {
      records.push(record);
      const w = waiters.shift();
      if (w) w(record);
    });
  };
  const server = options.h2 ? http2.createServer(handler) : http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    records,
    get routes() {
      return state.routes;
    },
    set routes(r) {
      state.routes = r;
    },
    nextRecord: () => new Promise((resolve) => waiters.push(resolve)),
    close: async () => {
      if ('closeAllConnections' in server) server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Sends one HTTP/1.1 request; resolves with status, headers and body text. */
export function send(
  url: string,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent | false } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const u = new URL(opts.path ?? '/', url);
    const r = http.request(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: `${u.pathname}${u.search}`, headers: opts.headers, agent: opts.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(opts.body);
  });
}

/** Parses an echo backend's JSON answer. */
export function echoed(body: string): { backend: string; method: string; path: string; headers: IncomingHttpHeaders; body: string } {
  return JSON.parse(body);
}

/** node:http and node:http2 take an AbortSignal; the router cancels through its exchange (a Cancellation). */
function abortSignal(c: Cancellation | undefined): AbortSignal | undefined {
  if (c === undefined || c instanceof AbortSignal) return c;
  const ac = new AbortController();
  if (c.aborted) ac.abort();
  else c.addEventListener('abort', { handleEvent: () => ac.abort() });
  return ac.signal;
}
