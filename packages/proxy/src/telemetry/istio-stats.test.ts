// Istio's metrics as two proxies produce them for one exchange (client sidecar -> server sidecar),
// compared with istio/proxy's expected outputs (testdata/metric, in ../shared/reference): the same
// label names in the same order with the same values.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Cluster, type ClusterLoadAssignment, decodeMessage, encodeMessage, type HttpConnectionManager__Output } from '@weft/xds';
import { Registry } from 'prom-client';
import { noteSkip } from '@weft/testing';
import { describe, expect, it } from 'vitest';
import { testConnection } from '../core/test-support.ts';
import type { DownstreamConnection, FilterHeaders, FilterSite, HttpFilterContext, TcpFilterContext } from '../core/filters.ts';
import type { RequestRecord, ResponseFlag, XdsSnapshot } from '../core/types.ts';
import type { NodeIdentity } from '../xds/node.ts';
import { ProxyTelemetry } from './istio-stats.ts';
import { envoyDefaultBuckets, httpLabelNames, tcpLabelNames } from './metrics.ts';
import { mxHeader, mxIdHeader } from './mx.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const fixtureDir = join(repoRoot, '../shared/reference/istio-proxy/testdata/metric');
const haveFixtures = existsSync(fixtureDir);
noteSkip(haveFixtures ? undefined : `istio/proxy's metric fixtures are not at ${fixtureDir} (reference data kept beside the repository in CI)`);

/** The (name, value) label pairs of an istio/proxy expected-metric template, its Go template resolved with `vars`. */
function fixtureLabels(file: string, vars: Record<string, string> = {}): [string, string][] {
  const text = readFileSync(join(fixtureDir, file), 'utf8');
  const truthy = (cond: string): boolean => {
    const c = cond.trim();
    let m = /^eq \.Vars\.(\w+) "(.*)"$/.exec(c);
    if (m) return (vars[m[1]!] ?? '') === m[2];
    m = /^ne \.Vars\.(\w+) "(.*)"$/.exec(c);
    if (m) return (vars[m[1]!] ?? '') !== m[2];
    m = /^\.Vars\.(\w+)$/.exec(c);
    if (m) return (vars[m[1]!] ?? '') !== '';
    throw new Error(`template condition ${c}`);
  };
  // Resolve {{ if }} / {{ else if }} / {{ else }} / {{ end }} blocks line by line.
  const out: string[] = [];
  const stack: { active: boolean; taken: boolean; parent: boolean }[] = [];
  const active = () => stack.every((s) => s.active);
  for (const line of text.split('\n')) {
    const m = /^\s*\{\{-?\s*(if|else if|else|end)\s*(.*?)\s*-?\}\}\s*$/.exec(line);
    if (!m) {
      if (active()) out.push(line.replace(/\{\{\s*\.(?:Vars|Ports)\.(\w+)\s*\}\}/g, (_, k: string) => vars[k] ?? ''));
      continue;
    }
    const [, kw, cond] = m;
    if (kw === 'if') {
      const t = truthy(cond!);
      stack.push({ active: t, taken: t, parent: active() });
    } else if (kw === 'else if') {
      const top = stack[stack.length - 1]!;
      const t = !top.taken && truthy(cond!);
      top.active = t;
      top.taken ||= t;
    } else if (kw === 'else') {
      const top = stack[stack.length - 1]!;
      top.active = !top.taken;
      top.taken = true;
    } else stack.pop();
  }
  const pairs: [string, string][] = [];
  const re = /- name: (\S+)\s*\n\s*value: ?(.*)/g;
  const body = out.join('\n');
  for (let m = re.exec(body); m; m = re.exec(body)) pairs.push([m[1]!, m[2]!.trim().replace(/^"(.*)"$/, '$1')]);
  return pairs;
}

/** Every sample of one metric in Prometheus text: its labels in order, and its value. */
function samples(text: string, metric: string): { labels: [string, string][]; value: number }[] {
  const out: { labels: [string, string][]; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels: [string, string][] = [];
    const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    const inside = line.slice(metric.length + 1, close);
    for (let m = re.exec(inside); m; m = re.exec(inside)) labels.push([m[1]!, m[2]!]);
    out.push({ labels, value: Number(line.slice(close + 2)) });
  }
  return out;
}

async function scrape(t: ProxyTelemetry): Promise<string> {
  const r = new Registry();
  t.metrics.register(r);
  return r.metrics();
}

// The nodes of istio/proxy's test: productpage-v1 (client) calls ratings-v1 (server).
const clientNode: NodeIdentity = {
  type: 'sidecar',
  ip: '127.0.0.1',
  pod: 'productpage-v1-1',
  namespace: 'default',
  workloadName: 'productpage-v1',
  clusterId: 'client-cluster',
  istioVersion: '1.5-dev',
  labels: { app: 'productpage', version: 'v1', 'service.istio.io/canonical-name': 'productpage-v1', 'service.istio.io/canonical-revision': 'version-1' },
};
const serverNode: NodeIdentity = {
  type: 'sidecar',
  ip: '127.0.0.2',
  pod: 'ratings-v1-1',
  namespace: 'default',
  workloadName: 'ratings-v1',
  clusterId: 'server-cluster',
  labels: { app: 'ratings', version: 'v1', 'service.istio.io/canonical-name': 'ratings', 'service.istio.io/canonical-revision': 'version-1' },
};

const outboundCluster = 'outbound|9080||server.default.svc.cluster.local';
const inboundCluster = 'inbound|9080||';

function snapshot(clusters: Cluster[], endpoints: ClusterLoadAssignment[] = []): XdsSnapshot {
  const c = new Map(clusters.map((x) => [x.name!, decodeMessage('envoy.config.cluster.v3.Cluster', encodeMessage('envoy.config.cluster.v3.Cluster', x))]));
  const e = new Map(
    endpoints.map((x) => [x.cluster_name!, decodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', x))]),
  );
  return { versions: {}, listeners: new Map(), routes: new Map(), clusters: c, endpoints: e, secrets: new Map() };
}

const services = (svc: Record<string, string>) => ({ filter_metadata: { istio: { fields: { services: { listValue: { values: [{ structValue: { fields: Object.fromEntries(Object.entries(svc).map(([k, v]) => [k, { stringValue: v }])) } }] } } } } } });

const clientSnapshot = (svc: Record<string, string> = { host: 'server.default.svc.cluster.local', name: 'server', namespace: 'default' }) =>
  snapshot(
    [{ name: outboundCluster, type: 'EDS', eds_cluster_config: { service_name: outboundCluster, eds_config: { ads: {} } }, metadata: services(svc) }],
    [
      {
        cluster_name: outboundCluster,
        endpoints: [
          {
            lb_endpoints: [
              {
                endpoint: { address: { socket_address: { address: '127.0.0.2', port_value: 9080 } } },
                metadata: { filter_metadata: { istio: { fields: { workload: { stringValue: 'ratings-v1;default;ratings;version-1;server-cluster' } } } } },
              },
            ],
          },
        ],
      },
    ],
  );
const serverSnapshot = snapshot([{ name: inboundCluster, type: 'STATIC', metadata: services({ host: 'server.default.svc.cluster.local' }) }]);

const hcm = {} as HttpConnectionManager__Output;
const site = (direction: FilterSite['direction']): FilterSite => ({ where: 'test', listener: 'test', direction });

const connection = testConnection;

function record(direction: RequestRecord['direction'], cluster: string, o: Partial<RequestRecord> = {}): RequestRecord {
  return {
    direction,
    listener: 'test',
    protocol: 'HTTP/1.1',
    startTime: Date.now(),
    durationMs: 3,
    responseCode: 0,
    responseFlags: new Set<ResponseFlag>(),
    bytesReceived: 0,
    bytesSent: 0,
    attempts: 1,
    upstreamCluster: cluster,
    ...o,
  };
}

function httpCtx(rec: RequestRecord, headers: FilterHeaders, conn = connection()): HttpFilterContext {
  return { connection: conn, record: rec, method: 'GET', authority: 'server.default.svc.cluster.local', path: '/ratings/0', scheme: 'http', requestHeaders: headers, routeName: 'default', upstreamCluster: rec.upstreamCluster };
}

/**
 * One request through both sidecars' filters, passing the headers along as the wire would: the
 * client's upstream request headers become the server's request headers, the server's response
 * headers the client's upstream response headers. `serverHasSidecar: false` answers without MX.
 */
function exchange(client: ProxyTelemetry, server: ProxyTelemetry, o: { status?: number; grpc?: number; serverHasSidecar?: boolean; serverConn?: DownstreamConnection; reply?: Record<string, string> } = {}) {
  const status = o.status ?? 200;
  const reqHeaders: FilterHeaders = { 'user-agent': 'test', ...(o.grpc !== undefined ? { 'content-type': 'application/grpc' } : {}) };
  const cRec = record('outbound', outboundCluster, { upstreamHost: '127.0.0.2:9080', bytesReceived: 10 });
  const cCtx = httpCtx(cRec, reqHeaders);
  const c = client.httpFilterFactory(hcm, site('outbound'))!.begin(cCtx)!;
  c.onRequest?.(cCtx);
  const upstream: FilterHeaders = { ...reqHeaders };
  c.onUpstreamRequest?.(cCtx, upstream);

  const response: FilterHeaders = { 'content-type': 'text/plain', ...(o.grpc !== undefined ? { 'grpc-status': String(o.grpc) } : {}), ...(o.reply ?? {}) };
  let appSaw: FilterHeaders = upstream;
  if (o.serverHasSidecar !== false) {
    const sRec = record('inbound', inboundCluster, { upstreamHost: '127.0.0.1:9080', bytesReceived: 10, responseCode: status, bytesSent: 20 });
    const sCtx = httpCtx(sRec, { ...upstream }, o.serverConn);
    const s = server.httpFilterFactory(hcm, site('inbound'))!.begin(sCtx)!;
    s.onRequest?.(sCtx);
    appSaw = sCtx.requestHeaders;
    s.onResponse?.(sCtx, status, response);
    s.onComplete?.(sCtx);
  }
  const clientSaw = { ...response };
  c.onUpstreamResponse?.(cCtx, status, clientSaw);
  cRec.responseCode = status;
  cRec.bytesSent = 20;
  c.onResponse?.(cCtx, status, clientSaw);
  c.onComplete?.(cCtx);
  return { upstream, appSaw, clientSaw };
}

describe('metadata exchange between two sidecars', () => {
  it('the client adds both headers upstream; the server removes them before the app, answers with its own; the client removes those', () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    const { upstream, appSaw, clientSaw } = exchange(client, server);
    expect(upstream[mxIdHeader]).toBe('sidecar~127.0.0.1~productpage-v1-1.default~default.svc.cluster.local');
    expect(upstream[mxHeader]).toBe(client.mxValue);
    expect(appSaw[mxHeader]).toBeUndefined();
    expect(appSaw[mxIdHeader]).toBeUndefined();
    expect(clientSaw[mxHeader]).toBeUndefined();
    expect(clientSaw[mxIdHeader]).toBeUndefined();
  });

  it('a request another filter answered first (RBAC 403) still has its peer read, and the headers removed', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    const up: FilterHeaders = {};
    const cctx = httpCtx(record('outbound', outboundCluster), {});
    client.httpFilterFactory(hcm, site('outbound'))!.begin(cctx)!.onUpstreamRequest?.(cctx, up);
    const sctx = httpCtx(record('inbound', inboundCluster, { responseCode: 403, upstreamCluster: undefined }), { ...up });
    const s = server.httpFilterFactory(hcm, site('inbound'))!.begin(sctx)!;
    // No onRequest: the RBAC filter before this one answered.
    const resp: FilterHeaders = {};
    s.onResponse?.(sctx, 403, resp);
    s.onComplete?.(sctx);
    expect(sctx.requestHeaders[mxHeader]).toBeUndefined();
    expect(resp[mxHeader]).toBe(server.mxValue);
    const labels = Object.fromEntries(samples(await scrape(server), 'istio_requests_total')[0]!.labels);
    expect(labels).toMatchObject({ source_workload: 'productpage-v1', source_app: 'productpage', response_code: '403' });
  });

  it('sends nothing to PassthroughCluster (external), and a server answers non-mesh clients without exchange headers', () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const rec = record('outbound', 'PassthroughCluster');
    const ctx = httpCtx(rec, {});
    const hooks = client.httpFilterFactory(hcm, site('outbound'))!.begin(ctx)!;
    const headers: FilterHeaders = {};
    hooks.onUpstreamRequest?.(ctx, headers);
    expect(headers).toEqual({});

    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    const sctx = httpCtx(record('inbound', inboundCluster), { 'user-agent': 'curl' });
    const s = server.httpFilterFactory(hcm, site('inbound'))!.begin(sctx)!;
    s.onRequest?.(sctx);
    const resp: FilterHeaders = {};
    s.onResponse?.(sctx, 200, resp);
    expect(resp).toEqual({});
  });
});

describe.skipIf(!haveFixtures)('labels against istio/proxy testdata/metric', () => {
  it('client_request_total and server_request_total (reporter source and destination, peers from metadata exchange)', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    for (let i = 0; i < 3; i++) exchange(client, server);
    const c = samples(await scrape(client), 'istio_requests_total');
    expect(c).toEqual([{ labels: fixtureLabels('client_request_total.yaml.tmpl'), value: 3 }]);
    const s = samples(await scrape(server), 'istio_requests_total');
    expect(s).toEqual([{ labels: fixtureLabels('server_request_total.yaml.tmpl'), value: 3 }]);
    // Istio's label order, as the spec lists it.
    expect(c[0]!.labels.map(([k]) => k)).toEqual([...httpLabelNames]);
  });

  it('gRPC: request_protocol grpc and the gRPC status', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    exchange(client, server, { grpc: 5 });
    expect(samples(await scrape(client), 'istio_requests_total')).toEqual([{ labels: fixtureLabels('client_request_total.yaml.tmpl', { GrpcResponseStatus: '5' }), value: 1 }]);
    expect(samples(await scrape(server), 'istio_requests_total')).toEqual([{ labels: fixtureLabels('server_request_total.yaml.tmpl', { GrpcResponseStatus: '5' }), value: 1 }]);
  });

  it('client_request_total_endpoint_labels: no exchange from the server, so the peer comes from EDS metadata (no app, no version)', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    exchange(client, server, { serverHasSidecar: false });
    expect(samples(await scrape(client), 'istio_requests_total')).toEqual([{ labels: fixtureLabels('client_request_total_endpoint_labels.yaml.tmpl'), value: 1 }]);
  });

  it('client_request_total_cluster_metadata_precedence: the cluster’s service namespace wins over the peer’s', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot({ host: 'server.default.svc.cluster.local', name: 'server', namespace: 'server' }) });
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    exchange(client, server);
    expect(samples(await scrape(client), 'istio_requests_total')).toEqual([{ labels: fixtureLabels('client_request_total_cluster_metadata_precedence.yaml.tmpl'), value: 1 }]);
  });

  it('server_disable_host_header_fallback: without a service, the destination side falls back to its canonical name', async () => {
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => snapshot([]) });
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    // The request reaches a cluster without metadata and carries no Host.
    const cRec = record('outbound', outboundCluster);
    const cCtx = httpCtx(cRec, {});
    const c = client.httpFilterFactory(hcm, site('outbound'))!.begin(cCtx)!;
    const upstream: FilterHeaders = {};
    c.onUpstreamRequest?.(cCtx, upstream);
    const sCtx = { ...httpCtx(record('inbound', 'inbound|9080||', { responseCode: 200 }), upstream), authority: '' };
    const s = server.httpFilterFactory(hcm, site('inbound'))!.begin(sCtx)!;
    s.onRequest?.(sCtx);
    s.onResponse?.(sCtx, 200, {});
    s.onComplete?.(sCtx);
    expect(samples(await scrape(server), 'istio_requests_total')).toEqual([{ labels: fixtureLabels('server_disable_host_header_fallback.yaml.tmpl'), value: 1 }]);
  });

  it('host_header_fallback: without cluster metadata, the Host header names the destination service', async () => {
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    const noMeta = snapshot([{ name: outboundCluster, type: 'EDS', eds_cluster_config: { service_name: outboundCluster, eds_config: { ads: {} } } }], []);
    const c2 = new ProxyTelemetry({ node: clientNode, snapshot: () => noMeta });
    const rec = record('outbound', outboundCluster, { responseCode: 200 });
    const ctx = { ...httpCtx(rec, {}), authority: '127.0.0.1:39001' };
    const hooks = c2.httpFilterFactory(hcm, site('outbound'))!.begin(ctx)!;
    const up: FilterHeaders = {};
    hooks.onUpstreamRequest?.(ctx, up);
    const sctx = httpCtx(record('inbound', inboundCluster, { responseCode: 200 }), { ...up });
    const s = server.httpFilterFactory(hcm, site('inbound'))!.begin(sctx)!;
    s.onRequest?.(sctx);
    const resp: FilterHeaders = {};
    s.onResponse?.(sctx, 200, resp);
    hooks.onUpstreamResponse?.(ctx, 200, resp);
    hooks.onComplete?.(ctx);
    expect(samples(await scrape(c2), 'istio_requests_total')).toEqual([{ labels: fixtureLabels('host_header_fallback.yaml.tmpl', { ClientPort: '39001' }), value: 1 }]);
  });

  it('tcp_server_connection_open_without_mx: a TCP peer known only by its certificate', async () => {
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    const f = server.tcpFilterFactory(site('inbound'))!;
    const conn = connection({ tls: true, peerPrincipal: 'spiffe://cluster.local/ns/default/sa/client', localPrincipal: 'spiffe://cluster.local/ns/default/sa/server' });
    for (let i = 0; i < 10; i++) {
      const ctx: TcpFilterContext = { connection: conn, record: record('inbound', inboundCluster, { protocol: 'TCP', upstreamHost: '127.0.0.1:9080' }) };
      const h = f.begin(ctx)!;
      h.onUpstreamConnected?.(ctx, '127.0.0.1:9080');
      h.onData?.(ctx, 5, 7);
      h.onClose?.(ctx);
    }
    const text = await scrape(server);
    const expected = fixtureLabels('tcp_server_connection_open_without_mx.yaml.tmpl');
    expect(samples(text, 'istio_tcp_connections_opened_total')).toEqual([{ labels: expected, value: 10 }]);
    expect(samples(text, 'istio_tcp_connections_closed_total')).toEqual([{ labels: expected, value: 10 }]);
    expect(samples(text, 'istio_tcp_received_bytes_total')).toEqual([{ labels: expected, value: 50 }]);
    expect(samples(text, 'istio_tcp_sent_bytes_total')).toEqual([{ labels: expected, value: 70 }]);
    expect(expected.map(([k]) => k)).toEqual([...tcpLabelNames]);
  });

  it('tcp_client_sent_bytes_unknown: a TCP destination with no workload metadata', async () => {
    const bare = snapshot([{ name: outboundCluster, type: 'STATIC', metadata: services({ host: 'server.default.svc.cluster.local', name: 'server' }) }]);
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => bare });
    const f = client.tcpFilterFactory(site('outbound'))!;
    const ctx: TcpFilterContext = { connection: connection(), record: record('outbound', outboundCluster, { protocol: 'TCP', upstreamHost: '127.0.0.2:9080' }) };
    const h = f.begin(ctx)!;
    h.onUpstreamConnected?.(ctx, '127.0.0.2:9080');
    h.onClose?.(ctx);
    expect(samples(await scrape(client), 'istio_tcp_sent_bytes_total')).toEqual([{ labels: fixtureLabels('tcp_client_sent_bytes_unknown.yaml.tmpl'), value: 0 }]);
  });

  it('istio_build', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => undefined });
    expect(samples(await scrape(client), 'istio_build')).toEqual([{ labels: fixtureLabels('istio_build.yaml'), value: 1 }]);
  });
});

describe('metric families', () => {
  it('histograms use Envoy’s default buckets and count durations and sizes; flags and policies become labels', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const server = new ProxyTelemetry({ node: serverNode, snapshot: () => serverSnapshot });
    exchange(client, server, { serverConn: connection({ tls: true, peerPrincipal: 'spiffe://cluster.local/ns/default/sa/productpage', localPrincipal: 'spiffe://cluster.local/ns/default/sa/ratings' }) });
    const text = await scrape(server);
    const buckets = samples(text, 'istio_request_duration_milliseconds_bucket');
    expect(buckets.map((b) => b.labels.find(([k]) => k === 'le')![1])).toEqual([...envoyDefaultBuckets.map(String), '+Inf']);
    // 3 ms: not in le=0.5 or le=1, in le=5 and above.
    expect(buckets.map((b) => b.value)).toEqual([0, 0, ...Array(18).fill(1)]);
    expect(samples(text, 'istio_request_bytes_count')[0]!.value).toBe(1);
    const req = samples(text, 'istio_requests_total')[0]!.labels;
    expect(Object.fromEntries(req)).toMatchObject({
      source_principal: 'spiffe://cluster.local/ns/default/sa/productpage',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/ratings',
      connection_security_policy: 'mutual_tls',
    });
    expect(text).toContain('# TYPE istio_request_duration_milliseconds histogram');
    expect(text).toContain('# TYPE istio_requests_total counter');
  });

  it('response flags are Envoy’s short form, one series per combination', async () => {
    const client = new ProxyTelemetry({ node: clientNode, snapshot: () => clientSnapshot() });
    const f = client.httpFilterFactory(hcm, site('outbound'))!;
    for (const flags of [['UF', 'URX'], ['UF', 'URX'], ['NR']] as ResponseFlag[][]) {
      const rec = record('outbound', outboundCluster, { responseCode: flags[0] === 'NR' ? 404 : 503, responseFlags: new Set(flags), upstreamHost: '127.0.0.2:9080' });
      const ctx = httpCtx(rec, {});
      const h = f.begin(ctx)!;
      h.onRequest?.(ctx);
      h.onComplete?.(ctx);
    }
    const got = samples(await scrape(client), 'istio_requests_total').map((s) => [Object.fromEntries(s.labels).response_flags, Object.fromEntries(s.labels).response_code, s.value]);
    expect(got).toEqual([
      ['UF,URX', '503', 2],
      ['NR', '404', 1],
    ]);
  });
});
