// A stopping proxy drains as pilot-agent makes Envoy drain on SIGTERM: for the drain period every
// listener keeps accepting (callers still send until the terminating endpoint has left their EDS)
// and each connection is asked to close (HTTP/1 `connection: close`, HTTP/2 GOAWAY); a sidecar's
// outbound is left alone (the application may still be finishing its calls); then it stops. A real
// proxy, configured by pilot's discovery server over gRPC, in local mode on a loopback address.
import { once } from 'node:events';
import { createServer, request as httpRequest, Agent, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { defaultKindRegistry, loadText, MemoryConfigStore, silentLogger } from '@weft/model';
import { AggregateRegistry, buildPushContext, DiscoveryServer, envoyGenerators, proxyFromNode, ServiceEntryRegistry } from '@weft/pilot';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { drainPeriod, runDrainCommand } from './drain.ts';
import { type RunningProxy, startProxy } from './proxy.ts';

const net24 = `127.${120 + Math.floor(Math.random() * 60)}.${1 + Math.floor(Math.random() * 250)}`;
const reviewsIp = `${net24}.10`;
const ratingsIp = `${net24}.11`;

const mesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: ${reviewsIp}, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1, namespace: default}
spec: {address: ${ratingsIp}, labels: {app: ratings}}
`;

let discovery: DiscoveryServer;
let xdsPort: number;
/** The reviews application behind the sidecar: `/slow?ms=N` answers after N ms. */
let app: Server;
let appPort: number;
/** Stands where the ratings sidecar would listen, for the reviews app's calls out. */
let ratings: Server;

function listen(server: Server, host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

beforeAll(async () => {
  const store = new MemoryConfigStore();
  const loaded = loadText(mesh, 'drain-test.yaml', { registry: defaultKindRegistry() });
  for (const r of loaded.resources) if (r.config) store.upsert(r.config);
  discovery = new DiscoveryServer({
    store,
    registry: new AggregateRegistry([new ServiceEntryRegistry(store, {})]),
    generators: { envoy: envoyGenerators },
    buildPushContext,
    proxyFromNode: (n) => proxyFromNode(n),
    logger: silentLogger,
  });
  xdsPort = await discovery.listen({ port: 0 });
  app = createServer((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
    setTimeout(() => res.end('reviews'), ms);
  });
  appPort = await listen(app, '127.0.0.1');
  ratings = createServer((_req, res) => res.end('ratings'));
  await listen(ratings, ratingsIp, 9080);
}, 30_000);

afterAll(async () => {
  app?.closeAllConnections();
  app?.close();
  ratings?.closeAllConnections();
  ratings?.close();
  await discovery?.stop();
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function reviewsSidecar(o: { drainMs: number; exitOnZeroActiveConnections?: boolean; minDrainMs?: number; telemetry?: boolean; statusPort?: number }, logs: Record<string, unknown>[] = []): Promise<RunningProxy> {
  const p = await startProxy({
    xdsAddress: `127.0.0.1:${xdsPort}`,
    node: { type: 'sidecar', ip: reviewsIp, pod: 'reviews-v1', namespace: 'default', labels: { app: 'reviews' } },
    mode: 'local',
    bindAddress: reviewsIp,
    appAddress: '127.0.0.1',
    appPorts: new Map([[9080, appPort]]),
    adminHost: reviewsIp,
    adminPort: 0,
    healthHost: reviewsIp,
    healthPort: 0,
    telemetry: false,
    logLevel: 'info',
    logSink: (l) => logs.push(JSON.parse(l) as Record<string, unknown>),
    ...o,
  });
  cleanups.push(() => p.close());
  await p.ready;
  return p;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The client's port: the same on a reused keep-alive connection. */
  localPort: number | undefined;
}

/** One HTTP/1.1 GET (on `agent`'s keep-alive connections when given); `proxyPath` sends an absolute-form request (the outbound port). */
function get(host: string, port: number, path: string, agent?: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port, path, agent: agent ?? false, headers: path.startsWith('http://') ? { host: new URL(path).host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, localPort: res.socket?.localPort }));
    });
    req.on('error', reject);
    req.end();
  });
}

function connectError(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, host);
    c.on('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('proxy drain on stop (pilot-agent on SIGTERM)', () => {
  it('keeps accepting and serving for the drain period, each answer with connection: close, not ready meanwhile; then stops listening', async () => {
    const logs: Record<string, unknown>[] = [];
    const p = await reviewsSidecar({ drainMs: 1500, exitOnZeroActiveConnections: false }, logs);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => keepAlive.destroy());
    const before = await get(reviewsIp, 9080, '/', keepAlive);
    expect(before).toMatchObject({ status: 200, body: 'reviews' });
    expect(before.headers.connection).toBe('keep-alive');
    expect((await get(reviewsIp, p.healthPort!, '/healthz/ready')).status).toBe(200);

    const inFlight = get(reviewsIp, 9080, '/slow?ms=700');
    await sleep(100);
    const started = performance.now();
    const stopped = p.close();
    await sleep(50);
    // Not ready (the kubelet stops counting the pod), yet every caller that still has the endpoint is served.
    expect((await get(reviewsIp, p.healthPort!, '/healthz/ready')).status).toBe(503);
    const answers: Answer[] = [];
    for (let i = 0; i < 5; i++) {
      answers.push(await get(reviewsIp, 9080, '/'));
      await sleep(200);
    }
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.headers.connection)).toEqual(['close', 'close', 'close', 'close', 'close']);
    expect(await inFlight).toMatchObject({ status: 200, body: 'reviews' });
    // The idle keep-alive connection was closed; the client's next request opens a new one and is told to close it.
    const again = await get(reviewsIp, 9080, '/', keepAlive);
    expect(again).toMatchObject({ status: 200, body: 'reviews' });
    expect(again.headers.connection).toBe('close');

    await stopped;
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(1450);
    expect(ms).toBeLessThan(4000);
    expect(await connectError(reviewsIp, 9080)).toBe('ECONNREFUSED');
    expect(logs.find((l) => l.msg === 'drained')).toMatchObject({ reason: 'drain period over' });
  });

  it('a sidecar drains its inbound only: the application keeps its keep-alive connection out; HTTP/2 inbound gets GOAWAY after its stream', async () => {
    const p = await reviewsSidecar({ drainMs: 1000, exitOnZeroActiveConnections: false });
    const out = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => out.destroy());
    const first = await get(reviewsIp, 15001, 'http://ratings:9080/', out);
    expect(first).toMatchObject({ status: 200, body: 'ratings' });

    const h2 = http2Connect(`http://${reviewsIp}:9080`);
    cleanups.push(async () => void h2.destroy());
    await once(h2, 'connect');
    // What pilot-agent asks of a sidecar's Envoy on SIGTERM (drain_listeners?inboundonly&graceful).
    p.listeners.drain('inbound');
    const goaway = once(h2, 'goaway');
    const stream = h2.request({ ':path': '/slow?ms=100' });
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (body += c));
    const [headers] = (await once(stream, 'response')) as [Record<string, string | number>];
    await once(stream, 'end');
    expect(headers[':status']).toBe(200);
    expect(body).toBe('reviews');
    await goaway;

    const inbound = await get(reviewsIp, 9080, '/');
    expect(inbound.headers.connection).toBe('close');
    const second = await get(reviewsIp, 15001, 'http://ratings:9080/', out);
    expect(second).toMatchObject({ status: 200, body: 'ratings' });
    expect(second.headers.connection).toBe('keep-alive');
    expect(second.localPort).toBe(first.localPort);
  });

  it('with exitOnZeroActiveConnections it stops once the minimum has passed and the last request in flight is answered', async () => {
    const logs: Record<string, unknown>[] = [];
    const p = await reviewsSidecar({ drainMs: 20_000, exitOnZeroActiveConnections: true, minDrainMs: 300 }, logs);
    const inFlight = get(reviewsIp, 9080, '/slow?ms=1200');
    await sleep(100);
    const started = performance.now();
    await p.close();
    const ms = performance.now() - started;
    expect(await inFlight).toMatchObject({ status: 200, body: 'reviews' });
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThan(5000);
    expect(logs.find((l) => l.msg === 'drained')).toMatchObject({ reason: 'no active connections', activeConnections: 0 });
  });

  it('a native sidecar’s preStop: weft-proxy drain (POST /drain on the status port) drains until the stop, which is then immediate', async () => {
    const logs: Record<string, unknown>[] = [];
    const p = await reviewsSidecar({ drainMs: 5000, exitOnZeroActiveConnections: false, telemetry: true, statusPort: 0 }, logs);
    const drainUrl = `http://${reviewsIp}:${p.telemetry!.statusPort!}/drain`;
    expect((await fetch(drainUrl)).status).toBe(405);
    expect(p.isReady()).toBe(true);
    const lines: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
    expect(await runDrainCommand(['--url', drainUrl], io)).toBe(0);
    expect(lines.join('')).toContain('weft-proxy drain: draining');
    expect(p.isReady()).toBe(false);
    // still serving, every answer asking the caller to close
    for (let i = 0; i < 3; i++) {
      const a = await get(reviewsIp, 9080, '/');
      expect(a).toMatchObject({ status: 200, body: 'reviews' });
      expect(a.headers.connection).toBe('close');
    }
    // the kubelet's SIGTERM comes once the application is gone: nothing left to wait for
    const started = performance.now();
    await p.close();
    expect(performance.now() - started).toBeLessThan(1500);
    expect(logs.find((l) => l.msg === 'draining')).toMatchObject({ reason: 'drain requested' });
    expect(logs.find((l) => l.msg === 'drained')).toMatchObject({ reason: 'drain requested earlier' });
    expect(await connectError(reviewsIp, 9080)).toBe('ECONNREFUSED');
    lines.length = 0;
    expect(await runDrainCommand(['--url', drainUrl], io)).toBe(1);
    expect(lines.join('')).toMatch(/weft-proxy drain: .*ECONNREFUSED/);
  });

  it('drainPeriod: the full period without exitOnZero; with it, at least the minimum, at most the period', async () => {
    const t = async (o: Parameters<typeof drainPeriod>[0]) => {
      const started = performance.now();
      const r = await drainPeriod(o);
      return { ...r, took: performance.now() - started };
    };
    expect(await t({ drainMs: 200, exitOnZeroActiveConnections: false, minDrainMs: 0, activeConnections: () => 0 })).toMatchObject({ reason: 'drain period over', took: expect.toSatisfy((n: number) => n >= 195) });
    expect(await t({ drainMs: 5000, exitOnZeroActiveConnections: true, minDrainMs: 150, activeConnections: () => 0 })).toMatchObject({ reason: 'no active connections', took: expect.toSatisfy((n: number) => n >= 145 && n < 1000) });
    expect(await t({ drainMs: 300, exitOnZeroActiveConnections: true, minDrainMs: 0, activeConnections: () => 2 })).toMatchObject({ reason: 'drain period over', activeConnections: 2, took: expect.toSatisfy((n: number) => n >= 295 && n < 1500) });
  });
});
