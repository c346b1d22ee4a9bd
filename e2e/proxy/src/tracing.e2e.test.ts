// Distributed tracing through real processes: weftd with a MeshConfig that enables tracing at 100%
// with an OpenTelemetry provider (OTLP/HTTP) pointing at a receiver this test runs, and three
// workloads in local mode. The test (client) calls svc-b through its sidecar A; sidecar B hands the
// request to app B, which calls svc-c through sidecar B passing on the trace headers as BookInfo's
// apps do; sidecar C hands it to app C. Every proxy exports its span; the receiver must see all of
// them under one trace id, each hop's server span under the caller's client span.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '@weft/proxy/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry, virtualService, workloadEntry } from './config.ts';
import { request } from 'undici';
import { App, bins, freePort, JsonProcess, type ProxyProcess, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const ip = { a: '127.10.8.1', b: '127.10.8.11', c: '127.10.8.21', ingress: '127.10.8.100' };

let dir: string;
let receiver: OtlpReceiver;
let weftd: Weftd;
const procs: JsonProcess[] = [];
const proxies: Record<'a' | 'b' | 'c' | 'ingress', ProxyProcess> = {} as Record<'a' | 'b' | 'c' | 'ingress', ProxyProcess>;
let gatewayPort: number;
let app: App;

/** An echo backend on `address` that calls other services through `sidecar` when asked (`?call=`). */
async function backend(name: string, address: string, sidecar: string): Promise<number> {
  const proc = new JsonProcess(`backend ${name}`, [bins.backend, '--name', name, '--address', address, '--port', '0', '--sidecar', sidecar]);
  procs.push(proc);
  const l = await proc.waitFor((x) => x.msg === 'listening', 'listening');
  return Number(l.port);
}

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-tracing-'));
  const configDir = joinPath(dir, 'config');
  await mkdir(configDir);
  receiver = await startOtlpReceiver('127.0.0.1');
  const meshFile = joinPath(dir, 'mesh-config.yaml');
  await writeFile(
    meshFile,
    `enableTracing: true
defaultConfig:
  tracing:
    sampling: 100
extensionProviders:
- name: otel
  opentelemetry:
    service: 127.0.0.1
    port: ${receiver.httpPort}
    http:
      path: /v1/traces
defaultProviders:
  tracing: [otel]
`,
  );
  gatewayPort = await freePort(ip.ingress);
  const [portB, portC] = await Promise.all([backend('svc-b', ip.b, `http://${ip.b}:15001`), backend('svc-c', ip.c, `http://${ip.c}:15001`)]);
  await writeConfig(
    configDir,
    'mesh.yaml',
    join(
      serviceEntry('svc-b', 'svc-b'),
      serviceEntry('svc-c', 'svc-c'),
      // The mesh reaches B and C on 9080 (their sidecars' inbound); the apps listen elsewhere.
      workloadEntry({ name: 'svc-b-v1', app: 'svc-b', version: 'v1', address: ip.b, port: 9080 }),
      workloadEntry({ name: 'svc-c-v1', app: 'svc-c', version: 'v1', address: ip.c, port: 9080 }),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: traced-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${gatewayPort}, name: http, protocol: HTTP}
    hosts: [traced.example.com]`,
      virtualService('traced', ['traced.example.com'], '- route:\n  - destination: {host: svc-b, port: {number: 9080}}', '  gateways: [traced-gateway]\n'),
    ),
  );
  weftd = await startWeftd(configDir, 0, { extra: ['--mesh-config', meshFile] });
  // Export often, so the test does not wait for the 5 s default batch delay.
  process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
  const [a, b, c, ingress] = await Promise.all([
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.a, pod: 'client-v1-1', labels: 'app=client,version=v1' }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.b, pod: 'svc-b-v1-1', labels: 'app=svc-b,version=v1', extra: ['--app-address', ip.b, '--app-ports', `9080=${portB}`] }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.c, pod: 'svc-c-v1-1', labels: 'app=svc-c,version=v1', extra: ['--app-address', ip.c, '--app-ports', `9080=${portC}`] }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.ingress, pod: 'istio-ingressgateway-1', labels: 'istio=ingressgateway,app=istio-ingressgateway', ingress: true }),
  ]);
  Object.assign(proxies, { a, b, c, ingress });
  app = new App(ip.a);
}, 60_000);

afterAll(async () => {
  await app?.close();
  for (const p of Object.values(proxies)) {
    p.proc.child.kill('SIGTERM');
    await p.proc.exited;
  }
  for (const p of procs) {
    p.child.kill('SIGTERM');
    await p.exited;
  }
  if (weftd) {
    weftd.proc.child.kill('SIGTERM');
    await weftd.proc.exited;
  }
  await receiver?.close();
  await rm(dir, { recursive: true, force: true });
});

const inTrace = (traceId: string) => (spans: readonly ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);

function only(spans: readonly ReceivedSpan[], pred: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(pred);
  if (found.length !== 1) throw new Error(`expected one ${what}, found ${found.length}: ${JSON.stringify(spans.map((s) => [s.kind, s.name, s.resource['service.name']]))}`);
  return found[0]!;
}

describe('tracing across three hops', () => {
  it('every proxy reports its span under one trace id, each server span a child of the caller client span', async () => {
    const r = await app.get('svc-b:9080', '/start?call=svc-c:9080/end');
    expect(r.status).toBe(200);
    const echoB = JSON.parse(r.text) as { name: string; headers: Record<string, string>; called: { status: number; body: { name: string; headers: Record<string, string> } } };
    expect(echoB.name).toBe('svc-b');
    expect(echoB.called.status).toBe(200);
    expect(echoB.called.body.name).toBe('svc-c');
    const traceId = echoB.headers.traceparent!.split('-')[1]!;
    expect(echoB.called.body.headers.traceparent!.split('-')[1]).toBe(traceId);
    // x-request-id: generated by sidecar A, carried by the app, kept by every proxy.
    const requestId = echoB.headers['x-request-id'];
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(echoB.called.body.headers['x-request-id']).toBe(requestId);

    const spans = await receiver.waitFor((s) => inTrace(traceId)(s).length >= 4, 20_000).then(inTrace(traceId));
    expect(spans).toHaveLength(4);
    const svc = (s: ReceivedSpan) => s.resource['service.name'];
    const clientA = only(spans, (s) => s.kind === 'CLIENT' && svc(s) === 'client.default', 'client span of sidecar A');
    const serverB = only(spans, (s) => s.kind === 'SERVER' && svc(s) === 'svc-b.default', 'server span of sidecar B');
    const clientB = only(spans, (s) => s.kind === 'CLIENT' && svc(s) === 'svc-b.default', 'client span of sidecar B');
    const serverC = only(spans, (s) => s.kind === 'SERVER' && svc(s) === 'svc-c.default', 'server span of sidecar C');

    // The parent links of the call graph.
    expect(clientA.parentSpanId).toBe('');
    expect(serverB.parentSpanId).toBe(clientA.spanId);
    expect(clientB.parentSpanId).toBe(serverB.spanId);
    expect(serverC.parentSpanId).toBe(clientB.spanId);
    // What each app saw is the span of the proxy in front of it.
    expect(echoB.headers.traceparent).toBe(`00-${traceId}-${serverB.spanId}-01`);
    expect(echoB.called.body.headers.traceparent).toBe(`00-${traceId}-${serverC.spanId}-01`);
    expect(echoB.headers['x-b3-spanid']).toBe(serverB.spanId);
    expect(echoB.headers['x-b3-parentspanid']).toBe(clientA.spanId);

    // Named by Istio's route decorators, on both sides of each hop.
    expect(clientA.name).toBe('svc-b.default.svc.cluster.local:9080/*');
    expect(serverB.name).toBe('svc-b.default.svc.cluster.local:9080/*');
    expect(clientB.name).toBe('svc-c.default.svc.cluster.local:9080/*');
    expect(serverC.name).toBe('svc-c.default.svc.cluster.local:9080/*');

    // Envoy's and Istio's tags.
    for (const s of spans) {
      expect(s.attributes['guid:x-request-id']).toBe(requestId);
      expect(s.attributes['http.status_code']).toBe('200');
      expect(s.attributes['http.method']).toBe('GET');
      expect(s.attributes.response_flags).toBe('-');
      expect(s.attributes['istio.namespace']).toBe('default');
      expect(s.attributes['istio.mesh_id']).toBe('cluster.local');
      expect(s.attributes.component).toBe('proxy');
    }
    expect(clientA.attributes).toMatchObject({
      'istio.canonical_service': 'client',
      'istio.canonical_revision': 'v1',
      upstream_cluster: 'outbound|9080||svc-b.default.svc.cluster.local',
      upstream_address: `${ip.b}:9080`,
      'http.url': 'http://svc-b:9080/start?call=svc-c:9080/end',
      node_id: 'sidecar~127.10.8.1~client-v1-1.default~default.svc.cluster.local',
    });
    expect(serverB.attributes).toMatchObject({ 'istio.canonical_service': 'svc-b', upstream_cluster: 'inbound|9080||' });
    expect(serverC.attributes['istio.canonical_service']).toBe('svc-c');
    // The downstream peer's IP (local mode: sidecars connect from the loopback's default source address).
    expect(serverC.attributes['peer.address']).toMatch(/^127\./);

    // Each hop nests in time inside its caller's.
    expect(serverB.startMs).toBeGreaterThanOrEqual(clientA.startMs - 5);
    expect(serverB.endMs).toBeLessThanOrEqual(clientA.endMs + 5);
    expect(serverC.endMs).toBeLessThanOrEqual(clientB.endMs + 5);
  });

  it("a caller's unsampled decision is followed through every hop: nothing is exported", async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const r = await app.get('svc-b:9080', '/start?call=svc-c:9080/end', { traceparent: `00-${traceId}-b7ad6b7169203331-00` });
    const echoB = JSON.parse(r.text) as { headers: Record<string, string>; called: { body: { headers: Record<string, string> } } };
    expect(echoB.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    expect(echoB.called.body.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    // A sampled request sent afterwards arrives; the unsampled one would have been exported by then.
    const after = await app.get('svc-b:9080', '/start');
    const sampledId = (JSON.parse(after.text) as { headers: Record<string, string> }).headers.traceparent!.split('-')[1]!;
    await receiver.waitFor((s) => inTrace(sampledId)(s).length >= 2, 20_000);
    expect(inTrace(traceId)(receiver.spans)).toEqual([]);
  });

  it('through the ingress gateway: a SERVER span, a CLIENT span per upstream attempt under it, then the sidecar', async () => {
    const r = await request(`http://${ip.ingress}:${gatewayPort}/from-outside`, { headers: { host: 'traced.example.com' } });
    const echoB = (await r.body.json()) as { name: string; headers: Record<string, string> };
    expect(echoB.name).toBe('svc-b');
    const traceId = echoB.headers.traceparent!.split('-')[1]!;
    const spans = await receiver.waitFor((s) => inTrace(traceId)(s).length >= 3, 20_000).then(inTrace(traceId));
    expect(spans).toHaveLength(3);
    const svc = (s: ReceivedSpan) => s.resource['service.name'];
    const gwServer = only(spans, (s) => s.kind === 'SERVER' && svc(s) === 'istio-ingressgateway.default', 'gateway server span');
    const gwClient = only(spans, (s) => s.kind === 'CLIENT' && svc(s) === 'istio-ingressgateway.default', 'gateway upstream span');
    const serverB = only(spans, (s) => s.kind === 'SERVER' && svc(s) === 'svc-b.default', 'server span of sidecar B');
    expect(gwServer.parentSpanId).toBe('');
    expect(gwServer.name).toBe('svc-b.default.svc.cluster.local:9080/*');
    expect(gwClient).toMatchObject({ parentSpanId: gwServer.spanId, name: 'router outbound|9080||svc-b.default.svc.cluster.local egress' });
    expect(serverB.parentSpanId).toBe(gwClient.spanId);
    expect(gwServer.attributes['http.url']).toBe('http://traced.example.com/from-outside');
  });

  it('a B3 caller context is continued: sidecar A parents its span on the caller span', async () => {
    const traceId = '80f198ee56343ba864fe8b2a57d3eff7';
    const r = await app.get('svc-b:9080', '/', { 'x-b3-traceid': traceId, 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '1' });
    expect(r.status).toBe(200);
    const spans = await receiver.waitFor((s) => inTrace(traceId)(s).length >= 2, 20_000).then(inTrace(traceId));
    const clientA = only(spans, (s) => s.kind === 'CLIENT', 'client span');
    expect(clientA.parentSpanId).toBe('e457b5a2e4d86bd1');
  });
});
