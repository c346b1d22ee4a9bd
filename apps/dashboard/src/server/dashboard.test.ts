// The dashboard as a process against a real Prometheus (Debian's, with basic auth and the
// /prometheus/ route prefix, as `weftctl up` runs it) scraping a fixed exporter of Istio's request
// metrics; weftd is a dead port here (the mesh test has a real one).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { needs } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Graph } from './graph.ts';
import type { GraphLayout } from './layout.ts';
import type { SourceState } from './sources.ts';
import { type DashboardProcess, freePort, type PrometheusProcess, prometheusProcess, startDashboardProcess, until } from './testing.ts';
import type { TraceSummary } from './traces.ts';

const run = promisify(execFile);
const skipReason = needs({ tools: ['prometheus'] });

type Sources = { sources: { weftd: SourceState; prometheus: SourceState } };

/** Istio's request metrics as a destination proxy reports them, growing at each scrape. */
function exporter(): Server {
  let n = 0;
  const labels = (src: string, srcNs: string, dst: string, version: string, code: string, mtls: boolean) =>
    `reporter="destination",source_workload="${src}",source_workload_namespace="${srcNs}",source_app="${src.replace(/-v\d+$/, '')}",source_version="${/-v\d+$/.test(src) ? src.slice(-2) : 'unknown'}",destination_workload="${dst}",destination_workload_namespace="default",destination_service="${dst.replace(/-v\d+$/, '')}.default.svc.cluster.local",destination_service_name="${dst.replace(/-v\d+$/, '')}",destination_service_namespace="default",destination_app="${dst.replace(/-v\d+$/, '')}",destination_version="${version}",response_code="${code}",connection_security_policy="${mtls ? 'mutual_tls' : 'none'}"`;
  return createServer((_req, res) => {
    n++;
    const lines = [
      '# TYPE istio_requests_total counter',
      `istio_requests_total{${labels('istio-ingressgateway', 'istio-system', 'productpage-v1', 'v1', '200', false)}} ${10 * n}`,
      `istio_requests_total{${labels('productpage-v1', 'default', 'reviews-v2', 'v2', '200', true)}} ${10 * n}`,
      `istio_requests_total{${labels('productpage-v1', 'default', 'reviews-v3', 'v3', '200', true)}} ${9 * n}`,
      `istio_requests_total{${labels('productpage-v1', 'default', 'reviews-v3', 'v3', '503', true)}} ${n}`,
      '# TYPE istio_request_duration_milliseconds histogram',
      ...['5', '10', '25', '+Inf'].map((le) => `istio_request_duration_milliseconds_bucket{${labels('productpage-v1', 'default', 'reviews-v2', 'v2', '200', true)},le="${le}"} ${le === '5' ? 0 : 10 * n}`),
      `istio_request_duration_milliseconds_sum{${labels('productpage-v1', 'default', 'reviews-v2', 'v2', '200', true)}} ${70 * n}`,
      `istio_request_duration_milliseconds_count{${labels('productpage-v1', 'default', 'reviews-v2', 'v2', '200', true)}} ${10 * n}`,
    ];
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
  });
}

describe.skipIf(skipReason)(`the dashboard process ${skipReason ? `(skipped: ${skipReason})` : ''}`, () => {
  let dir: string;
  let metrics: Server;
  let prometheus: PrometheusProcess;
  let dashboard: DashboardProcess;
  let deadWeftd: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-dashboard-test-'));
    metrics = exporter();
    await new Promise<void>((r) => metrics.listen(0, '127.0.0.1', r));
    prometheus = await prometheusProcess(join(dir, 'prometheus'), [`127.0.0.1:${(metrics.address() as AddressInfo).port}`]);
    await prometheus.start();
    deadWeftd = await freePort();
    dashboard = await startDashboardProcess([
      '--weftd-url',
      `http://127.0.0.1:${deadWeftd}`,
      '--prometheus-url',
      `${prometheus.url}/`,
      '--prometheus-password-file',
      prometheus.passwordFile,
      '--interval-ms',
      '2000',
      '--max-traces',
      '3',
      '--max-otlp-body-bytes',
      '4096',
      ...(process.getuid ? ['--owner-uid', String(process.getuid())] : []),
    ]);
  });

  afterAll(async () => {
    await dashboard?.stop();
    await prometheus?.stop();
    metrics?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('draws the graph from Prometheus: workload edges with rate, success rate, p99 and mTLS, versions grouped under their service, the gateway as a gateway', async () => {
    const g = await until(
      'edges with traffic',
      async () => {
        const r = await dashboard.get<Graph & Sources>('/api/graph');
        return r.body.edges.some((e) => e.rps > 0 && e.id === 'default/productpage-v1->default/reviews-v3') ? r.body : undefined;
      },
      30_000,
    );
    const edge = (id: string) => g.edges.find((e) => e.id === id);
    const toV2 = edge('default/productpage-v1->default/reviews-v2')!;
    expect(toV2).toMatchObject({ source: 'default/productpage-v1', target: 'default/reviews-v2', successRate: 1, mtls: true, error: false });
    expect(toV2.rps).toBeGreaterThan(0);
    // Every request under 10 ms, none under 5: the 99th percentile lies in that bucket.
    expect(toV2.p99Ms).toBeGreaterThan(5);
    expect(toV2.p99Ms).toBeLessThanOrEqual(10);
    const toV3 = edge('default/productpage-v1->default/reviews-v3')!;
    expect(toV3.successRate).toBeCloseTo(0.9, 1);
    expect(toV3).toMatchObject({ error: true, mtls: true, p99Ms: null });
    expect(edge('istio-system/istio-ingressgateway->default/productpage-v1')).toMatchObject({ mtls: false, error: false });
    const node = (id: string) => g.nodes.find((n) => n.id === id);
    expect(node('istio-system/istio-ingressgateway')).toMatchObject({ kind: 'gateway' });
    expect(node('svc:reviews.default.svc.cluster.local')).toMatchObject({ kind: 'service', label: 'reviews' });
    expect(node('default/reviews-v2')).toMatchObject({ kind: 'workload', version: 'v2', parent: 'svc:reviews.default.svc.cluster.local' });
    expect(node('default/reviews-v3')).toMatchObject({ parent: 'svc:reviews.default.svc.cluster.local' });
    expect(g.sources.prometheus).toMatchObject({ ok: true, url: prometheus.url });
    // ELK's positions for every workload and the gateway (the page draws them; server/layout.ts).
    const layout = (g as Graph & { layout?: GraphLayout }).layout;
    expect(Object.keys(layout?.positions ?? {}).sort()).toEqual(g.nodes.filter((n) => n.kind !== 'service').map((n) => n.id).sort());
    // Another window is polled on demand; a bad one is refused with the reason.
    const w = await dashboard.get<Graph>('/api/graph?window=1m');
    expect(w.status).toBe(200);
    expect((await dashboard.get<{ error: string }>('/api/graph?window=1y')).body.error).toMatch(/window must be a duration/);
  });

  it('names the unreachable source (weftd here) and answers every endpoint anyway', async () => {
    const r = await dashboard.get<Sources>('/api/status');
    expect(r.body.sources.weftd.ok).toBe(false);
    expect(r.body.sources.weftd.error).toBe(`weftd at http://127.0.0.1:${deadWeftd} unreachable: connect ECONNREFUSED 127.0.0.1:${deadWeftd}`);
    for (const path of ['/api/services', '/api/proxies', '/api/traces']) expect((await dashboard.get(path)).status).toBe(200);
    expect((await dashboard.get<{ error: string }>('/api/services/reviews.default.svc.cluster.local')).body.error).toMatch(/^no config known yet: weftd at .* unreachable/);
  });

  it('serves Prometheus under /prometheus/ with its basic auth, which a direct request without it does not pass', async () => {
    const direct = await fetch(`${prometheus.url}/api/v1/query?query=up`);
    expect(direct.status).toBe(401);
    const via = await fetch(`http://127.0.0.1:${dashboard.port}/prometheus/api/v1/query?query=up`);
    expect(via.status).toBe(200);
    expect(((await via.json()) as { status: string }).status).toBe('success');
    const page = await fetch(`http://127.0.0.1:${dashboard.port}/prometheus/`, { redirect: 'manual' });
    // Prometheus' UI redirects within its prefix; the redirect stays on the dashboard's origin.
    expect([200, 302]).toContain(page.status);
    if (page.status === 302) expect(page.headers.get('location')).toMatch(/^\/prometheus\//);
  });

  it('is read-only: anything but GET and HEAD is refused with 405', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of ['/api/status', '/prometheus/api/v1/admin/tsdb/snapshot', '/']) {
        const r = await fetch(`http://127.0.0.1:${dashboard.port}${path}`, { method });
        expect(r.status, `${method} ${path}`).toBe(405);
      }
    }
    const head = await fetch(`http://127.0.0.1:${dashboard.port}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('keeps the last graph while Prometheus is down, says so within 10 s, and recovers by itself', async () => {
    await prometheus.stop();
    const stoppedAt = Date.now();
    const down = await until(
      'prometheus reported down',
      async () => {
        const r = await dashboard.get<Sources>('/api/status');
        return r.body.sources.prometheus.ok ? undefined : r.body.sources.prometheus;
      },
      10_000,
      200,
    );
    console.log(`Prometheus stopped: the dashboard said so after ${Date.now() - stoppedAt} ms: ${down.error}`);
    expect(down.error).toBe(`Prometheus at ${prometheus.url} unreachable: connect ECONNREFUSED 127.0.0.1:${prometheus.port}`);
    expect(down.lastOkAt).toBeDefined();
    const kept = await dashboard.get<Graph & Sources>('/api/graph');
    expect(kept.body.edges.length).toBeGreaterThanOrEqual(3);
    expect(kept.body.sources.prometheus.ok).toBe(false);
    expect((await fetch(`http://127.0.0.1:${dashboard.port}/prometheus/api/v1/query?query=up`)).status).toBe(502);

    await prometheus.start();
    const startedAt = Date.now();
    await until('prometheus back', async () => (await dashboard.get<Sources>('/api/status')).body.sources.prometheus.ok, 10_000, 200);
    console.log(`Prometheus started again: the dashboard had it back after ${Date.now() - startedAt} ms`);
  });

  it('receives OTLP/HTTP traces (JSON and protobuf), keeps the last N traces, refuses bodies over the limit and other content types', async () => {
    const otlp = `http://127.0.0.1:${dashboard.otlpPort}/v1/traces`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const traceId = `${String(i).repeat(2)}${'ab'.repeat(15)}`;
      ids.push(traceId);
      const t0 = BigInt(Date.now() + i) * 1_000_000n;
      const body = {
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'productpage.default' } }] },
            scopeSpans: [
              {
                spans: [
                  { traceId, spanId: `${i}${'1'.repeat(15)}`, name: 'productpage.default.svc.cluster.local:9080/productpage', kind: 2, startTimeUnixNano: String(t0), endTimeUnixNano: String(t0 + 20_000_000n) },
                  { traceId, spanId: `${i}${'2'.repeat(15)}`, parentSpanId: `${i}${'1'.repeat(15)}`, name: 'reviews.default.svc.cluster.local:9080/*', kind: 3, startTimeUnixNano: String(t0 + 1_000_000n), endTimeUnixNano: String(t0 + 15_000_000n), attributes: [{ key: 'http.status_code', value: { intValue: i === 4 ? '503' : '200' } }] },
                ],
              },
            ],
          },
        ],
      };
      const r = await fetch(otlp, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(r.status).toBe(200);
    }
    const list = (await dashboard.get<{ traces: TraceSummary[] }>('/api/traces')).body.traces;
    // Bounded: --max-traces 3 keeps the three last.
    expect(list.map((t) => t.traceId)).toEqual([ids[4], ids[3], ids[2]]);
    expect(list[0]).toMatchObject({ root: 'productpage.default.svc.cluster.local:9080/productpage', service: 'productpage.default', spans: 2, durationMs: 20, error: true });
    expect(list[1]!.error).toBe(false);
    const one = await dashboard.get<{ traceId: string; spans: { spanId: string; parentSpanId: string; kind: string }[] }>(`/api/traces/${ids[3]}`);
    expect(one.body.spans.map((s) => [s.kind, s.parentSpanId === '' ? 'root' : 'child'])).toEqual([
      ['SERVER', 'root'],
      ['CLIENT', 'child'],
    ]);
    expect((await dashboard.get(`/api/traces/${ids[0]}`)).status).toBe(404);

    const big = await fetch(otlp, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.alloc(8192) });
    expect(big.status).toBe(413);
    expect(await big.text()).toMatch(/over the limit of 4096 bytes/);
    // Without a content-length (chunked), the limit holds as the body arrives.
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(new Uint8Array(1024));
        c.close();
      },
    });
    const streamed = await fetch(otlp, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunked, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    const gzipped = await fetch(otlp, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(Buffer.alloc(64 * 1024, 0x20)) });
    expect(gzipped.status).toBe(413);
    expect(await gzipped.text()).toMatch(/over the limit of 4096 bytes \(uncompressed\)/);
    const bad = await fetch(otlp, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.from([0x0a, 0xff, 0xff]) });
    expect(bad.status).toBe(400);
    expect((await fetch(otlp, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).status).toBe(415);
    expect((await fetch(otlp)).status).toBe(405);
  });

  it('exports its own metrics: requests, poll durations, source up/down, refused OTLP requests', async () => {
    const text = await (await fetch(`http://127.0.0.1:${dashboard.port}/metrics`)).text();
    expect(text).toMatch(/weft_dashboard_requests_total\{route="graph",code="200"\} [1-9]/);
    expect(text).toMatch(/weft_dashboard_poll_duration_seconds_count\{source="prometheus"\} [1-9]/);
    expect(text).toMatch(/weft_dashboard_source_up\{source="weftd"\} 0/);
    expect(text).toMatch(/weft_dashboard_source_up\{source="prometheus"\} 1/);
    expect(text).toMatch(/weft_dashboard_otlp_rejected_total\{reason="too-large"\} 3/);
  });

  it('with --state-dir, reads mesh.json at every poll: a Prometheus that moved is followed, and no mesh is said', async () => {
    const stateDir = join(dir, 'state');
    await mkdir(stateDir, { recursive: true });
    const mesh = (prometheusUrl: string) => ({ pid: process.pid, weftd: { monitoringPort: deadWeftd }, prometheus: { url: prometheusUrl, passwordFile: prometheus.passwordFile }, proxies: [] });
    const d2 = await startDashboardProcess(['--state-dir', stateDir, '--interval-ms', '2000']);
    try {
      const none = await until('no mesh said', async () => (await d2.get<Sources>('/api/status')).body.sources.prometheus.error?.includes('no local mesh is running') || undefined, 10_000, 200);
      expect(none).toBe(true);
      await writeFile(join(stateDir, 'mesh.json'), JSON.stringify(mesh(`${prometheus.url}/`)));
      await until('Prometheus from mesh.json', async () => (await d2.get<Sources>('/api/status')).body.sources.prometheus.ok || undefined, 10_000, 200);
      const moved = await freePort();
      await writeFile(join(stateDir, 'mesh.json'), JSON.stringify(mesh(`http://127.0.0.1:${moved}/prometheus/`)));
      const s = await until(
        'the new address polled',
        async () => {
          const p = (await d2.get<Sources>('/api/status')).body.sources.prometheus;
          return p.url === `http://127.0.0.1:${moved}/prometheus` ? p : undefined;
        },
        10_000,
        200,
      );
      expect(s).toMatchObject({ ok: false, error: `Prometheus at http://127.0.0.1:${moved}/prometheus unreachable: connect ECONNREFUSED 127.0.0.1:${moved}` });
    } finally {
      await d2.stop();
    }
  });

  const rootReason = needs({ root: true, tools: ['setpriv', 'curl'] });
  it.skipIf(rootReason)(`refuses processes of another UID on both ports ${rootReason ? `(skipped: ${rootReason})` : ''}`, async () => {
    const otherUid = 47_121;
    for (const port of [dashboard.port, dashboard.otlpPort]) {
      const r = await run('setpriv', [`--reuid=${otherUid}`, `--regid=${otherUid}`, '--clear-groups', '--', 'curl', '-sS', '--max-time', '5', `http://127.0.0.1:${port}/api/status`], { encoding: 'utf8' }).then(
        () => ({ code: 0, err: '' }),
        (e: { code?: number; stderr?: string }) => ({ code: e.code ?? -1, err: e.stderr ?? '' }),
      );
      // Reset at connect: as curl sees it, "Couldn't connect" (7), an empty reply (52) or "Connection
      // reset by peer" (56), depending on when the reset lands; the counters below say it was the guard.
      expect([7, 52, 56], `${port}: ${r.err}`).toContain(r.code);
    }
    const text = await (await fetch(`http://127.0.0.1:${dashboard.port}/metrics`)).text();
    expect(text).toMatch(/weft_dashboard_owner_guard_refused_connections_total\{port="http"\} 1/);
    expect(text).toMatch(/weft_dashboard_owner_guard_refused_connections_total\{port="otlp"\} 1/);
  });
});
