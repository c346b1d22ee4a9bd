// One HTTP request through the proxy, as Envoy's connection manager, CORS, fault and router
// filters handle it: connection-manager header rules, route selection, CORS, fault delay/abort,
// direct responses and redirects, then the upstream exchange with timeouts, retries and mirrors,
// and the response streamed back. Works for HTTP/1.1 (`node:http`) and HTTP/2 (`node:http2`
// compatibility API) alike; gRPC gets trailers passed through and gRPC-shaped local replies.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import {
  type BodyHandle,
  type BodySink,
  type ClusterManager,
  type RequestRecord,
  type ResponseFlag,
  UpstreamError,
  type UpstreamCluster,
  type UpstreamOptions,
  type UpstreamRequest,
  type UpstreamResponse,
} from '../core/types.ts';
import { beginHttpFilters, type DownstreamConnection, type FilterHeaders, type HttpFilter, type HttpFilterContext, type HttpStreamHooks } from '../core/filters.ts';
import { unmappedIp } from '../core/peer.ts';
import { chooseWeighted, clusterNameOf } from '../core/route-action.ts';
import { RequestBody } from './body.ts';
import { type CompiledRoute, type CompiledRouteAction, type CompiledRoutes, type CompiledVirtualHost, type CompiledWeightedCluster, isGrpcContentType } from './compile.ts';
import { type CompiledCors, corsOriginAllowed, faultAbort, faultDelay } from './filters.ts';
import { defaultHcmSettings, type HcmSettings } from './hcm.ts';
import { applyHeaderMutations, connectionTokens, type FormatContext, type HeaderMutation, type HeaderRecord, isHopByHop } from './headers.ts';
import { sampled } from './matchers.ts';
import { backoffMs, type CookieToSet, hashKey, portStart, type ResetKind, retriableReset, retriableResponse, setCookieValue, shadowAuthority } from './policies.ts';
import { RequestView } from './view.ts';

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;
export type DownstreamResponse = ServerResponse | Http2ServerResponse;

/** Everything one request needs; built by the listener's connection manager per request. */
export interface HttpRequestContext {
  /** The compiled route configuration of the connection manager (per snapshot); undefined answers 404 NR. */
  readonly routes: CompiledRoutes | undefined;
  readonly clusters: ClusterManager;
  /** Filled in by the router; the caller creates it (direction, listener, startTime, addresses) and reads it when the returned promise settles. */
  readonly record: RequestRecord;
  /** Downstream peer IP (no port): `x-forwarded-for`, source-IP hashing. */
  readonly sourceAddress: string;
  readonly sourcePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  /** The downstream connection is TLS (scheme `https`). */
  readonly tls?: boolean;
  /** From `httpConnectionManagerSettings(hcm)`; defaults to a sidecar's. */
  readonly settings?: HcmSettings;
  /** Random source in [0, 1) for weights, fractions and backoff (tests pin it). */
  readonly random?: () => number;
  /** Where the connection was going (SO_ORIGINAL_DST): the endpoint of ORIGINAL_DST clusters (PassthroughCluster). */
  readonly originalDestination?: { address: string; port: number };
  /** The chain's filters beyond routing (authorization, telemetry); they need `connection`. */
  readonly filters?: readonly HttpFilter[];
  readonly connection?: DownstreamConnection;
}

/** Envoy's local reply bodies. */
export const LocalReplyBody = {
  noHealthyUpstream: 'no healthy upstream',
  timeout: 'upstream request timeout',
  maxStreamDuration: 'upstream max stream duration reached',
  faultAbort: 'fault filter abort',
  resetPrefix: 'upstream connect error or disconnect/reset before headers. ',
} as const;

const resetReasons: Record<ResetKind, string> = {
  'connect-failure': 'connection failure',
  'refused-stream': 'remote refused stream reset',
  reset: 'connection termination',
  timeout: 'local reset',
  'max-stream-duration': 'local reset',
  overflow: 'overflow',
  'no-healthy-upstream': 'no healthy upstream',
};

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

/** gRPC's percent-encoding of `grpc-message`. */
export function encodeGrpcMessage(msg: string): string {
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `grpc-timeout` (`100m`, `5S`) in milliseconds. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
  return Math.ceil(n * unit[m[2]!]!);
}

/** RFC 3986 remove_dot_segments, and `//` -> `/` with merge_slashes; the query is kept. */
export function normalizePath(path: string, mergeSlashes: boolean): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const needsDots = p.includes('/.');
  const needsMerge = mergeSlashes && p.includes('//');
  if (!needsDots && !needsMerge) return path;
  const segments = (needsMerge ? p.replace(/\/{2,}/g, '/') : p).split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.') {
      if (i === segments.length - 1) out.push('');
    } else if (s === '..') {
      out.pop();
      if (i === segments.length - 1) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}${q < 0 ? '' : path.slice(q)}`;
}

/** Envoy's internal control headers, dropped from external requests at the edge (cleanInternalHeaders). */
const edgeCleanedHeaders = [
  'x-envoy-decorator-operation',
  'x-envoy-downstream-service-cluster',
  'x-envoy-downstream-service-node',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-external-address',
  'x-envoy-force-trace',
  'x-envoy-internal',
  'x-envoy-ip-tags',
  'x-envoy-max-retries',
  'x-envoy-original-path',
  'x-envoy-retriable-header-names',
  'x-envoy-retriable-status-codes',
  'x-envoy-retry-grpc-on',
  'x-envoy-retry-on',
  'x-envoy-upstream-alt-stat-name',
  'x-envoy-upstream-rq-per-try-timeout-ms',
  'x-envoy-upstream-rq-timeout-alt-response',
  'x-envoy-upstream-rq-timeout-ms',
];

const privateV4 = /^(10\.|127\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.)/;

function isInternalAddress(address: string): boolean {
  const addr = unmappedIp(address);
  return privateV4.test(addr) || addr === '::1' || addr.startsWith('fc') || addr.startsWith('fd');
}

interface ResLike {
  readonly headersSent: boolean;
  readonly writableFinished: boolean;
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer | string): unknown;
  addTrailers(headers: Record<string, string | string[]>): void;
  destroy(err?: Error): unknown;
  on(event: 'close' | 'finish' | 'drain', listener: () => void): unknown;
  /** HTTP/2 only: the stream, for responses that end on their headers (gRPC trailers-only). */
  readonly stream?: { respond(headers: OutgoingHttpHeaders, options: { endStream: boolean }): void };
}

interface ReqLike extends Readable {
  readonly headers: IncomingHttpHeaders;
  readonly method?: string;
  readonly url?: string;
  readonly httpVersionMajor: number;
  readonly stream?: { readonly endAfterHeaders?: boolean };
}

/**
 * Serves one request: routes it, sends it upstream through `ctx.clusters`, streams the answer
 * back and fills `ctx.record`. Resolves when the exchange is over (response sent, failed or the
 * client went away); never rejects.
 */
export function handleHttpRequest(req: DownstreamRequest, res: DownstreamResponse, ctx: HttpRequestContext): Promise<void> {
  return new Exchange(req as unknown as ReqLike, res as unknown as ResLike, ctx).run();
}

type AttemptOutcome =
  | { kind: 'response'; response: UpstreamResponse; startedAt: number }
  | { kind: 'failure'; reset: ResetKind; flag: ResponseFlag; endpoint: string | undefined }
  | { kind: 'gone' };

class Exchange implements FormatContext {
  private readonly req: ReqLike;
  private readonly res: ResLike;
  private readonly ctx: HttpRequestContext;
  private readonly settings: HcmSettings;
  private readonly record: RequestRecord;
  private readonly random: () => number;
  private readonly h2: boolean;
  private readonly flags: Set<ResponseFlag>;
  private view!: RequestView;
  /** Request headers as they go upstream (also what routes match against). */
  private headers: HeaderRecord = {};
  private grpc = false;
  private route: CompiledRoute | undefined;
  private weighted: CompiledWeightedCluster | undefined;
  private cors: CompiledCors | undefined;
  private corsOrigin: string | undefined;
  private setCookies: string[] | undefined;
  private body: RequestBody | undefined;
  private bytesSent = 0;
  /** The exchange is over for the router: the client left or a timeout fired. */
  private readonly cancel = new AbortController();
  private gone = false;
  private globalTimer: NodeJS.Timeout | undefined;
  private globalTimedOut = false;
  private responseStarted = false;
  private upstreamBody: Readable | undefined;
  /** The fast path's body consumer, while the body flows. */
  private bodySink: DownstreamSink | undefined;
  private upstreamReq: UpstreamRequest | undefined;
  private finish!: () => void;
  private readonly finished: Promise<void>;
  /** Per-request hooks of the chain's filters; undefined when none applies (the common fast path). */
  private hooks: HttpStreamHooks[] | undefined;
  private filterCtx: HttpFilterContext | undefined;
  upstreamHost: string | undefined;
  upstreamCluster: string | undefined;

  constructor(req: ReqLike, res: ResLike, ctx: HttpRequestContext) {
    this.req = req;
    this.res = res;
    this.ctx = ctx;
    this.settings = ctx.settings ?? defaultHcmSettings;
    this.record = ctx.record;
    this.flags = ctx.record.responseFlags;
    this.random = ctx.random ?? Math.random;
    this.h2 = req.httpVersionMajor === 2;
    this.finished = new Promise((resolve) => {
      this.finish = resolve;
    });
    res.on('finish', () => this.finish());
    res.on('close', () => {
      if (!res.writableFinished) this.onDownstreamGone();
      this.finish();
    });
  }

  // FormatContext (header values with %COMMAND%).
  get sourceAddress(): string {
    return this.ctx.sourceAddress;
  }
  get sourcePort(): number | undefined {
    return this.ctx.sourcePort;
  }
  get localAddress(): string | undefined {
    return this.ctx.localAddress;
  }
  get localPort(): number | undefined {
    return this.ctx.localPort;
  }
  get protocol(): string {
    return this.h2 ? 'HTTP/2' : 'HTTP/1.1';
  }
  requestHeader(name: string): string | undefined {
    return this.view.header(name);
  }

  async run(): Promise<void> {
    try {
      await this.serve();
    } catch (err) {
      // A bug, not a request outcome: answer 500 rather than leave the client hanging.
      if (!this.gone) this.localReply(500, `internal proxy error: ${(err as Error).message}`, {});
    }
    await this.finished;
    this.clearTimers();
    this.upstreamReq?.bodyStream?.destroy();
    const r = this.record;
    r.durationMs = Date.now() - r.startTime;
    r.bytesReceived = this.body?.size ?? r.bytesReceived;
    r.bytesSent = this.bytesSent;
    if (this.hooks) for (const h of this.hooks) h.onComplete?.(this.filterCtx!);
  }

  // FilterContextView's reads of the exchange.
  get requestView(): RequestView {
    return this.view;
  }
  get upstreamHeaders(): HeaderRecord {
    return this.headers;
  }
  get chosenRoute(): CompiledRoute | undefined {
    return this.route;
  }
  get exchangeRecord(): RequestRecord {
    return this.record;
  }
  get downstreamTls(): boolean {
    return this.ctx.tls === true;
  }

  private onDownstreamGone(): void {
    if (this.gone) return;
    this.gone = true;
    if (!this.globalTimedOut) this.flags.add('DC');
    if (!this.res.headersSent) this.record.responseCode = 0;
    this.cancel.abort();
    this.upstreamBody?.destroy();
    this.bodySink?.cancel();
    this.clearTimers();
  }

  private clearTimers(): void {
    if (this.globalTimer) clearTimeout(this.globalTimer);
    this.globalTimer = undefined;
  }

  /** Connection-manager rules, then the filters in pilot's order: CORS, fault, router. */
  private async serve(): Promise<void> {
    const { req, settings, record } = this;
    const raw = req.headers;
    const method = req.method ?? (raw[':method'] as string | undefined) ?? 'GET';
    let authority = ((this.h2 ? raw[':authority'] : undefined) as string | undefined) ?? raw.host ?? '';
    let path = (this.h2 ? (raw[':path'] as string | undefined) : req.url) ?? '/';
    if (path.startsWith('http://') || path.startsWith('https://')) {
      // Absolute form (an app using the proxy as its HTTP proxy): authority and path come from the URL.
      const u = new URL(path);
      authority = u.host;
      path = `${u.pathname}${u.search}`;
    }
    const scheme = this.ctx.tls ? 'https' : 'http';
    this.record.protocol = this.h2 ? 'HTTP/2' : 'HTTP/1.1';

    // Copy the headers as they will go upstream, without hop-by-hop and pseudo-headers.
    const tokens = connectionTokens(raw.connection);
    const h: HeaderRecord = {};
    for (const k in raw) {
      const v = raw[k];
      if (v === undefined || k.charCodeAt(0) === 58 || k === 'host' || isHopByHop(k, tokens)) continue;
      h[k] = v;
    }
    this.headers = h;
    this.grpc = isGrpcContentType(typeof h['content-type'] === 'string' ? h['content-type'] : undefined);
    // gRPC needs `te: trailers` upstream.
    if (raw.te === 'trailers') h.te = 'trailers';
    // The proxy answers `expect: 100-continue` itself (Node does); it never goes upstream.
    if (typeof h.expect === 'string' && h.expect.toLowerCase() === '100-continue') delete h.expect;

    if (settings.normalizePath || settings.mergeSlashes) path = normalizePath(path, settings.mergeSlashes);
    if (settings.stripPort !== 'none') {
      const p = portStart(authority);
      if (p >= 0 && (settings.stripPort === 'any' || authority.slice(p + 1) === String(this.ctx.localPort))) authority = authority.slice(0, p);
    }
    // x-forwarded-proto, x-forwarded-for, x-request-id, as the connection manager sets them.
    if (settings.useRemoteAddress || h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = scheme;
    const edge = settings.useRemoteAddress && !isInternalAddress(this.ctx.sourceAddress);
    if (edge) for (const k of edgeCleanedHeaders) delete h[k];
    if (settings.useRemoteAddress && !settings.skipXffAppend && this.ctx.sourceAddress) {
      const xff = h['x-forwarded-for'];
      h['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(',') : xff},${this.ctx.sourceAddress}` : this.ctx.sourceAddress;
    }
    if (settings.generateRequestId && (h['x-request-id'] === undefined || (edge && !settings.preserveExternalRequestId))) h['x-request-id'] = randomUUID();
    if (settings.forwardClientCertDetails === 'SANITIZE' || settings.forwardClientCertDetails === 'SANITIZE_SET') delete h['x-forwarded-client-cert'];
    if (settings.via) h.via = h.via ? `${h.via},${settings.via}` : settings.via;

    const view = new RequestView(method, authority, path, scheme, h);
    this.view = view;
    record.method = method;
    record.path = path;
    record.authority = authority;
    const rid = h['x-request-id'];
    if (typeof rid === 'string') record.requestId = rid;

    // Filters before routing (authorization, telemetry): the first local reply answers the request.
    const filters = this.ctx.filters;
    if (filters && filters.length > 0 && this.ctx.connection) {
      const fctx = new FilterContextView(this, this.ctx.connection);
      this.filterCtx = fctx;
      this.hooks = beginHttpFilters(filters, fctx);
      if (this.hooks) {
        for (const hk of this.hooks) {
          const reply = hk.onRequest?.(fctx);
          if (reply) {
            if (reply.flag) this.flags.add(reply.flag);
            if (reply.details) record.responseCodeDetails = reply.details;
            this.drainRequest();
            this.localReply(reply.status, reply.body, reply.headers ? { headers: reply.headers } : {});
            return;
          }
        }
      }
    }

    // Route.
    const routes = this.ctx.routes;
    const found = routes?.route(view, this.random);
    const vh = found?.virtualHost;
    if (vh && vh.requireTls !== 'NONE' && h['x-forwarded-proto'] !== 'https') {
      if (vh.requireTls === 'ALL' || h['x-envoy-internal'] !== 'true') {
        this.drainRequest();
        this.localReply(301, '', { headers: { location: this.newUri({ httpsRedirect: true }) } });
        return;
      }
    }
    const route = found?.route;
    if (!route) {
      this.flags.add('NR');
      this.drainRequest();
      this.localReply(404, '', {});
      return;
    }
    this.route = route;
    record.routeName = route.name;
    const action = route.action;

    // The upstream cluster is chosen at route time (the fault filter's upstream_cluster needs it).
    let clusterName: string | undefined;
    if (action) {
      clusterName = this.chooseCluster(action);
      if (clusterName) {
        this.upstreamCluster = clusterName;
        record.upstreamCluster = clusterName;
      }
    }

    // CORS.
    const cors = this.weighted?.cors ?? route.cors;
    if (cors && sampled(cors.enabled, this.random)) {
      const origin = view.header('origin');
      if (origin) {
        const preflight = method === 'OPTIONS' && !!view.header('access-control-request-method');
        if (!corsOriginAllowed(cors, origin)) {
          if (!cors.forwardNotMatchingPreflights && preflight) {
            this.drainRequest();
            this.localReply(200, '', {});
            return;
          }
        } else {
          this.cors = cors;
          this.corsOrigin = origin;
          if (preflight) {
            this.drainRequest();
            this.preflight(cors, origin);
            return;
          }
        }
      }
    }

    // Fault: delay, then abort (decided after the delay, as Envoy does).
    const fault = this.weighted?.fault ?? route.fault;
    if (fault) {
      const delay = faultDelay(fault, view, clusterName, this.random);
      if (delay !== undefined) {
        this.flags.add('DI');
        await this.sleep(delay);
        if (this.gone) return;
      }
      const abort = faultAbort(fault, view, clusterName, this.random);
      if (abort) {
        this.flags.add('FI');
        this.drainRequest();
        this.localReply(abort.status, LocalReplyBody.faultAbort, { grpcStatus: abort.grpcStatus });
        return;
      }
    }

    if (route.directResponse) {
      this.drainRequest();
      const d = route.directResponse;
      const location = d.status === 201 || (d.status >= 300 && d.status < 400) ? this.newUri({}) : undefined;
      this.localReply(d.status, d.body ?? '', { routeHeaders: true, ...(location ? { headers: { location } } : {}) });
      return;
    }
    if (route.redirect) {
      this.drainRequest();
      const r = route.redirect;
      this.rewritePath(route, r.prefixRewrite, r.regexRewrite, false);
      this.localReply(r.status, '', { routeHeaders: true, headers: { location: this.newUri(r) } });
      return;
    }
    if (!action) {
      this.flags.add('NR');
      this.drainRequest();
      this.localReply(404, '', {});
      return;
    }
    const cluster = clusterName ? this.ctx.clusters.get(clusterName) : undefined;
    if (!cluster) {
      this.flags.add('NC');
      this.drainRequest();
      this.localReply(action.clusterNotFoundStatus, '', { routeHeaders: true });
      return;
    }
    await this.forward(route, action, cluster);
  }

  private chooseCluster(action: CompiledRouteAction): string | undefined {
    const chosen = chooseWeighted(action, this.random);
    this.weighted = chosen;
    return clusterNameOf(action, chosen, this.view);
  }

  /** Waits `ms`, or less if the client leaves. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const signal = this.cancel.signal;
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }

  /** Reads and drops a request body we will not forward (keeps HTTP/1 keep-alive healthy). */
  private drainRequest(): void {
    if (!this.body) this.req.resume();
  }

  /** prefix_rewrite / regex_rewrite on the path, keeping the query; records x-envoy-original-path. */
  private rewritePath(route: CompiledRoute, prefix: string | undefined, regex: { re: RegExp; sub: string } | undefined, originalHeader: boolean): void {
    if (prefix === undefined && !regex) return;
    const view = this.view;
    const original = view.path;
    const pathOnly = view.pathOnly;
    const query = original.slice(pathOnly.length);
    let next: string;
    if (regex) {
      regex.re.lastIndex = 0;
      next = pathOnly.replace(regex.re, regex.sub);
    } else {
      const matched = route.matchKind === 'prefix' || route.matchKind === 'path_separated_prefix' ? route.matchPrefix.length : pathOnly.length;
      next = prefix! + pathOnly.slice(matched);
    }
    view.setPath(next + query);
    if (originalHeader && !this.settings.suppressEnvoyHeaders) this.headers['x-envoy-original-path'] = original;
  }

  /** Envoy's Http::Utility::newUri: the Location of a redirect. */
  private newUri(r: {
    scheme?: string | undefined;
    httpsRedirect?: boolean;
    host?: string;
    port?: string;
    pathRedirect?: string | undefined;
    pathRedirectHasQuery?: boolean;
    stripQuery?: boolean;
  }): string {
    const view = this.view;
    const requestProto = (this.headers['x-forwarded-proto'] as string | undefined) ?? view.scheme;
    const scheme = r.scheme ? r.scheme : r.httpsRedirect ? 'https' : requestProto;
    const port = r.port ?? '';
    let host = r.host ?? '';
    if (!host) {
      host = view.authority;
      const p = portStart(host);
      if (p >= 0) {
        const requestPort = host.slice(p);
        let remove = port !== '';
        if (scheme !== requestProto) {
          remove ||= requestProto === 'https' && requestPort === ':443';
          remove ||= requestProto === 'http' && requestPort === ':80';
        }
        if (remove) host = host.slice(0, p);
      }
    }
    let path: string;
    if (r.pathRedirect) {
      if (r.pathRedirectHasQuery) path = r.pathRedirect;
      else {
        const q = view.path.indexOf('?');
        path = q < 0 ? r.pathRedirect : r.pathRedirect + view.path.slice(q);
      }
    } else path = view.path;
    if (!path.startsWith('/')) path = `/${path}`;
    if (r.stripQuery && !r.pathRedirectHasQuery) {
      const q = path.indexOf('?');
      if (q >= 0) path = path.slice(0, q);
    }
    return `${scheme}://${host}${port}${path}`;
  }

  private preflight(cors: CompiledCors, origin: string): void {
    const out: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
    if (cors.allowCredentials) out['access-control-allow-credentials'] = 'true';
    if (cors.allowMethods) out['access-control-allow-methods'] = cors.allowMethods;
    if (cors.allowHeaders) out['access-control-allow-headers'] = cors.allowHeaders;
    if (cors.maxAge) out['access-control-max-age'] = cors.maxAge;
    this.finalizeDownstreamHeaders(out, 200);
    out['content-length'] = '0';
    this.record.responseCode = 200;
    this.responseStarted = true;
    this.res.writeHead(200, out);
    this.res.end();
  }

  /** Connection-manager and CORS response headers, on every response. */
  private finalizeDownstreamHeaders(out: OutgoingHttpHeaders, status: number): void {
    if (this.hooks) for (const h of this.hooks) h.onResponse?.(this.filterCtx!, status, out as FilterHeaders);
    if (this.cors && this.corsOrigin) {
      out['access-control-allow-origin'] = this.corsOrigin;
      if (this.cors.allowCredentials) out['access-control-allow-credentials'] = 'true';
      if (this.cors.exposeHeaders) out['access-control-expose-headers'] = this.cors.exposeHeaders;
    }
    const s = this.settings;
    if (s.serverHeaderTransformation === 'OVERWRITE' || (s.serverHeaderTransformation === 'APPEND_IF_ABSENT' && out.server === undefined)) out.server = s.serverName;
    if (s.via) out.via = out.via ? `${out.via},${s.via}` : s.via;
    if (s.alwaysSetRequestIdInResponse && this.headers['x-request-id'] !== undefined) out['x-request-id'] = this.headers['x-request-id'];
  }

  /**
   * A response the proxy makes itself. gRPC requests get HTTP 200 with `grpc-status` (mapped from
   * the HTTP status unless given) and `grpc-message` (the body), as Envoy's sendLocalReply does.
   */
  private localReply(
    status: number,
    body: string | Buffer,
    opts: { grpcStatus?: number | undefined; routeHeaders?: boolean; headers?: Record<string, string> },
  ): void {
    const res = this.res;
    if (this.gone) return;
    if (res.headersSent) {
      // Too late for a reply: the client sees the stream reset.
      res.destroy();
      return;
    }
    const out: HeaderRecord = {};
    if (opts.headers) Object.assign(out, opts.headers);
    if (opts.routeHeaders && this.route) {
      applyHeaderMutations(out, this.responseMutations(), this);
    }
    const outgoing = out as OutgoingHttpHeaders;
    this.finalizeDownstreamHeaders(outgoing, this.grpc ? 200 : status);
    this.responseStarted = true;
    if (this.grpc) {
      const grpcStatus = opts.grpcStatus ?? httpToGrpcStatus(status);
      const text = typeof body === 'string' ? body : body.toString('utf8');
      outgoing['content-type'] = 'application/grpc';
      this.record.responseCode = 200;
      outgoing['grpc-status'] = String(grpcStatus);
      if (text) outgoing['grpc-message'] = encodeGrpcMessage(text);
      this.trailersOnly(200, outgoing);
      return;
    }
    const buf = typeof body === 'string' ? (body ? Buffer.from(body) : undefined) : body;
    if (buf && outgoing['content-type'] === undefined) outgoing['content-type'] = 'text/plain';
    outgoing['content-length'] = String(buf?.length ?? 0);
    this.record.responseCode = status;
    this.bytesSent += buf?.length ?? 0;
    res.writeHead(status, outgoing);
    res.end(buf);
  }

  /** A gRPC trailers-only response: one HEADERS frame that ends the stream (the compatibility API cannot end on headers). */
  private trailersOnly(status: number, headers: OutgoingHttpHeaders): void {
    const stream = this.h2 ? this.res.stream : undefined;
    if (stream) stream.respond({ ...headers, ':status': status }, { endStream: true });
    else {
      this.res.writeHead(status, headers);
      this.res.end();
    }
  }

  private responseMutations(): HeaderMutation[] {
    const route = this.route!;
    const w = this.weighted?.responseHeaders;
    return w ? [w, ...route.responseHeaders] : (route.responseHeaders as HeaderMutation[]);
  }

  private timeoutFor(action: CompiledRouteAction): number {
    if (this.grpc && action.grpcTimeoutMaxMs !== undefined) {
      let t = parseGrpcTimeout(this.view.header('grpc-timeout')) ?? 0;
      if (action.grpcTimeoutOffsetMs > 0 && action.grpcTimeoutOffsetMs < t) t -= action.grpcTimeoutOffsetMs;
      if (action.grpcTimeoutMaxMs > 0 && (t === 0 || t > action.grpcTimeoutMaxMs)) t = action.grpcTimeoutMaxMs;
      return t;
    }
    return action.timeoutMs;
  }

  private hasRequestBody(): boolean {
    const req = this.req;
    if (this.h2) return req.stream?.endAfterHeaders !== true;
    const cl = req.headers['content-length'];
    if (cl !== undefined) return cl !== '0';
    return req.headers['transfer-encoding'] !== undefined;
  }

  private async forward(route: CompiledRoute, action: CompiledRouteAction, cluster: UpstreamCluster): Promise<void> {
    const h = this.headers;
    const view = this.view;
    const vh = route.virtualHost;
    // Route header mutations (weighted cluster first, then route, virtual host, route configuration).
    const reqMutations = this.weighted?.requestHeaders ? [this.weighted.requestHeaders, ...route.requestHeaders] : route.requestHeaders;
    if (reqMutations.length > 0) applyHeaderMutations(h, reqMutations, this);
    this.rewritePath(route, action.prefixRewrite, action.regexRewrite, true);
    let authority = view.authority;
    if (this.weighted?.hostRewrite) authority = this.weighted.hostRewrite;
    else if (action.hostRewriteLiteral) authority = action.hostRewriteLiteral;
    else if (action.hostRewriteHeader) authority = view.header(action.hostRewriteHeader) || authority;
    else if (action.hostRewritePathRegex) {
      const rx = action.hostRewritePathRegex;
      rx.re.lastIndex = 0;
      authority = view.pathOnly.replace(rx.re, rx.sub) || authority;
    }

    const globalMs = this.timeoutFor(action);
    const retry = action.retry;
    let perTryMs = retry?.perTryTimeoutMs;
    if (perTryMs !== undefined && globalMs > 0 && perTryMs >= globalMs) perTryMs = undefined;
    const expected = perTryMs ?? globalMs;
    if (expected > 0 && !this.settings.suppressEnvoyHeaders) h['x-envoy-expected-rq-timeout-ms'] = String(expected);

    // Consistent-hash key (a generated cookie is set on the response).
    let key: string | undefined;
    if (action.hash) {
      key = hashKey(
        action.hash,
        { view, sourceAddress: this.ctx.sourceAddress, connectionKey: `${this.ctx.sourceAddress}:${this.ctx.sourcePort ?? ''}|${this.ctx.localAddress ?? ''}:${this.ctx.localPort ?? ''}` },
        (c: CookieToSet, value: string) => {
          if (!this.setCookies) this.setCookies = [];
          this.setCookies.push(setCookieValue(c, value));
        },
      );
    }

    // The body: buffered when it ends within the limit; gRPC (and longer bodies) stream.
    let bodyBuffer: Buffer | undefined;
    let streaming = false;
    if (this.hasRequestBody()) {
      const body = new RequestBody(this.req, this.settings.bufferLimitBytes);
      this.body = body;
      if (this.grpc) streaming = true;
      else {
        await body.settled();
        if (this.gone) return;
        if (body.error) {
          this.onDownstreamGone();
          return;
        }
        bodyBuffer = body.buffer();
        streaming = bodyBuffer === undefined;
      }
    } else this.req.resume();
    if (streaming && h['content-length'] === undefined) delete h['content-length'];
    if (bodyBuffer && h['content-length'] === undefined) h['content-length'] = String(bodyBuffer.length);

    const startGlobal = () => {
      if (globalMs > 0 && !this.gone && !this.globalTimer && !this.record.responseCode) {
        this.globalTimer = setTimeout(() => this.onGlobalTimeout(), globalMs);
      }
    };
    if (this.body && !this.body.ended) this.body.onEnded(startGlobal);
    else startGlobal();

    const upstreamReq: UpstreamRequest = { method: view.method, path: view.path, authority, headers: h };
    this.upstreamReq = upstreamReq;
    if (bodyBuffer) upstreamReq.body = bodyBuffer;

    // Mirrors: fire and forget, with the first attempt's request.
    if (action.mirrors.length > 0 && (!streaming || this.body?.replayable)) this.mirror(action, upstreamReq, globalMs);

    const exclude = retry?.previousHosts ? new Set<string>() : undefined;
    let attempt = 0;
    // The retry circuit breaker's slot held by the current retry attempt (given back when it ends).
    let releaseRetry: (() => void) | undefined;
    /** True when a retry may go ahead: retries left, the body replayable, and the cluster's retry budget (else UO). */
    const mayRetry = (): boolean => {
      if (retry === undefined || attempt > retry.numRetries || (streaming && !this.body!.replayable)) return false;
      if (!cluster.acquireRetry) return true;
      const release = cluster.acquireRetry();
      if (!release) {
        this.flags.add('UO');
        return false;
      }
      releaseRetry = release;
      return true;
    };
    try {
      for (;;) {
        attempt++;
        this.record.attempts = attempt;
        if (vh.includeRequestAttemptCount) h['x-envoy-attempt-count'] = String(attempt);
        if (streaming) {
          // The previous attempt's reader must not hold the downstream back any more.
          upstreamReq.bodyStream?.destroy();
          const reader = this.body!.reader();
          if (!reader) {
            // Only reachable on a retry after the body outgrew the buffer: nothing left to replay.
            this.fail('reset', 'UC', attempt > 1);
            return;
          }
          upstreamReq.bodyStream = reader;
        }
        const outcome = await this.attempt(cluster, upstreamReq, key, exclude, perTryMs, action);
        if (outcome.kind === 'gone') return;
        if (outcome.kind === 'failure') {
          releaseRetry?.();
          releaseRetry = undefined;
          if (outcome.endpoint) {
            this.upstreamHost = outcome.endpoint;
            this.record.upstreamHost = outcome.endpoint;
            exclude?.add(outcome.endpoint);
          }
          if (retry !== undefined && retriableReset(retry, outcome.reset)) {
            if (attempt > retry.numRetries) this.flags.add('URX');
            else if (mayRetry()) {
              await this.sleep(backoffMs(retry, attempt, this.random));
              if (this.gone || this.globalTimedOut) return;
              continue;
            }
          }
          this.fail(outcome.reset, outcome.flag, attempt > 1);
          return;
        }
        const resp = outcome.response;
        this.upstreamHost = resp.endpoint;
        this.record.upstreamHost = resp.endpoint;
        if (resp.peerPrincipal) this.record.upstreamPeerPrincipal = resp.peerPrincipal;
        if (resp.localPrincipal) this.record.upstreamLocalPrincipal = resp.localPrincipal;
        if (retry && retriableResponse(retry, resp.status, resp.headers)) {
          if (attempt > retry.numRetries) this.flags.add('URX');
          else {
            const held = releaseRetry;
            releaseRetry = undefined;
            if (mayRetry()) {
              held?.();
              exclude?.add(resp.endpoint);
              resp.body.on('error', () => {});
              resp.body.destroy();
              await this.sleep(backoffMs(retry, attempt, this.random));
              if (this.gone || this.globalTimedOut) return;
              continue;
            }
            releaseRetry = held;
          }
        }
        await this.respond(resp, outcome.startedAt, action);
        return;
      }
    } finally {
      releaseRetry?.();
    }
  }

  /** One upstream attempt under the per-try timeout (and the route's max_stream_duration before headers). */
  private async attempt(
    cluster: UpstreamCluster,
    req: UpstreamRequest,
    hashKeyValue: string | undefined,
    exclude: Set<string> | undefined,
    perTryMs: number | undefined,
    action: CompiledRouteAction,
  ): Promise<AttemptOutcome> {
    const autoHostRewrite = action.autoHostRewrite;
    const msd = action.maxStreamDurationMs;
    // Without per-attempt timers the exchange's own signal is enough (no allocation per attempt).
    const parent = this.cancel.signal;
    const ac = perTryMs !== undefined || msd !== undefined ? new AbortController() : undefined;
    const onCancel = () => ac?.abort();
    if (ac) parent.addEventListener('abort', onCancel);
    let perTryFired = false;
    let msdFired = false;
    const timer =
      ac && perTryMs !== undefined
        ? setTimeout(() => {
            perTryFired = true;
            ac.abort();
          }, perTryMs)
        : undefined;
    const msdTimer =
      ac && msd !== undefined
        ? setTimeout(() => {
            msdFired = true;
            ac.abort();
          }, msd)
        : undefined;
    const startedAt = performance.now();
    if (this.hooks) for (const h of this.hooks) h.onUpstreamRequest?.(this.filterCtx!, req.headers);
    try {
      // One options object, built field by field (spreads of conditional objects allocate per field).
      const opts: UpstreamOptions = { signal: ac ? ac.signal : parent, sourceAddress: this.ctx.sourceAddress, downstreamProtocol: this.h2 ? 'HTTP/2' : 'HTTP/1.1' };
      if (perTryMs !== undefined) opts.timeoutMs = perTryMs;
      if (hashKeyValue !== undefined) opts.hashKey = hashKeyValue;
      if (exclude && exclude.size > 0) opts.excludeEndpoints = new Set(exclude);
      if (this.ctx.originalDestination) opts.originalDestination = this.ctx.originalDestination;
      if (autoHostRewrite) opts.autoHostRewrite = autoHostRewrite;
      const response = await cluster.request(req, opts);
      if (this.gone || this.globalTimedOut || perTryFired || msdFired) {
        response.body.on('error', () => {});
        response.body.destroy();
        if (this.gone || this.globalTimedOut) return { kind: 'gone' };
        return { kind: 'failure', reset: msdFired ? 'max-stream-duration' : 'timeout', flag: 'UT', endpoint: response.endpoint };
      }
      return { kind: 'response', response, startedAt };
    } catch (err) {
      if (this.gone || this.globalTimedOut) return { kind: 'gone' };
      const endpoint = err instanceof UpstreamError ? err.endpoint : undefined;
      if (msdFired) return { kind: 'failure', reset: 'max-stream-duration', flag: 'UT', endpoint };
      if (perTryFired) return { kind: 'failure', reset: 'timeout', flag: 'UT', endpoint };
      if (err instanceof UpstreamError) {
        switch (err.flag) {
          case 'UT':
            return { kind: 'failure', reset: 'timeout', flag: 'UT', endpoint };
          case 'UF':
            return { kind: 'failure', reset: 'connect-failure', flag: 'UF', endpoint };
          case 'UO':
            return { kind: 'failure', reset: 'overflow', flag: 'UO', endpoint };
          case 'UH':
            return { kind: 'failure', reset: 'no-healthy-upstream', flag: 'UH', endpoint };
          default:
            return { kind: 'failure', reset: /refused/i.test(err.message) ? 'refused-stream' : 'reset', flag: err.flag === 'NR' ? 'UC' : err.flag, endpoint };
        }
      }
      return { kind: 'failure', reset: 'reset', flag: 'UC', endpoint };
    } finally {
      if (timer) clearTimeout(timer);
      if (msdTimer) clearTimeout(msdTimer);
      if (ac) parent.removeEventListener('abort', onCancel);
    }
  }

  /** The local reply for a failed upstream exchange, with Envoy's flags and body text. */
  private fail(reset: ResetKind, flag: ResponseFlag, retried: boolean): void {
    this.flags.add(flag);
    if (reset === 'timeout') {
      this.localReply(504, LocalReplyBody.timeout, { routeHeaders: true });
      return;
    }
    if (reset === 'max-stream-duration') {
      // Envoy: 504 once the whole request was received, 408 while it was still arriving.
      const complete = this.body === undefined || this.body.ended;
      this.localReply(complete ? 504 : 408, LocalReplyBody.maxStreamDuration, { routeHeaders: true });
      return;
    }
    if (reset === 'no-healthy-upstream') {
      this.localReply(503, LocalReplyBody.noHealthyUpstream, { routeHeaders: true });
      return;
    }
    const text = `${LocalReplyBody.resetPrefix}${retried ? 'retried and the latest ' : ''}reset reason: ${resetReasons[reset]}`;
    this.localReply(503, text, { routeHeaders: true });
  }

  private onGlobalTimeout(): void {
    this.globalTimer = undefined;
    if (this.gone || this.res.writableFinished) return;
    this.globalTimedOut = true;
    this.flags.add('UT');
    this.cancel.abort();
    if (this.responseStarted) {
      // Headers already went out: all we can do is reset the stream.
      this.upstreamBody?.destroy();
      this.bodySink?.cancel();
      this.res.destroy();
      return;
    }
    this.localReply(504, LocalReplyBody.timeout, { routeHeaders: true });
  }

  private async respond(resp: UpstreamResponse, startedAt: number, action: CompiledRouteAction): Promise<void> {
    const res = this.res;
    if (this.hooks) for (const h of this.hooks) h.onUpstreamResponse?.(this.filterCtx!, resp.status, resp.headers);
    const out: HeaderRecord = {};
    const tokens = connectionTokens(resp.headers.connection);
    for (const k in resp.headers) {
      if (k.charCodeAt(0) === 58 || isHopByHop(k, tokens)) continue;
      out[k] = resp.headers[k]!;
    }
    if (!this.settings.suppressEnvoyHeaders) out['x-envoy-upstream-service-time'] = String(Math.round(performance.now() - startedAt));
    const mutations = this.responseMutations();
    if (mutations.length > 0) applyHeaderMutations(out, mutations, this);
    if (this.setCookies) {
      const cur = out['set-cookie'];
      out['set-cookie'] = cur === undefined ? this.setCookies : [...(typeof cur === 'string' ? [cur] : cur), ...this.setCookies];
    }
    if (this.route?.virtualHost.includeAttemptCountInResponse) out['x-envoy-attempt-count'] = String(this.record.attempts);
    const outgoing = out as OutgoingHttpHeaders;
    this.finalizeDownstreamHeaders(outgoing, resp.status);

    this.record.responseCode = resp.status;
    this.responseStarted = true;
    if (resp.pipeTo && !(this.grpc && outgoing['grpc-status'] !== undefined)) {
      res.writeHead(resp.status, outgoing);
      await this.pipeBody(resp, startedAt, action);
      return;
    }
    const body = resp.body;
    this.upstreamBody = body;
    if (this.grpc && outgoing['grpc-status'] !== undefined) {
      // A gRPC trailers-only answer (status in the headers, no messages): pass it on as one.
      body.on('error', () => {});
      body.resume();
      this.trailersOnly(resp.status, outgoing);
      return;
    }
    res.writeHead(resp.status, outgoing);

    // max_stream_duration also bounds the response body.
    let msdTimer: NodeJS.Timeout | undefined;
    if (action.maxStreamDurationMs !== undefined) {
      const left = action.maxStreamDurationMs - (performance.now() - startedAt);
      msdTimer = setTimeout(
        () => {
          this.flags.add('UT');
          body.destroy();
          res.destroy();
        },
        Math.max(0, left),
      );
    }

    await new Promise<void>((resolve) => {
      const done = () => {
        if (msdTimer) clearTimeout(msdTimer);
        resolve();
      };
      body.on('data', (chunk: Buffer) => {
        this.bytesSent += chunk.length;
        if (!res.write(chunk)) body.pause();
      });
      res.on('drain', () => body.resume());
      body.on('end', () => {
        if (this.gone) return done();
        const trailers = filterTrailers(resp.trailers?.());
        if (this.grpc && typeof trailers['grpc-status'] === 'string') this.record.grpcStatus = Number(trailers['grpc-status']);
        if (Object.keys(trailers).length > 0) res.addTrailers(trailers);
        res.end();
        done();
      });
      body.on('error', () => {
        // The upstream reset after the headers: the client sees its stream reset too.
        if (!this.gone && !this.globalTimedOut) this.flags.add('UR');
        res.destroy();
        done();
      });
      body.on('close', () => {
        if (!body.readableEnded) {
          if (!this.gone && !this.globalTimedOut && !res.writableFinished) {
            this.flags.add('UR');
            res.destroy();
          }
          done();
        }
      });
    });
  }

  /** The body straight from the cluster's connection to the client: no stream in between (the fast path). */
  private pipeBody(resp: UpstreamResponse, startedAt: number, action: CompiledRouteAction): Promise<void> {
    return new Promise<void>((resolve) => {
      const sink = new DownstreamSink(this, this.res, resp, resolve);
      this.bodySink = sink;
      // max_stream_duration also bounds the response body.
      if (action.maxStreamDurationMs !== undefined) {
        const left = action.maxStreamDurationMs - (performance.now() - startedAt);
        sink.timer = setTimeout(() => {
          this.flags.add('UT');
          sink.cancel();
          this.res.destroy();
        }, Math.max(0, left));
      }
      sink.handle = resp.pipeTo!(sink);
      if (sink.finished) sink.handle = undefined;
    });
  }

  /** DownstreamSink's view of the exchange. */
  sinkData(n: number): void {
    this.bytesSent += n;
  }
  get sinkGone(): boolean {
    return this.gone;
  }
  get sinkGrpc(): boolean {
    return this.grpc;
  }
  sinkFailed(): void {
    if (!this.gone && !this.globalTimedOut) this.flags.add('UR');
  }
  sinkGrpcStatus(status: number): void {
    this.record.grpcStatus = status;
  }

  private mirror(action: CompiledRouteAction, req: UpstreamRequest, timeoutMs: number): void {
    for (const m of action.mirrors) {
      if (!sampled(m.fraction, this.random)) continue;
      const name = m.cluster || this.view.header(m.clusterHeader);
      const cluster = name ? this.ctx.clusters.get(name) : undefined;
      if (!cluster) continue;
      const shadow: UpstreamRequest = {
        method: req.method,
        path: req.path,
        authority: m.appendShadowSuffix ? shadowAuthority(req.authority) : req.authority,
        headers: { ...req.headers },
      };
      if (req.body) shadow.body = req.body;
      else if (this.body) {
        const reader = this.body.reader(true);
        if (!reader) continue;
        shadow.bodyStream = reader;
      }
      cluster
        .request(shadow, {
          ...(timeoutMs > 0 ? { timeoutMs, signal: AbortSignal.timeout(timeoutMs) } : {}),
          sourceAddress: this.ctx.sourceAddress,
          ...(this.ctx.originalDestination ? { originalDestination: this.ctx.originalDestination } : {}),
          downstreamProtocol: this.h2 ? 'HTTP/2' : 'HTTP/1.1',
        })
        .then(
          (r) => {
            r.body.on('error', () => {});
            r.body.resume();
          },
          () => {},
        );
    }
  }
}

/**
 * What filters see of an exchange: read through to the exchange (getters on the prototype, so one
 * small object per request rather than an object of closures).
 */
class FilterContextView implements HttpFilterContext {
  readonly connection: DownstreamConnection;
  readonly record: RequestRecord;
  readonly scheme: 'http' | 'https';
  readonly #ex: Exchange;
  constructor(ex: Exchange, connection: DownstreamConnection) {
    this.#ex = ex;
    this.connection = connection;
    this.record = ex.exchangeRecord;
    this.scheme = ex.downstreamTls ? 'https' : 'http';
  }
  get method(): string {
    return this.#ex.requestView.method;
  }
  get authority(): string {
    return this.#ex.requestView.authority;
  }
  get path(): string {
    return this.#ex.requestView.path;
  }
  get requestHeaders(): FilterHeaders {
    return this.#ex.upstreamHeaders as FilterHeaders;
  }
  get routeName(): string | undefined {
    return this.#ex.chosenRoute?.name;
  }
  get upstreamCluster(): string | undefined {
    return this.#ex.upstreamCluster;
  }
  get routeOperation(): string | undefined {
    return this.#ex.chosenRoute?.operation;
  }
}

/**
 * The response body's consumer on the fast path: writes each chunk to the client, pauses the
 * upstream when the client's buffer is full, ends with the trailers. One object per response
 * instead of a stream and its listeners.
 */
class DownstreamSink implements BodySink {
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
    this.#ex.sinkData(chunk.length);
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
    if (!this.#ex.sinkGone) {
      const trailers = filterTrailers(this.#resp.trailers?.());
      if (this.#ex.sinkGrpc && typeof trailers['grpc-status'] === 'string') this.#ex.sinkGrpcStatus(Number(trailers['grpc-status']));
      if (Object.keys(trailers).length > 0) this.#res.addTrailers(trailers);
      this.#res.end();
    }
    this.#done();
  }

  error(): void {
    if (this.finished) return;
    // The upstream reset after the headers: the client sees its stream reset too.
    this.#ex.sinkFailed();
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

/** The virtual host a request would select (debugging aid for admin pages and tests). */
export function describeRoute(routes: CompiledRoutes, method: string, authority: string, path: string, headers: IncomingHttpHeaders = {}): { virtualHost: CompiledVirtualHost | undefined; route: CompiledRoute | undefined } {
  return routes.route(new RequestView(method, authority, path, 'http', headers), () => 0);
}
