// The tracing filter in the real router, exporting through OpenTelemetry's SDK and OTLP exporters
// to a real receiver (HTTP/protobuf and gRPC) on loopback; the backend shows what went upstream.
import http from 'node:http';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { decodeMessage, encodeAny, encodeMessage, type HttpConnectionManager, type HttpConnectionManager__Output, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConnection } from '../core/test-support.ts';
import type { HttpFilter } from '../core/filters.ts';
import type { XdsSnapshot } from '../core/types.ts';
import { compileRouteConfiguration } from '../http/compile.ts';
import { defaultHcmSettings } from '../http/hcm.ts';
import { handleHttpRequest } from '../http/router.ts';
import { type Backend, decodeRouteConfig, echoed, newRecord, StandInCluster, StandInClusterManager, send, startBackend } from '../http/test-support.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './testing/otlp-receiver.ts';
import { tracingFilterFactory } from './tracing.ts';
import { clusterEndpoint, exportTargetOf, exportUrl, shutdownTracing, tracingShutdownMs } from './tracing-export.ts';

const cluster = 'outbound|80||backend.default.svc.cluster.local';
const operation = 'backend.default.svc.cluster.local:80/*';
const node = { id: 'sidecar~127.0.0.5~a-1.default~default.svc.cluster.local', zone: 'zone-a' };

let receiver: OtlpReceiver;
let backend: Backend;
let clusters: StandInClusterManager;
const warnings: string[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  backend = await startBackend('backend');
  clusters = new StandInClusterManager();
  clusters.add(new StandInCluster(cluster, [backend.address]));
});

afterAll(async () => {
  await shutdownTracing();
  for (const c of closers) await c();
  await backend.close();
  await clusters.close();
  await receiver.close();
});

type Tracing = NonNullable<HttpConnectionManager['tracing']>;

function otlpHttp(serviceName = 'a.default'): Tracing['provider'] {
  return {
    name: 'envoy.tracers.opentelemetry',
    typed_config: encodeAny(TypeUrl.OpenTelemetryConfig, {
      service_name: serviceName,
      http_service: { http_uri: { uri: '127.0.0.1/v1/traces', cluster: `outbound|${receiver.httpPort}||127.0.0.1` } },
    }),
  };
}

function otlpGrpc(serviceName = 'a.default'): Tracing['provider'] {
  return {
    name: 'envoy.tracers.opentelemetry',
    typed_config: encodeAny(TypeUrl.OpenTelemetryConfig, {
      service_name: serviceName,
      grpc_service: { envoy_grpc: { cluster_name: `outbound|${receiver.grpcPort}||127.0.0.1`, authority: '127.0.0.1' } },
    }),
  };
}

function tracing(provider: Tracing['provider'], random = 100, extra: Partial<Tracing> = {}): Tracing {
  return {
    client_sampling: { value: 100 },
    random_sampling: { value: random },
    overall_sampling: { value: 100 },
    custom_tags: [
      { tag: 'istio.canonical_service', literal: { value: 'a' } },
      { tag: 'istio.namespace', literal: { value: 'default' } },
      { tag: 'from.header', request_header: { name: 'x-tag', default_value: 'none' } },
      { tag: 'istio.authorization.dry_run.allow_policy.name', metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'x' }] } } },
    ],
    provider,
    ...extra,
  };
}

function hcmWith(t: Tracing): HttpConnectionManager__Output {
  const name = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  return decodeMessage(name, encodeMessage(name, { stat_prefix: 'test', tracing: t })) as HttpConnectionManager__Output;
}

function compile(t: Tracing, direction: 'inbound' | 'outbound' | 'gateway', scheduledDelayMs = 50): HttpFilter {
  const factory = tracingFilterFactory(node, { snapshot: () => undefined, warn: (m) => warnings.push(m), scheduledDelayMs });
  const f = factory(hcmWith(t), { where: 'test#0', listener: 'test', direction, hcm: hcmWith(t) });
  if (!f) throw new Error('no tracing filter');
  return f;
}

/** One proxy hop: the real router with the tracing filter in front of the backend's cluster. */
async function hop(t: Tracing, direction: 'inbound' | 'outbound' | 'gateway', scheduledDelayMs = 50): Promise<string> {
  const filters = [compile(t, direction, scheduledDelayMs)];
  const routes = compileRouteConfiguration(
    decodeRouteConfig({
      name: 'rc',
      virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster }, decorator: { operation } }] }],
    }),
  );
  const server = http.createServer((req, res) => {
    const s = req.socket;
    const connection = testConnection({
      remoteAddress: s.remoteAddress ?? '',
      remotePort: s.remotePort ?? 0,
      localAddress: s.localAddress ?? '',
      localPort: s.localPort ?? 0,
      destinationAddress: s.localAddress ?? '',
      destinationPort: s.localPort ?? 0,
    });
    const record = { ...newRecord(), direction };
    void handleHttpRequest(req, res, { routes, clusters, record, sourceAddress: s.remoteAddress ?? '', settings: defaultHcmSettings, filters, connection });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const parentId = '00f067aa0ba902b7';

function upstreamTraceparent(body: string): { traceId: string; spanId: string; flags: string; headers: Record<string, unknown> } {
  const headers = echoed(body).headers as Record<string, unknown>;
  const [, tid, sid, flags] = String(headers.traceparent).split('-');
  return { traceId: tid!, spanId: sid!, flags: flags!, headers };
}

const byTrace = (id: string) => (spans: readonly ReceivedSpan[]) => spans.filter((s) => s.traceId === id);

describe('tracing filter', () => {
  let outbound: string;
  let inbound: string;
  let unsampled: string;
  let grpcOutbound: string;
  let gateway: string;

  beforeAll(async () => {
    outbound = await hop(tracing(otlpHttp()), 'outbound');
    inbound = await hop(tracing(otlpHttp('b.default')), 'inbound');
    unsampled = await hop(tracing(otlpHttp(), 0), 'outbound');
    grpcOutbound = await hop(tracing(otlpGrpc('g.default')), 'outbound');
    gateway = await hop(tracing(otlpHttp('gw.istio-system'), 100, { spawn_upstream_span: { value: true } }), 'gateway');
  });

  it('outbound without trace headers: a new root CLIENT span named by the route decorator, its context sent upstream', async () => {
    const res = await send(outbound, { path: '/items?id=7', headers: { host: 'backend', 'user-agent': 'test-agent', 'x-tag': 'tagged' } });
    expect(res.status).toBe(200);
    const up = upstreamTraceparent(res.body);
    expect(up.flags).toBe('01');
    expect(up.headers['x-b3-traceid']).toBe(up.traceId);
    expect(up.headers['x-b3-spanid']).toBe(up.spanId);
    expect(up.headers['x-b3-sampled']).toBe('1');
    expect(up.headers['x-b3-parentspanid']).toBeUndefined();
    expect(up.headers['x-envoy-decorator-operation']).toBe(operation);
    const [span] = await receiver.waitFor((s) => byTrace(up.traceId)(s).length === 1).then(byTrace(up.traceId));
    expect(span).toMatchObject({ spanId: up.spanId, parentSpanId: '', kind: 'CLIENT', name: operation, status: 'UNSET', via: 'http', scope: 'weft-proxy' });
    expect(span!.resource['service.name']).toBe('a.default');
    expect(span!.attributes).toMatchObject({
      node_id: node.id,
      zone: 'zone-a',
      'http.method': 'GET',
      'http.url': 'http://backend/items?id=7',
      'http.protocol': 'HTTP/1.1',
      'http.status_code': '200',
      'guid:x-request-id': up.headers['x-request-id'],
      upstream_cluster: cluster,
      'upstream_cluster.name': cluster,
      upstream_address: backend.address,
      'peer.address': '127.0.0.1',
      user_agent: 'test-agent',
      downstream_cluster: '-',
      response_flags: '-',
      component: 'proxy',
      'istio.canonical_service': 'a',
      'istio.namespace': 'default',
      'from.header': 'tagged',
    });
    expect(Number(span!.attributes.response_size)).toBeGreaterThan(0);
    expect(span!.attributes.request_size).toBe('0');
    // A metadata tag without metadata and without a default gives nothing, as in Envoy.
    expect(span!.attributes['istio.authorization.dry_run.allow_policy.name']).toBeUndefined();
    expect(span!.endMs).toBeGreaterThanOrEqual(span!.startMs);
  });

  it('inbound with a W3C parent: a SERVER span under the caller span, tracestate passed on', async () => {
    const res = await send(inbound, { headers: { host: 'backend', traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'vendor=x' } });
    const up = upstreamTraceparent(res.body);
    expect(up.traceId).toBe(traceId);
    expect(up.spanId).not.toBe(parentId);
    expect(up.headers.tracestate).toBe('vendor=x');
    expect(up.headers['x-b3-parentspanid']).toBe(parentId);
    const spans = await receiver.waitFor((s) => byTrace(traceId)(s).length === 1).then(byTrace(traceId));
    expect(spans[0]).toMatchObject({ kind: 'SERVER', parentSpanId: parentId, spanId: up.spanId, name: operation, traceState: 'vendor=x' });
    expect(spans[0]!.attributes['from.header']).toBe('none');
    expect(spans[0]!.resource['service.name']).toBe('b.default');
  });

  it('inbound x-envoy-decorator-operation names the span and does not reach the app', async () => {
    const tid = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const res = await send(inbound, { headers: { host: 'backend', traceparent: `00-${tid}-${parentId}-01`, 'x-envoy-decorator-operation': 'caller-op' } });
    expect(upstreamTraceparent(res.body).headers['x-envoy-decorator-operation']).toBeUndefined();
    const spans = await receiver.waitFor((s) => byTrace(tid)(s).length === 1).then(byTrace(tid));
    expect(spans[0]!.name).toBe('caller-op');
  });

  it('B3 multi headers are honoured: parent and sampling decision', async () => {
    const tid = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const res = await send(outbound, { headers: { host: 'backend', 'x-b3-traceid': tid, 'x-b3-spanid': parentId, 'x-b3-sampled': '1' } });
    const up = upstreamTraceparent(res.body);
    expect(up.traceId).toBe(tid);
    const spans = await receiver.waitFor((s) => byTrace(tid)(s).length === 1).then(byTrace(tid));
    expect(spans[0]).toMatchObject({ parentSpanId: parentId, spanId: up.spanId });
  });

  it('single b3 is read and written back in the same form', async () => {
    const tid = 'cccccccccccccccccccccccccccccccc';
    const res = await send(outbound, { headers: { host: 'backend', b3: `${tid}-${parentId}-1` } });
    const up = upstreamTraceparent(res.body);
    expect(up.headers.b3).toBe(`${tid}-${up.spanId}-1-${parentId}`);
    await receiver.waitFor((s) => byTrace(tid)(s).length === 1);
  });

  it('a caller that decided not to sample: nothing exported, the trace id still goes upstream unsampled', async () => {
    const tid = 'dddddddddddddddddddddddddddddddd';
    const res = await send(outbound, { headers: { host: 'backend', 'x-b3-traceid': tid, 'x-b3-spanid': parentId, 'x-b3-sampled': '0' } });
    const up = upstreamTraceparent(res.body);
    expect(up).toMatchObject({ traceId: tid, flags: '00' });
    expect(up.headers['x-b3-sampled']).toBe('0');
    expect(up.spanId).not.toBe(parentId);
    // A sampled request sent after it is exported; by then the unsampled one would have been too.
    const after = await send(outbound, { headers: { host: 'backend' } });
    const tid2 = upstreamTraceparent(after.body).traceId;
    await receiver.waitFor((s) => byTrace(tid2)(s).length === 1);
    expect(byTrace(tid)(receiver.spans)).toEqual([]);
  });

  it('0% sampling: no span and a new unsampled trace upstream; x-envoy-force-trace still traces', async () => {
    const res = await send(unsampled, { headers: { host: 'backend' } });
    const up = upstreamTraceparent(res.body);
    expect(up.flags).toBe('00');
    expect(up.traceId).toMatch(/^[0-9a-f]{32}$/);
    const forced = await send(unsampled, { headers: { host: 'backend', 'x-envoy-force-trace': 'true' } });
    const f = upstreamTraceparent(forced.body);
    expect(f.flags).toBe('01');
    await receiver.waitFor((s) => byTrace(f.traceId)(s).length === 1);
    expect(byTrace(up.traceId)(receiver.spans)).toEqual([]);
  });

  it('an upstream 503 marks the span as an error with its response code', async () => {
    backend.handle = (req, res) => {
      if (req.path !== '/fail') return false;
      res.writeHead(503).end('down');
      return true;
    };
    const res = await send(outbound, { path: '/fail', headers: { host: 'backend', traceparent: `00-${'e'.repeat(32)}-${parentId}-01` } });
    expect(res.status).toBe(503);
    const spans = await receiver.waitFor((s) => byTrace('e'.repeat(32))(s).length === 1).then(byTrace('e'.repeat(32)));
    expect(spans[0]).toMatchObject({ status: 'ERROR' });
    expect(spans[0]!.attributes).toMatchObject({ 'http.status_code': '503', error: 'true' });
    backend.handle = undefined;
  });

  it('exports over OTLP/gRPC when the provider has a grpc_service', async () => {
    const res = await send(grpcOutbound, { headers: { host: 'backend' } });
    const up = upstreamTraceparent(res.body);
    const spans = await receiver.waitFor((s) => byTrace(up.traceId)(s).length === 1).then(byTrace(up.traceId));
    expect(spans[0]).toMatchObject({ via: 'grpc', kind: 'CLIENT', name: operation, spanId: up.spanId });
    expect(spans[0]!.resource['service.name']).toBe('g.default');
  });

  it('a gateway (spawn_upstream_span): a SERVER span and a CLIENT child per upstream attempt, the child sent upstream', async () => {
    const res = await send(gateway, { headers: { host: 'backend' } });
    const up = upstreamTraceparent(res.body);
    const spans = await receiver.waitFor((s) => byTrace(up.traceId)(s).length === 2).then(byTrace(up.traceId));
    const server = spans.find((s) => s.kind === 'SERVER')!;
    const client = spans.find((s) => s.kind === 'CLIENT')!;
    expect(server).toMatchObject({ parentSpanId: '', name: operation });
    expect(client).toMatchObject({ parentSpanId: server.spanId, spanId: up.spanId, name: `router ${cluster} egress` });
    expect(client.attributes).toMatchObject({ 'http.status_code': '200', upstream_cluster: cluster, upstream_address: backend.address });
    expect(up.headers['x-b3-parentspanid']).toBe(server.spanId);
  });

  it('no export problems were reported', () => {
    expect(warnings).toEqual([]);
  });
});

describe('shutdown', () => {
  it('exports the spans still batched when the proxy stops', async () => {
    // A batch delay far longer than the test: only shutdown can send the span.
    const slow = await hop(tracing(otlpHttp('slow.default')), 'outbound', 600_000);
    const res = await send(slow, { headers: { host: 'backend' } });
    const tid = upstreamTraceparent(res.body).traceId;
    await new Promise((r) => setTimeout(r, 300));
    expect(byTrace(tid)(receiver.spans)).toEqual([]);
    await shutdownTracing();
    expect(byTrace(tid)(receiver.spans)).toHaveLength(1);
  });

  it('does not wait for a collector that never answers: the proxy stops within tracingShutdownMs', async () => {
    // A collector that accepts and then says nothing (one being stopped, or hung): the exporter
    // would wait out its 10 s timeout, and `weftctl up`'s Ctrl-C would kill every proxy.
    const held: Socket[] = [];
    const mute = createServer((s) => void held.push(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const port = (mute.address() as AddressInfo).port;
    try {
      const provider = {
        name: 'envoy.tracers.opentelemetry',
        typed_config: encodeAny(TypeUrl.OpenTelemetryConfig, { service_name: 'mute.default', http_service: { http_uri: { uri: '127.0.0.1/v1/traces', cluster: `outbound|${port}||127.0.0.1` } } }),
      };
      const muted = await hop(tracing(provider), 'outbound', 600_000);
      await send(muted, { headers: { host: 'backend' } });
      const t0 = performance.now();
      await shutdownTracing();
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(tracingShutdownMs - 50);
      expect(ms).toBeLessThan(tracingShutdownMs + 1500);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });
});

describe('tracing configuration', () => {
  it('a chain whose connection manager has no tracing provider gets no filter', () => {
    const factory = tracingFilterFactory(node, { snapshot: () => undefined, warn: () => {} });
    expect(factory(hcmWith({ random_sampling: { value: 100 } }), { where: 'x', listener: 'x', direction: 'outbound' })).toBeUndefined();
    const name = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
    expect(factory(decodeMessage(name, encodeMessage(name, { stat_prefix: 'x' })) as HttpConnectionManager__Output, { where: 'x', listener: 'x', direction: 'outbound' })).toBeUndefined();
  });

  it('refuses (NACK) a tracer Weft cannot export to, saying which', () => {
    const factory = tracingFilterFactory(node, { snapshot: () => undefined, warn: () => {} });
    const zipkin = hcmWith({ provider: { name: 'envoy.tracers.zipkin', typed_config: { type_url: 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig', value: Buffer.alloc(0) } } });
    expect(() => factory(zipkin, { where: 'virtualOutbound#0', listener: 'virtualOutbound', direction: 'outbound' })).toThrow(
      'virtualOutbound#0: tracing provider envoy.tracers.zipkin is not supported; Weft exports traces with envoy.tracers.opentelemetry only',
    );
  });

  it('resolves the collector: the cluster endpoint in the snapshot first, else the provider host and the cluster-name port', () => {
    const t = exportTargetOf(
      { service_name: 's', http_service: { http_uri: { uri: 'otel.obs.svc.cluster.local/v1/traces', cluster: 'outbound|4318||otel.obs.svc.cluster.local', timeout: null }, request_headers_to_add: [] }, grpc_service: null, resource_detectors: [], sampler: null },
      'x',
    );
    expect(t).toMatchObject({ protocol: 'http', host: 'otel.obs.svc.cluster.local', port: 4318, path: '/v1/traces' });
    expect(exportUrl(t, undefined)).toBe('http://otel.obs.svc.cluster.local:4318/v1/traces');
    const assignment = { cluster_name: t.cluster, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.40', port_value: 4318 } } } }] }] };
    const snapshot = {
      clusters: new Map([[t.cluster, { name: t.cluster, type: 'EDS', eds_cluster_config: { service_name: '' } }]]),
      endpoints: new Map([[t.cluster, assignment]]),
    } as unknown as XdsSnapshot;
    expect(clusterEndpoint(snapshot, t.cluster)).toEqual({ address: '127.0.0.40', port: 4318 });
    expect(exportUrl(t, snapshot)).toBe('http://127.0.0.40:4318/v1/traces');
  });
});
