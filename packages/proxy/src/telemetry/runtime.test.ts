import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HttpConnectionManager__Output } from '@weft/xds';
import type { HttpFilterContext } from '../core/filters.ts';
import type { RequestRecord, ResponseFlag } from '../core/types.ts';
import { parseProxyFlags, UsageError } from '../runtime/flags.ts';
import { appMetricsUrl } from './app-metrics.ts';
import { TelemetryRuntime } from './runtime.ts';

const node = { type: 'sidecar' as const, ip: '127.0.0.1', pod: 'reviews-v1-1', namespace: 'default', labels: { app: 'reviews', version: 'v1' } };
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function appServer(body: string, status = 200, type = 'text/plain; version=0.0.4'): Promise<string> {
  const s: Server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  cleanup.push(() => new Promise((r) => s.close(() => r())));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`;
}

async function get(url: string): Promise<{ status: number; text: string; type: string | null }> {
  const r = await fetch(url);
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}

function countOneRequest(rt: TelemetryRuntime): void {
  const f = rt.telemetry.httpFilterFactory({} as HttpConnectionManager__Output, { where: 't', listener: 't', direction: 'inbound' })!;
  const record: RequestRecord = { direction: 'inbound', listener: 't', protocol: 'HTTP/1.1', startTime: 0, durationMs: 2, responseCode: 200, responseFlags: new Set<ResponseFlag>(), bytesReceived: 0, bytesSent: 4, attempts: 1 };
  const ctx: HttpFilterContext = {
    connection: { remoteAddress: '127.0.0.9', remotePort: 1, localAddress: '127.0.0.1', localPort: 9080, destinationAddress: '127.0.0.1', destinationPort: 9080, tls: false, peerPrincipal: undefined, peerCertificate: undefined, localPrincipal: undefined, sni: undefined },
    record,
    method: 'GET',
    authority: 'reviews:9080',
    path: '/',
    scheme: 'http',
    requestHeaders: {},
    routeName: undefined,
    upstreamCluster: undefined,
  };
  const h = f.begin(ctx)!;
  h.onRequest?.(ctx);
  h.onResponse?.(ctx, 200, {});
  h.onComplete?.(ctx);
}

describe('15090 and 15020', () => {
  it('15090 serves the proxy’s istio_* and envoy_* metrics; 15020 adds the application’s and the agent’s, and answers /healthz/ready', async () => {
    const rt = new TelemetryRuntime({ node, snapshot: () => undefined });
    cleanup.push(() => rt.close());
    const app = await appServer('# HELP app_orders_total Orders.\n# TYPE app_orders_total counter\napp_orders_total 42\n');
    let ready = false;
    await rt.listen({ host: '127.0.0.1', statsPort: 0, statusPort: 0, appMetricsUrl: app, ready: () => ready, envoyStats: () => [['cluster.outbound|9080||ratings.default.svc.cluster.local.upstream_rq_total', 3], ['listener.virtualInbound.http.downstream_rq_2xx', 1]] });
    countOneRequest(rt);

    const stats = await get(`http://127.0.0.1:${rt.statsPort}/stats/prometheus`);
    expect(stats.status).toBe(200);
    expect(stats.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(stats.text).toMatch(/^istio_requests_total\{reporter="destination",source_workload="unknown",.*response_code="200",.*\} 1$/m);
    expect(stats.text).toContain('istio_build{component="proxy",tag="1.24.0"} 1');
    expect(stats.text).toContain('envoy_cluster_upstream_rq_total{envoy_cluster_name="outbound|9080||ratings.default.svc.cluster.local"} 3');
    expect(stats.text).toContain('envoy_http_downstream_rq_2xx{envoy_http_conn_manager_prefix="virtualInbound"} 1');
    expect(stats.text).not.toContain('app_orders_total');

    const merged = await get(`http://127.0.0.1:${rt.statusPort}/stats/prometheus`);
    expect(merged.status).toBe(200);
    expect(merged.text).toContain('istio_requests_total{reporter="destination"');
    expect(merged.text).toContain('app_orders_total 42');
    expect(merged.text).toMatch(/^istio_agent_scrapes_total 1$/m);
    expect(merged.text).toMatch(/^istio_agent_scrape_failures_total 0$/m);

    expect((await get(`http://127.0.0.1:${rt.statusPort}/healthz/ready`)).status).toBe(503);
    ready = true;
    expect((await get(`http://127.0.0.1:${rt.statusPort}/healthz/ready`)).status).toBe(200);
  });

  it('without an application endpoint, or when it fails, 15020 still serves the proxy’s metrics and counts the failure', async () => {
    const rt = new TelemetryRuntime({ node, snapshot: () => undefined });
    cleanup.push(() => rt.close());
    const broken = await appServer('oops', 500);
    await rt.listen({ host: '127.0.0.1', statusPort: 0, appMetricsUrl: broken, ready: () => true });
    expect(rt.statsPort).toBeUndefined();
    const merged = await get(`http://127.0.0.1:${rt.statusPort}/stats/prometheus`);
    expect(merged.status).toBe(200);
    expect(merged.text).toContain('istio_build{component="proxy"');
    expect(merged.text).not.toContain('oops');
    expect(merged.text).toMatch(/^istio_agent_scrape_failures_total 1$/m);
  });

  it('an OpenMetrics application body loses its # EOF so the merged text stays one exposition', async () => {
    const rt = new TelemetryRuntime({ node, snapshot: () => undefined });
    cleanup.push(() => rt.close());
    const app = await appServer('# TYPE app_up gauge\napp_up 1\n# EOF\n', 200, 'application/openmetrics-text; version=1.0.0');
    await rt.listen({ host: '127.0.0.1', statusPort: 0, appMetricsUrl: app, ready: () => true });
    const merged = await get(`http://127.0.0.1:${rt.statusPort}/stats/prometheus`);
    expect(merged.text).toContain('app_up 1');
    expect(merged.text).not.toContain('# EOF');
  });
});

describe('the application metrics endpoint', () => {
  it('comes from the flag, Istio’s ISTIO_PROMETHEUS_ANNOTATIONS, or the pod annotations in node metadata', () => {
    expect(appMetricsUrl({ url: 'http://127.0.0.1:9100/metrics' })).toBe('http://127.0.0.1:9100/metrics');
    expect(appMetricsUrl({ prometheusAnnotations: '{"scrape":"true","port":"9102","path":"/stats"}', appAddress: '127.0.3.4' })).toBe('http://127.0.3.4:9102/stats');
    expect(appMetricsUrl({ prometheusAnnotations: '{"scrape":"false","port":"9102"}' })).toBeUndefined();
    expect(appMetricsUrl({ annotations: '{"prometheus.io/scrape":"true","prometheus.io/port":"8080"}', appPorts: new Map([[8080, 18080]]) })).toBe('http://127.0.0.1:18080/metrics');
    expect(appMetricsUrl({ annotations: { 'prometheus.io/port': '15020' } })).toBeUndefined();
    expect(appMetricsUrl({})).toBeUndefined();
  });

  it('weft-proxy flags: 15090 and 15020 by default, -1 turns them off, bad values are usage errors', () => {
    const o = parseProxyFlags(['--ip', '127.0.5.1'], { ISTIO_PROMETHEUS_ANNOTATIONS: '{"port":"9100"}' }, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o).toMatchObject({ statsPort: 15090, statusPort: 15020, healthHost: '127.0.5.1', appMetricsUrl: 'http://127.0.0.1:9100/metrics' });
    const off = parseProxyFlags(['--stats-port=-1', '--status-port', '0'], {}, 'sidecar');
    if (off === 'help') throw new Error('help');
    expect(off).toMatchObject({ statsPort: -1, statusPort: 0 });
    expect(off.appMetricsUrl).toBeUndefined();
    expect(() => parseProxyFlags(['--app-metrics-url', 'ftp://x/metrics'], {}, 'sidecar')).toThrow(UsageError);
    expect(() => parseProxyFlags([], { ISTIO_PROMETHEUS_ANNOTATIONS: '{"port":"ninety"}' }, 'sidecar')).toThrow(/ISTIO_PROMETHEUS_ANNOTATIONS: port "ninety" is not a port number/);
    expect(() => parseProxyFlags(['--stats-port', '70000'], {}, 'sidecar')).toThrow(/--stats-port must be a port number/);
  });
});
