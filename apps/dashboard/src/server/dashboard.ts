// The dashboard process: the page and its JSON API (read-only: GET and HEAD, 405 otherwise), a
// reverse proxy to Prometheus' own UI under /prometheus/ (with its basic-auth header, so the user
// needs no password), /healthz and /metrics on one port; the OTLP/HTTP trace receiver on another.
// Both listen on loopback and, with an owner UID, serve only that user's processes (@weft/guard).
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OwnerGuard } from '@weft/guard';
import { createLogger, type Logger, type LogLevel } from '@weft/model';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { defaultWindow, parseWindow } from './graph.ts';
import { graphLayout } from './layout.ts';
import { otlpHandler } from './otlp.ts';
import { Poller } from './poller.ts';
import { proxiesOf, serviceDetail, servicesOf } from './services.ts';
import { fetchError, locator, prometheusAuth } from './sources.ts';
import { TraceStore, type TraceStoreLimits } from './traces.ts';
import { buildUi, type Ui } from './ui.ts';

export interface DashboardOptions {
  /** Listen address of both ports (default 127.0.0.1). */
  address?: string;
  /** The page and API (0: a free port; default 0). */
  port?: number;
  /** The OTLP/HTTP receiver (0: a free port; default 0). */
  otlpPort?: number;
  /** Serve only processes of this UID (local mode's trust boundary). */
  ownerUid?: number;
  weftdUrl?: string;
  prometheusUrl?: string;
  prometheusPasswordFile?: string;
  /** A cluster's kubeconfig: /api/why reaches a pod's proxy admin port (its loopback) over a port-forward. */
  kubeconfig?: string;
  /** A local mesh's state directory: weftd, Prometheus and the proxies from its mesh.json, read at every poll. */
  stateDir?: string;
  /** Poll interval (default 3000 ms). */
  intervalMs?: number;
  /** Bound of each request to a source (default: the interval, at most 3 s). */
  sourceTimeoutMs?: number;
  traces?: TraceStoreLimits;
  /** OTLP request body limit in bytes (default 4 MiB). */
  maxOtlpBodyBytes?: number;
  /** The UI entry to bundle (tests); default src/ui/main.ts, or a placeholder page without it. */
  uiEntry?: string;
  logLevel?: LogLevel;
  logger?: Logger;
}

export interface Dashboard {
  readonly port: number;
  readonly otlpPort: number;
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly poller: Poller;
  readonly traces: TraceStore;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function listen(server: Server, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer']);

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const log = o.logger ?? createLogger({ scope: 'dashboard', ...(o.logLevel ? { level: o.logLevel } : {}) });
  const address = o.address ?? '127.0.0.1';
  const intervalMs = o.intervalMs ?? 3000;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'weft_dashboard_requests_total', help: 'Requests to the dashboard by route and status code', labelNames: ['route', 'code'], registers: [registry] });
  const pollSeconds = new Histogram({ name: 'weft_dashboard_poll_duration_seconds', help: 'How long one poll of a source took', labelNames: ['source'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  const sourceUp = new Gauge({ name: 'weft_dashboard_source_up', help: 'Whether the last poll of a source worked (1) or not (0)', labelNames: ['source'], registers: [registry] });
  const spansReceived = new Counter({ name: 'weft_dashboard_spans_received_total', help: 'Spans received by the OTLP receiver', registers: [registry] });
  const otlpRejected = new Counter({ name: 'weft_dashboard_otlp_rejected_total', help: 'OTLP requests not accepted, by reason', labelNames: ['reason'], registers: [registry] });
  const refused = new Counter({ name: 'weft_dashboard_owner_guard_refused_connections_total', help: 'Connections refused because the peer process does not run as the owner UID (--owner-uid)', labelNames: ['port'], registers: [registry] });
  const traces = new TraceStore(o.traces);
  new Gauge({ name: 'weft_dashboard_traces', help: 'Traces held in memory', registers: [registry], collect() { this.set(traces.traceCount); } });
  new Gauge({ name: 'weft_dashboard_spans', help: 'Spans held in memory', registers: [registry], collect() { this.set(traces.spanCount); } });

  const guard = o.ownerUid !== undefined ? new OwnerGuard({ ownerUid: o.ownerUid, logger: log.with({ scope: 'guard' }), onRefused: (port) => refused.inc({ port }) }) : undefined;

  let ui: Ui;
  try {
    ui = await buildUi(o.uiEntry);
  } catch (e) {
    const errors = (e as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    const detail = errors?.map((x) => `${x.location ? `${x.location.file}:${x.location.line}: ` : ''}${x.text}`).join('; ') ?? (e as Error).message;
    throw new Error(`the dashboard's page does not build: ${detail}`);
  }
  log.info(ui.placeholder ? 'no UI in this checkout: serving a placeholder page' : 'UI built', { buildMs: ui.buildMs, bytes: [...ui.assets.values()].reduce((n, a) => n + a.body.length, 0) });

  const poller = new Poller({
    endpoints: locator({
      ...(o.weftdUrl ? { weftdUrl: o.weftdUrl } : {}),
      ...(o.prometheusUrl ? { prometheusUrl: o.prometheusUrl } : {}),
      ...(o.prometheusPasswordFile ? { prometheusPasswordFile: o.prometheusPasswordFile } : {}),
      ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    }),
    intervalMs,
    ...(o.sourceTimeoutMs !== undefined ? { timeoutMs: o.sourceTimeoutMs } : {}),
    logger: log,
    onPoll: (source, seconds, ok) => {
      pollSeconds.observe({ source }, seconds);
      sourceUp.set({ source }, ok ? 1 : 0);
    },
  });

  const api = async (path: string, q: URLSearchParams, res: ServerResponse): Promise<string> => {
    const sources = () => poller.sources();
    if (path === '/api/status') {
      sendJson(res, 200, { sources: sources() });
      return 'status';
    }
    if (path === '/api/graph') {
      const window = parseWindow(q.get('window'));
      if (!window) {
        sendJson(res, 400, { error: `window must be a duration from 10s to 24h such as 30s, 1m or 5m, not ${JSON.stringify(q.get('window'))}`, sources: sources() });
        return 'graph';
      }
      const g = await poller.graph(window);
      // The page draws at ELK's positions computed here (layout.ts); without them it lays out itself.
      const layout = g && g.nodes.length > 0 ? await graphLayout(g).catch((e: Error) => log.warn('graph layout failed', { error: e.message })) : undefined;
      sendJson(res, 200, { nodes: g?.nodes ?? [], edges: g?.edges ?? [], ...(layout ? { layout } : {}), window, sources: sources() });
      return 'graph';
    }
    if (path === '/api/services') {
      sendJson(res, 200, { services: servicesOf(poller.weftdData?.configs ?? [], poller.observedServices()), sources: sources() });
      return 'services';
    }
    if (path.startsWith('/api/services/')) {
      const host = decodeURIComponent(path.slice('/api/services/'.length));
      const d = poller.weftdData ? serviceDetail(poller.weftdData, host, poller.observedServices().some((x) => x.host === host)) : undefined;
      if (!d) {
        const why = poller.weftdData ? `no service ${host} (no ServiceEntry declares it, no rule names it, no traffic to it was seen)` : `no config known yet: ${poller.weftd.state.error ?? 'weftd not polled'}`;
        sendJson(res, poller.weftdData ? 404 : 503, { error: why, sources: sources() });
      } else sendJson(res, 200, { ...d, sources: sources() });
      return 'service';
    }
    if (path === '/api/proxies') {
      sendJson(res, 200, { proxies: proxiesOf(poller.weftdData?.syncz ?? []), sources: sources() });
      return 'proxies';
    }
    if (path === '/api/traces') {
      const limit = Math.max(1, Math.min(Number(q.get('limit') ?? 100) || 100, traces.maxTraces));
      sendJson(res, 200, { traces: traces.list(limit), sources: sources() });
      return 'traces';
    }
    if (path.startsWith('/api/traces/')) {
      const id = path.slice('/api/traces/'.length);
      const spans = /^[0-9a-fA-F]{32}$/.test(id) ? traces.get(id) : undefined;
      if (!spans) sendJson(res, 404, { error: `no trace ${id} (traces are kept in memory: the last ${traces.maxTraces}, at most ${traces.maxSpans} spans)`, sources: sources() });
      else sendJson(res, 200, { traceId: id.toLowerCase(), spans, sources: sources() });
      return 'trace';
    }
    if (path === '/api/why') {
      await why(q, res);
      return 'why';
    }
    sendJson(res, 404, { error: `no endpoint ${path}`, endpoints: ['/api/status', '/api/graph', '/api/services', '/api/services/<host>', '/api/proxies', '/api/traces', '/api/traces/<traceId>', '/api/why'], sources: sources() });
    return 'not-found';
  };

  const why = async (q: URLSearchParams, res: ServerResponse) => {
    const source = q.get('source') ?? '';
    const known = poller.endpoints.proxies;
    const p = known.find((x) => x.id === source);
    if (!p && o.kubeconfig && /^[a-z0-9.-]+\/[a-z0-9.-]+$/.test(source)) {
      await whyOnCluster(o.kubeconfig, source, q, res);
      return;
    }
    if (!p) {
      sendJson(res, source ? 404 : 400, { error: source ? `no proxy ${source}; the mesh has ${known.map((x) => x.id).join(', ') || 'none known'}` : 'source=<namespace>/<workload> is required', sources: poller.sources() });
      return;
    }
    const forwarded = new URLSearchParams();
    for (const [k, v] of q) if (k !== 'source') forwarded.append(k, v);
    const url = `http://${p.address.includes(':') ? `[${p.address}]` : p.address}:${p.port}/debug/why?${forwarded}`;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const text = await r.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        sendJson(res, 502, { source, error: `the proxy ${source} answered ${r.status} without JSON: ${text.slice(0, 200).trim()}`, sources: poller.sources() });
        return;
      }
      sendJson(res, r.status, { ...(body as Json), source });
    } catch (e) {
      sendJson(res, 502, { source, error: `the proxy ${source} (admin ${p.address}:${p.port}) is unreachable: ${fetchError(e, 5000)}`, sources: poller.sources() });
    }
  };

  // On a cluster the admin port is on the pod's loopback only: reached over a port-forward, as
  // weftctl proxy-config --kubeconfig does; the workload is a pod or a Deployment's name.
  const whyOnCluster = async (kubeconfig: string, source: string, q: URLSearchParams, res: ServerResponse) => {
    const [namespace, workload] = source.split('/') as [string, string];
    const forwarded = new URLSearchParams();
    for (const [k, v] of q) if (k !== 'source') forwarded.append(k, v);
    try {
      const kube = await import('@weft/kube');
      const kc = kube.loadKubeConfig(kubeconfig);
      const pod = await kube.podByName(kc, namespace, workload);
      const r = await kube.podPortGet(kc, namespace, pod, 15000, `/debug/why?${forwarded}`, 10_000);
      let body: unknown;
      try {
        body = JSON.parse(r.body);
      } catch {
        sendJson(res, 502, { source, error: `the proxy of ${namespace}/${pod} answered ${r.status} without JSON: ${r.body.slice(0, 200).trim()}`, sources: poller.sources() });
        return;
      }
      sendJson(res, r.status, { ...(body as Json), source });
    } catch (e) {
      sendJson(res, 502, { source, error: `the proxy of ${source} on the cluster: ${e instanceof Error ? e.message : String(e)}`, sources: poller.sources() });
    }
  };

  const prometheusProxy = (req: IncomingMessage, res: ServerResponse) => {
    const base = poller.endpoints.prometheus;
    if (!base) {
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`Prometheus is not available: ${poller.endpoints.missing?.prometheus ?? 'not known'}\n`);
      return;
    }
    const b = new URL(base);
    const prefix = b.pathname.replace(/\/+$/, '');
    const rest = (req.url ?? '/prometheus/').slice('/prometheus'.length) || '/';
    const target = new URL(`${prefix}${rest}`, b.origin);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !hopByHop.has(k) && k !== 'host' && k !== 'authorization' && k !== 'cookie') headers[k] = v;
    Object.assign(headers, prometheusAuth(poller.endpoints.prometheusPassword));
    const upstream = request(target, { method: req.method, headers, timeout: 30_000 }, (r) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && !hopByHop.has(k) && k !== 'set-cookie' && k !== 'www-authenticate') out[k] = v;
      // Prometheus redirects within its prefix (/prometheus/ -> /prometheus/query): keep them on our origin.
      if (typeof out.location === 'string' && out.location.startsWith(b.origin)) out.location = out.location.slice(b.origin.length);
      res.writeHead(r.statusCode ?? 502, out);
      r.pipe(res);
    });
    upstream.on('timeout', () => upstream.destroy(new Error('no answer within 30 s')));
    upstream.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end(`Prometheus at ${base} unreachable: ${fetchError(e, 30_000)}\n`);
      else res.destroy();
    });
    upstream.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<string> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('the dashboard is read-only: GET and HEAD only\n');
      return 'method';
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return 'healthz';
    }
    if (path === '/metrics') {
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(text);
      return 'metrics';
    }
    if (path === '/prometheus' || path.startsWith('/prometheus/')) {
      prometheusProxy(req, res);
      return 'prometheus';
    }
    if (path.startsWith('/api/')) return api(path, url.searchParams, res);
    const asset = ui.assets.get(path);
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.length, 'cache-control': path === '/' ? 'no-cache' : 'max-age=60' });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return path === '/' ? 'index' : 'asset';
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`no page ${path}\n`);
    return 'not-found';
  };

  const http = createServer((req, res) => {
    handle(req, res).then(
      (route) => requests.inc({ route, code: String(res.statusCode) }),
      (e: unknown) => {
        log.error('request failed', { path: req.url, error: e instanceof Error ? e.message : String(e) });
        if (!res.headersSent) sendJson(res, 500, { error: e instanceof Error ? e.message : String(e), sources: poller.sources() });
        else res.destroy();
        requests.inc({ route: 'error', code: '500' });
      },
    );
  });
  const otlp = createServer({ requestTimeout: 30_000 }, otlpHandler({ ...(o.maxOtlpBodyBytes !== undefined ? { maxBodyBytes: o.maxOtlpBodyBytes } : {}), accept: (spans) => {
    spansReceived.inc(spans.length);
    traces.add(spans);
  }, onRejected: (reason) => otlpRejected.inc({ reason }) }));
  if (guard) {
    guard.protect(http, 'http');
    guard.protect(otlp, 'otlp');
    log.info('owner-only ports', { ownerUid: guard.ownerUid });
  }
  const close = async () => {
    await poller.stop();
    for (const s of [http, otlp]) {
      s.closeAllConnections();
      if (s.listening) await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  };
  try {
    const port = await listen(http, address, o.port ?? 0);
    const otlpPort = await listen(otlp, address, o.otlpPort ?? 0);
    const host = address.includes(':') ? `[${address}]` : address;
    const url = `http://${host}:${port}/`;
    poller.start();
    // ELK's first run is its slowest (a cold JIT): done now, not on the first page's request.
    void graphLayout({ nodes: [], edges: [{ id: 'warm', source: 'a', target: 'b', rps: 0, successRate: 1, p99Ms: null, mtls: false, error: false }] }).catch(() => {});
    log.info('dashboard ready', { port, otlpPort, url, otlpUrl: `http://${host}:${otlpPort}/v1/traces`, intervalMs, window: defaultWindow, stateDir: o.stateDir, weftdUrl: o.weftdUrl, prometheusUrl: o.prometheusUrl });
    return { port, otlpPort, url, poller, traces, close };
  } catch (e) {
    await close();
    throw e;
  }
}
