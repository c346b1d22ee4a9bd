// Istio's metrics and access logs end to end: weftd (with a MeshConfig asking for access logs on
// stdout), a client sidecar, two workloads of one service (reviews-v1, reviews-v2) behind their own
// sidecars, and a TCP service; Prometheus from Debian scrapes the proxies (15090; reviews-v1 through
// its merged 15020 endpoint, which also carries the application's metrics) and the test asks it
// what a user would: requests by destination workload and response code, as each side reports them.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { findOnPath, needs } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join as joinYaml, serviceEntry, subsets } from './config.ts';
import { App, type Backend, freePort, type ProxyProcess, startBackend, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const ip = { client: '127.10.9.1', v1: '127.10.9.11', v2: '127.10.9.12', db: '127.10.9.21' };
// Without Prometheus the metrics tests skip (saying how to install it); the access-log tests still run.
const noPrometheus = needs({ tools: ['prometheus'] });

let dir: string;
let weftd: Weftd;
let prometheus: ChildProcess | undefined;
let prometheusLog = '';
let promPort: number;
let appMetrics: Server;
const backends: Backend[] = [];
const proxies: ProxyProcess[] = [];
let client: ProxyProcess;
let v1: ProxyProcess;
let app: App;

function workloadEntry(name: string, version: string, address: string, port: number, portName = 'http', app = name): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-${version}, namespace: default}
spec:
  address: ${address}
  labels: {app: ${app}, version: ${version}}
  ports: {${portName}: ${port}}
`;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(q: string): Promise<Sample[]> {
  const r = await request(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await r.body.json()) as { status: string; data?: { result: Sample[] }; error?: string };
  if (body.status !== 'success') throw new Error(`Prometheus query ${q} failed: ${body.error}`);
  return body.data!.result;
}

/** `sum by (a, b)` results as {"a|b": value}. */
function table(samples: Sample[], keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[keys.map((k) => s.metric[k] ?? '').join('|')] = Number(s.value[1]);
  return out;
}

/** Polls a query until `accept` holds (scrapes happen every second), returning the last result. */
async function eventually<T>(what: string, read: () => Promise<T>, accept: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T = await read();
  while (!accept(last)) {
    if (Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 500));
    last = await read();
  }
  void what;
  return last;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-e2e-telemetry-'));
  const configDir = join(dir, 'config');
  await mkdir(configDir);
  const meshFile = join(dir, 'mesh.yaml');
  await writeFile(meshFile, 'accessLogFile: /dev/stdout\n');

  const [b1, b2, db] = await Promise.all([startBackend('reviews', 'v1', ip.v1), startBackend('reviews', 'v2', ip.v2), startBackend('db', 'v1', ip.db, { tcp: true })]);
  backends.push(b1, b2, db);
  // The application's own metrics endpoint beside reviews-v1 (merged into its sidecar's 15020).
  appMetrics = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end('# HELP reviews_app_ratings_served_total Ratings served by the application.\n# TYPE reviews_app_ratings_served_total counter\nreviews_app_ratings_served_total 7\n');
  });
  appMetrics.listen(0, ip.v1);
  await once(appMetrics, 'listening');
  const appMetricsPort = (appMetrics.address() as { port: number }).port;

  await writeConfig(
    configDir,
    'mesh.yaml',
    joinYaml(
      serviceEntry('reviews', 'reviews'),
      serviceEntry('db', 'db', 9000, 'TCP'),
      workloadEntry('reviews', 'v1', ip.v1, 9080),
      workloadEntry('reviews', 'v2', ip.v2, 9080),
      workloadEntry('db', 'v1', ip.db, 9000, 'tcp'),
      subsets('reviews', ['v1', 'v2']),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {x-version: {exact: v2}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]`,
    ),
  );
  weftd = await startWeftd(configDir, 0, { extra: ['--mesh-config', meshFile] });
  const sidecar = (name: string, version: string, address: string, port: number, appPort: number, extra: string[] = []) =>
    startProxy({
      xdsPort: weftd.xdsPort,
      ip: address,
      pod: `${name}-${version}-1`,
      labels: `app=${name},version=${version}`,
      extra: ['--workload-name', `${name}-${version}`, '--app-address', address, '--app-ports', `${port}=${appPort}`, ...extra],
    });
  const started = await Promise.all([
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.client, pod: 'productpage-v1-1', labels: 'app=productpage,version=v1', extra: ['--workload-name', 'productpage-v1'] }),
    sidecar('reviews', 'v1', ip.v1, 9080, b1.port, ['--app-metrics-url', `http://${ip.v1}:${appMetricsPort}/metrics`]),
    sidecar('reviews', 'v2', ip.v2, 9080, b2.port),
    sidecar('db', 'v1', ip.db, 9000, db.port),
  ]);
  proxies.push(...started);
  [client, v1] = started;
  app = new App(ip.client);
  if (!noPrometheus) await startPrometheus();
}, 120_000);

async function startPrometheus(): Promise<void> {
  // Prometheus: each proxy scraped once (reviews-v1 through 15020, the merged endpoint), every second.
  promPort = await freePort('127.0.0.1');
  const promConfig = join(dir, 'prometheus.yml');
  await writeFile(
    promConfig,
    `global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: envoy-stats
  metrics_path: /stats/prometheus
  static_configs: [{targets: ['${ip.client}:15090', '${ip.v2}:15090', '${ip.db}:15090']}]
- job_name: pods
  metrics_path: /stats/prometheus
  static_configs: [{targets: ['${ip.v1}:15020']}]
`,
  );
  prometheus = spawn(findOnPath('prometheus')!, [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  prometheus.stderr!.on('data', (d: Buffer) => {
    prometheusLog = (prometheusLog + d.toString()).slice(-4000);
  });
  const up = await eventually(
    'targets up',
    async () => {
      try {
        return await query('up');
      } catch {
        return [];
      }
    },
    (s) => s.length === 4 && s.every((x) => x.value[1] === '1'),
  );
  if (up.length !== 4 || !up.every((x) => x.value[1] === '1')) throw new Error(`Prometheus targets not up: ${JSON.stringify(up)}\n${prometheusLog}`);
}

afterAll(async () => {
  await app?.close();
  if (prometheus && prometheus.exitCode === null) {
    prometheus.kill('SIGTERM');
    await once(prometheus, 'exit');
  }
  await Promise.all(proxies.map((p) => p.proc.stop()));
  await Promise.all(backends.map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (appMetrics) await new Promise((r) => appMetrics.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(noPrometheus !== undefined)('Istio metrics, scraped by Prometheus', () => {
  // What the test sends: per destination workload and response code.
  // (500 and 404, not 503: Istio's default retry policy retries 503s, and the destination would count each attempt.)
  const sent = { 'reviews-v1|200': 7, 'reviews-v2|200': 5, 'reviews-v2|500': 3, 'reviews-v1|404': 2 };

  it('reporter=destination counts every request by destination workload and response code, and the source side agrees', async () => {
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 7; i++) calls.push(app.get('reviews:9080', '/reviews/1'));
    for (let i = 0; i < 5; i++) calls.push(app.get('reviews:9080', '/reviews/2', { 'x-version': 'v2' }));
    for (let i = 0; i < 3; i++) calls.push(app.get('reviews:9080', '/reviews/2?status=500', { 'x-version': 'v2' }));
    for (let i = 0; i < 2; i++) calls.push(app.get('reviews:9080', '/missing?status=404'));
    const replies = (await Promise.all(calls)) as { status: number; echo?: { headers: Record<string, string> } }[];
    expect(replies.map((r) => r.status).sort()).toEqual([...Array(7).fill(200), ...Array(5).fill(200), 404, 404, 500, 500, 500].sort());
    // Metadata exchange headers never reach the application.
    for (const r of replies) if (r.echo) expect(Object.keys(r.echo.headers).filter((h) => h.startsWith('x-envoy-peer-metadata'))).toEqual([]);

    const q = 'sum by (destination_workload, response_code) (istio_requests_total{reporter="destination"})';
    const destination = await eventually(
      q,
      async () => table(await query(q), ['destination_workload', 'response_code']),
      (t) => JSON.stringify(t) === JSON.stringify(Object.fromEntries(Object.entries(sent).sort())),
    );
    expect(Object.fromEntries(Object.entries(destination).sort())).toEqual(Object.fromEntries(Object.entries(sent).sort()));

    const qs = 'sum by (destination_workload, response_code) (istio_requests_total{reporter="source"})';
    const source = await eventually(
      qs,
      async () => table(await query(qs), ['destination_workload', 'response_code']),
      (t) => JSON.stringify(Object.fromEntries(Object.entries(t).sort())) === JSON.stringify(Object.fromEntries(Object.entries(sent).sort())),
    );
    expect(Object.fromEntries(Object.entries(source).sort())).toEqual(Object.fromEntries(Object.entries(sent).sort()));
  });

  it('both sides know both workloads: names, apps, versions, namespaces, services from metadata exchange', async () => {
    const series = await query('istio_requests_total{destination_workload="reviews-v2", response_code="200"}');
    const byReporter = Object.fromEntries(series.map((s) => [s.metric.reporter, s.metric]));
    for (const reporter of ['source', 'destination']) {
      expect(byReporter[reporter]).toMatchObject({
        source_workload: 'productpage-v1',
        source_app: 'productpage',
        source_version: 'v1',
        source_workload_namespace: 'default',
        source_canonical_service: 'productpage',
        destination_workload: 'reviews-v2',
        destination_app: 'reviews',
        destination_version: 'v2',
        destination_workload_namespace: 'default',
        destination_canonical_service: 'reviews',
        destination_canonical_revision: 'v2',
        destination_service: 'reviews.default.svc.cluster.local',
        destination_service_name: 'reviews',
        destination_service_namespace: 'default',
        request_protocol: 'http',
        response_flags: '-',
      });
    }
    expect(byReporter.source!.connection_security_policy).toBe('unknown');
    expect(byReporter.destination!.connection_security_policy).toBe('none');
    // Histograms with Envoy's buckets.
    const le = await query('count by (le) (istio_request_duration_milliseconds_bucket{reporter="destination"})');
    const bound = (x: string | undefined) => (x === '+Inf' ? Number.POSITIVE_INFINITY : Number(x));
    expect(le.map((s) => s.metric.le).sort((a, b) => bound(a) - bound(b))).toEqual(['0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf']);
  });

  it('15020 merges the application’s metrics with the proxy’s', async () => {
    const appSeries = await query('reviews_app_ratings_served_total');
    expect(appSeries).toHaveLength(1);
    expect(appSeries[0]!.metric).toMatchObject({ job: 'pods', instance: `${ip.v1}:15020` });
    expect(appSeries[0]!.value[1]).toBe('7');
    expect(await query(`istio_build{instance="${ip.v1}:15020", component="proxy"}`)).toHaveLength(1);
  });

  it('TCP connections: opened, closed and bytes on both sides', async () => {
    for (let i = 0; i < 4; i++) {
      // Local mode: the app reaches a TCP service through its sidecar with HTTP CONNECT.
      const got = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({ host: ip.client, port: 15001, method: 'CONNECT', path: 'db:9000' });
        req.on('connect', (res, socket, head: Buffer) => {
          if (res.statusCode !== 200) reject(new Error(`CONNECT answered ${res.statusCode}`));
          let data = head.toString();
          socket.on('data', (d: Buffer) => {
            data += d.toString();
            if (data.includes('ping')) socket.end();
          });
          socket.on('close', () => resolve(data));
          socket.write('ping');
        });
        req.on('error', reject);
        req.end();
      });
      expect(got).toBe('db:\nping');
    }
    const q = 'sum by (reporter) (istio_tcp_connections_closed_total{destination_service="db.default.svc.cluster.local"})';
    const closed = await eventually(q, async () => table(await query(q), ['reporter']), (t) => t.source === 4 && t.destination === 4);
    expect(closed).toEqual({ source: 4, destination: 4 });
    const opened = table(await query('sum by (reporter) (istio_tcp_connections_opened_total{destination_service="db.default.svc.cluster.local"})'), ['reporter']);
    expect(opened).toEqual({ source: 4, destination: 4 });
    const received = table(await query('sum by (reporter) (istio_tcp_received_bytes_total{destination_service="db.default.svc.cluster.local"})'), ['reporter']);
    // `ping` from the client, 4 bytes a connection; the server side sent its greeting and the echo.
    expect(received).toEqual({ source: 16, destination: 16 });
    const sentBytes = table(await query('sum by (reporter) (istio_tcp_sent_bytes_total{destination_service="db.default.svc.cluster.local"})'), ['reporter']);
    expect(sentBytes).toEqual({ source: 32, destination: 32 });
  });
});

describe('access log', () => {
  it("one line per request on the sidecars' stdout in Istio's default format", async () => {
    const r = await app.get('reviews:9080', '/reviews/42?who=log', { 'user-agent': 'telemetry-e2e/1.0', 'x-request-id': 'e2e-access-log-1' });
    expect(r.status).toBe(200);
    const pattern =
      /^\[(\S+)\] "(\S+) (\S+) (\S+)" (\d+) (\S+) (\S+) (\S+) "([^"]*)" (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$/;
    const find = async (p: ProxyProcess) => {
      const l = await p.proc.waitFor((x) => x.level === 'raw' && x.msg.includes('e2e-access-log-1'), 'the access log line', 10_000);
      const m = pattern.exec(l.msg);
      if (!m) throw new Error(`not Istio's format: ${l.msg}`);
      return m;
    };
    const out = await find(client);
    expect(Date.now() - Date.parse(out[1]!)).toBeLessThan(60_000);
    // method, path, protocol, code, flags, details
    expect(out.slice(2, 8)).toEqual(['GET', '/reviews/42?who=log', 'HTTP/1.1', '200', '-', 'via_upstream']);
    // user agent, request id, authority, upstream host, cluster
    expect(out.slice(15, 20)).toEqual(['telemetry-e2e/1.0', 'e2e-access-log-1', 'reviews:9080', `${ip.v1}:9080`, 'outbound|9080|v1|reviews.default.svc.cluster.local']);
    expect(Number(out[12])).toBeGreaterThanOrEqual(0);
    // The server side logs the same request, received on reviews-v1's inbound port.
    const inbound = await find(v1);
    expect(inbound[5]).toBe('200');
    expect(inbound[19]).toBe('inbound|9080||');
    expect(inbound[21]).toBe(`${ip.v1}:9080`);
    expect(inbound[24]).toBe('default');
  });
});
