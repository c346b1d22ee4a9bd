// Routing and resilience through real processes: weftd with BookInfo-like ServiceEntries and
// WorkloadEntries, echo backends, a sidecar for the "app" (this test), a sidecar fronting one
// backend, and two ingress gateways. Every request is real HTTP through the sidecar's outbound
// port (local mode); the assertions are what a user sees.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { request } from 'undici';
import { needs } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry, subsets, virtualService, type Workload, workloadEntry } from './config.ts';
import { App, type Backend, freePort, type ProxyProcess, startBackend, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const run = promisify(execFile);

const ip = {
  productpage: '127.10.1.1',
  ingress: '127.10.1.100',
  otherIngress: '127.10.1.101',
  reviews: { v1: '127.10.1.11', v2: '127.10.1.12', v3: '127.10.1.13' },
  ratings: '127.10.1.21',
  flaky: '127.10.1.31',
  outlierGood: '127.10.1.41',
  outlierBad: '127.10.1.42',
  tcp: '127.10.1.51',
  details: '127.10.1.61',
};

let dir: string;
let weftd: Weftd;
const backends: Backend[] = [];
const proxies: ProxyProcess[] = [];
let productpage: ProxyProcess;
let detailsSidecar: ProxyProcess;
let ingress: ProxyProcess;
let otherIngress: ProxyProcess;
let app: App;
let gatewayPort: number;
let gatewayTlsPort: number;
let otherGatewayPort: number;
let caCert: Buffer;

// The gateway's HTTPS certificate is made with openssl, as Istio's docs do; without openssl the
// HTTPS server and its test are left out, saying how to install it.
const noOpenssl = needs({ tools: ['openssl'] }) !== undefined;

async function makeCertificate(certDir: string): Promise<void> {
  await mkdir(certDir, { recursive: true });
  const subj = ['-subj', '/CN=bookinfo.example.com', '-addext', 'subjectAltName=DNS:bookinfo.example.com'];
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', joinPath(certDir, 'bookinfo-cert.key'), '-out', joinPath(certDir, 'bookinfo-cert.crt'), ...subj]);
  const { readFile } = await import('node:fs/promises');
  caCert = await readFile(joinPath(certDir, 'bookinfo-cert.crt'));
}

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-proxy-'));
  const configDir = joinPath(dir, 'config');
  await mkdir(configDir);
  const certDir = joinPath(dir, 'credentials');
  const [started] = await Promise.all([
    Promise.all([
      startBackend('reviews', 'v1', ip.reviews.v1),
      startBackend('reviews', 'v2', ip.reviews.v2),
      startBackend('reviews', 'v3', ip.reviews.v3),
      startBackend('ratings', 'v1', ip.ratings),
      startBackend('flaky', 'v1', ip.flaky),
      startBackend('outlier', 'good', ip.outlierGood),
      startBackend('outlier', 'bad', ip.outlierBad),
      startBackend('tcp-echo', 'v1', ip.tcp, { tcp: true }),
      startBackend('details', 'v1', ip.details),
    ]),
    noOpenssl ? mkdir(certDir, { recursive: true }) : makeCertificate(certDir),
  ]);
  backends.push(...started);
  const [r1, r2, r3, ratings, flaky, good, bad, tcp, details] = started as [Backend, Backend, Backend, Backend, Backend, Backend, Backend, Backend, Backend];
  gatewayPort = await freePort(ip.ingress);
  gatewayTlsPort = await freePort(ip.ingress);
  otherGatewayPort = await freePort(ip.otherIngress);

  const we = (b: Backend, app: string, version = b.version, port = b.port): Workload => ({ name: `${app}-${version}`, app, version, address: b.address, port });
  const reviewsHosts = ['reviews', 'reviews-header', 'reviews-regex', 'reviews-weighted', 'reviews-timeout', 'reviews-breaker', 'reviews-misc'];
  const ratingsHosts = ['ratings', 'ratings-delay', 'ratings-abort'];
  const noRetries = 'retries: {attempts: 0}\n';
  const yaml = join(
    ...reviewsHosts.map((h) => serviceEntry(h, 'reviews')),
    ...ratingsHosts.map((h) => serviceEntry(h, 'ratings')),
    serviceEntry('flaky', 'flaky'),
    serviceEntry('flaky-noretry', 'flaky'),
    serviceEntry('outlier', 'outlier'),
    serviceEntry('tcp-echo', 'tcp-echo', 9000, 'TCP'),
    serviceEntry('details', 'details'),
    workloadEntry(we(r1, 'reviews')),
    workloadEntry(we(r2, 'reviews')),
    workloadEntry(we(r3, 'reviews')),
    workloadEntry(we(ratings, 'ratings')),
    workloadEntry(we(flaky, 'flaky')),
    workloadEntry(we(good, 'outlier')),
    workloadEntry(we(bad, 'outlier')),
    workloadEntry(we(tcp, 'tcp-echo'), 'tcp'),
    // details is fronted by its sidecar: the mesh reaches it on 9080, the app listens elsewhere.
    workloadEntry({ name: 'details-v1', app: 'details', version: 'v1', address: ip.details, port: 9080 }),
    ...['reviews', 'reviews-header', 'reviews-regex', 'reviews-weighted', 'reviews-timeout'].map((h) => subsets(h, ['v1', 'v2', 'v3'])),
    subsets('reviews-breaker', ['v1'], 'connectionPool:\n  tcp: {maxConnections: 1}\n  http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}'),
    subsets('outlier', ['good', 'bad'], 'outlierDetection:\n  consecutive5xxErrors: 1\n  interval: 1s\n  baseEjectionTime: 30s\n  maxEjectionPercent: 100'),
    virtualService('reviews', ['reviews'], '- route:\n  - destination: {host: reviews, subset: v1}'),
    virtualService(
      'reviews-header',
      ['reviews-header'],
      '- match:\n  - headers:\n      end-user: {exact: jason}\n  route:\n  - destination: {host: reviews-header, subset: v2}\n- route:\n  - destination: {host: reviews-header, subset: v1}',
    ),
    // RE2 that JavaScript reads differently or not at all: (?i) mid-pattern, \pL, a negated POSIX
    // class; and a pattern a backtracking engine never finishes on a long non-matching header.
    virtualService(
      'reviews-regex',
      ['reviews-regex'],
      '- match:\n  - headers:\n      x-user: {regex: "(a+)+$"}\n  route:\n  - destination: {host: reviews-regex, subset: v3}\n' +
        '- match:\n  - uri: {regex: "/api(?i)/users/\\\\pL+"}\n    headers:\n      x-team: {regex: "[[:^digit:]]+"}\n  route:\n  - destination: {host: reviews-regex, subset: v2}\n' +
        '- route:\n  - destination: {host: reviews-regex, subset: v1}',
    ),
    virtualService(
      'reviews-weighted',
      ['reviews-weighted'],
      '- route:\n  - destination: {host: reviews-weighted, subset: v1}\n    weight: 90\n  - destination: {host: reviews-weighted, subset: v3}\n    weight: 10',
    ),
    virtualService('reviews-timeout', ['reviews-timeout'], `- timeout: 0.3s\n  ${noRetries}  route:\n  - destination: {host: reviews-timeout, subset: v1}`),
    virtualService('reviews-breaker', ['reviews-breaker'], `- ${noRetries}  route:\n  - destination: {host: reviews-breaker, subset: v1}`),
    virtualService(
      'reviews-misc',
      ['reviews-misc'],
      '- match:\n  - uri: {prefix: /old}\n  redirect: {uri: /new, authority: new.example.com}\n- match:\n  - uri: {prefix: /maintenance}\n  directResponse:\n    status: 503\n    body: {string: down for maintenance}\n- route:\n  - destination: {host: reviews-misc}',
    ),
    virtualService('ratings-delay', ['ratings-delay'], '- fault:\n    delay:\n      percentage: {value: 100}\n      fixedDelay: 400ms\n  route:\n  - destination: {host: ratings-delay}'),
    virtualService('ratings-abort', ['ratings-abort'], '- fault:\n    abort:\n      percentage: {value: 100}\n      httpStatus: 418\n  route:\n  - destination: {host: ratings-abort}'),
    virtualService('flaky', ['flaky'], '- retries:\n    attempts: 3\n    perTryTimeout: 2s\n    retryOn: 5xx\n  route:\n  - destination: {host: flaky}'),
    virtualService('flaky-noretry', ['flaky-noretry'], `- ${noRetries}  route:\n  - destination: {host: flaky-noretry}`),
    virtualService('outlier', ['outlier'], `- ${noRetries}  route:\n  - destination: {host: outlier}`),
    // Gateways: two ingress deployments, each selected by its labels.
    `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
  namespace: default
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${gatewayPort}, name: http, protocol: HTTP}
    hosts: [bookinfo.example.com, ratings.example.com]${
      noOpenssl
        ? ''
        : `
  - port: {number: ${gatewayTlsPort}, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}`
    }`,
    `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: other-gateway
  namespace: default
spec:
  selector: {istio: other-ingress}
  servers:
  - port: {number: ${otherGatewayPort}, name: http, protocol: HTTP}
    hosts: [reviews.example.com]`,
    virtualService('bookinfo', ['bookinfo.example.com'], '- route:\n  - destination: {host: reviews, subset: v2, port: {number: 9080}}', '  gateways: [bookinfo-gateway]\n'),
    virtualService('ratings-gateway', ['ratings.example.com'], '- route:\n  - destination: {host: ratings, port: {number: 9080}}', '  gateways: [bookinfo-gateway]\n'),
    virtualService('other', ['reviews.example.com'], '- route:\n  - destination: {host: reviews, subset: v3, port: {number: 9080}}', '  gateways: [other-gateway]\n'),
  );
  await writeConfig(configDir, 'mesh.yaml', yaml);

  weftd = await startWeftd(configDir);
  [productpage, detailsSidecar, ingress, otherIngress] = await Promise.all([
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.productpage, pod: 'productpage-v1-1', labels: 'app=productpage,version=v1' }),
    startProxy({
      xdsPort: weftd.xdsPort,
      ip: ip.details,
      pod: 'details-v1-1',
      labels: 'app=details,version=v1',
      extra: ['--app-address', ip.details, '--app-ports', `9080=${details.port}`],
    }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.ingress, pod: 'istio-ingressgateway-1', labels: 'istio=ingressgateway', ingress: true, extra: ['--credential-dir', certDir] }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.otherIngress, pod: 'other-ingress-1', labels: 'istio=other-ingress', ingress: true }),
  ]);
  proxies.push(productpage, detailsSidecar, ingress, otherIngress);
  app = new App(ip.productpage);
});

afterAll(async () => {
  await app?.close();
  await Promise.all(proxies.map((p) => p.proc.stop()));
  await Promise.all(backends.map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function many(n: number, send: (i: number) => Promise<{ status: number; echo?: { version: string } | undefined }>, concurrency = 20) {
  const out: { status: number; version: string | undefined }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const r = await send(i);
        out.push({ status: r.status, version: r.echo?.version });
      }
    }),
  );
  return out;
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

describe('routing through the sidecar', () => {
  it('sends every request to v1 when the VirtualService says so', async () => {
    const replies = await many(30, () => app.get('reviews:9080', '/reviews/1'));
    expect(countBy(replies, (r) => `${r.status} ${r.version}`)).toEqual({ '200 v1': 30 });
    const r = await app.get('reviews:9080', '/reviews/1');
    expect(r.echo?.name).toBe('reviews');
    // The backend saw the request as the app sent it, with the proxy's request id.
    expect(r.echo?.authority).toBe('reviews:9080');
    expect(r.echo?.path).toBe('/reviews/1');
    expect(r.echo?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('routes end-user: jason to v2 and everyone else to v1', async () => {
    const jason = await many(10, () => app.get('reviews-header:9080', '/', { 'end-user': 'jason' }));
    expect(countBy(jason, (r) => `${r.status} ${r.version}`)).toEqual({ '200 v2': 10 });
    const others = await many(10, () => app.get('reviews-header:9080', '/', { 'end-user': 'alice' }));
    expect(countBy(others, (r) => `${r.status} ${r.version}`)).toEqual({ '200 v1': 10 });
  });

  it('matches regexes with RE2 as Envoy does, and a hostile header costs linear time', async () => {
    const v = async (path: string, headers: Record<string, string>) => {
      const r = await app.get('reviews-regex:9080', path, headers);
      return `${r.status} ${r.echo?.version}`;
    };
    expect(await v('/api/USERS/jason', { 'x-team': 'blue' })).toBe('200 v2');
    expect(await v('/API/users/jason', { 'x-team': 'blue' })).toBe('200 v1');
    expect(await v('/api/users/j4son', { 'x-team': 'blue' })).toBe('200 v1');
    expect(await v('/api/users/jason', { 'x-team': 'blue7' })).toBe('200 v1');
    // 8,000 a's and a `!`: JavaScript's RegExp would explore 2^8000 ways to split them.
    expect(await v('/', { 'x-user': `${'a'.repeat(8000)}!` })).toBe('200 v1');
    expect(await v('/', { 'x-user': 'a'.repeat(8000) })).toBe('200 v3');
  });

  it('splits 90/10 by weight over 1,000 requests', async () => {
    const replies = await many(1000, () => app.get('reviews-weighted:9080', '/'), 50);
    const counts = countBy(replies, (r) => `${r.status} ${r.version}`);
    expect(Object.keys(counts).sort()).toEqual(['200 v1', '200 v3']);
    expect(counts['200 v3']).toBeGreaterThanOrEqual(50);
    expect(counts['200 v3']).toBeLessThanOrEqual(150);
  });

  it('reaches services by name through HTTP/2 with prior knowledge (h2c)', async () => {
    const session = http2Connect(`http://${ip.productpage}:15001`);
    try {
      const body = await new Promise<{ status: number; json: { version: string; name: string } }>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/h2', ':authority': 'reviews:9080' });
        let status = 0;
        let data = '';
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('data', (d: Buffer) => {
          data += d.toString();
        });
        req.on('end', () => resolve({ status, json: JSON.parse(data) as { version: string; name: string } }));
        req.on('error', reject);
        req.end();
      });
      expect(body.status).toBe(200);
      expect(body.json).toMatchObject({ name: 'reviews', version: 'v1' });
    } finally {
      session.close();
    }
  });

  it('serves apps that use HTTP_PROXY (absolute-form and CONNECT) with no code changes', async () => {
    const script = `
      const http = require('node:http');
      const viaHttp = new Promise((resolve, reject) => http.get('http://reviews-header:9080/by-name', { headers: { 'end-user': 'jason' } }, (res) => {
        let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(res.statusCode + ' ' + JSON.parse(b).version));
      }).on('error', reject));
      viaHttp.then(async (a) => {
        const r = await fetch('http://reviews:9080/by-fetch');
        console.log(JSON.stringify([a, r.status + ' ' + (await r.json()).version]));
      });`;
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
    const { stdout } = await run(process.execPath, ['-e', script], { env: { ...env, NODE_USE_ENV_PROXY: '1', HTTP_PROXY: `http://${ip.productpage}:15001` } });
    expect(JSON.parse(stdout)).toEqual(['200 v2', '200 v1']);
  });

  it('carries opaque TCP to a TCP service (CONNECT by name)', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: ip.productpage, port: 15001, method: 'CONNECT', path: 'tcp-echo:9000' });
      // Bytes that arrive with the 200 (the backend's greeting, often) come as `head`.
      req.on('connect', (res, socket, head: Buffer) => {
        expect(res.statusCode).toBe(200);
        let data = head.toString();
        socket.on('data', (d: Buffer) => {
          data += d.toString();
          if (data.includes('ping')) {
            socket.end();
            resolve(data);
          }
        });
        socket.write('ping');
      });
      req.on('error', reject);
      req.end();
    });
    expect(got).toBe('tcp-echo:\nping');
  });

  it('answers redirects and direct responses without calling the backend', async () => {
    const redirect = await app.get('reviews-misc:9080', '/old/page');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('http://new.example.com/new');
    const direct = await app.get('reviews-misc:9080', '/maintenance');
    expect(direct.status).toBe(503);
    expect(direct.text).toBe('down for maintenance');
    expect(direct.echo).toBeUndefined();
    expect((await app.get('reviews-misc:9080', '/ok')).status).toBe(200);
  });

  it('passes through the sidecar fronting a backend (inbound), in both hops', async () => {
    const before = await detailsSidecar.admin('/stats?filter=virtualInbound');
    const r = await app.get('details:9080', '/details/1');
    expect(r.status).toBe(200);
    expect(r.echo?.name).toBe('details');
    const after = await detailsSidecar.admin('/stats?filter=virtualInbound');
    const count = (t: string) => Number(/listener\.virtualInbound\.http\.downstream_rq_total: (\d+)/.exec(t)?.[1] ?? 0);
    expect(count(after.text)).toBe(count(before.text) + 1);
  });
});

describe('resilience', () => {
  it('injects a fixed delay', async () => {
    const r = await app.get('ratings-delay:9080', '/');
    expect(r.status).toBe(200);
    expect(r.echo?.name).toBe('ratings');
    expect(r.ms).toBeGreaterThanOrEqual(400);
    expect(r.ms).toBeLessThan(1500);
  });

  it('aborts with the configured status and never calls the backend', async () => {
    const r = await app.get('ratings-abort:9080', '/');
    expect(r.status).toBe(418);
    expect(r.text).toBe('fault filter abort');
    expect(r.echo).toBeUndefined();
  });

  it('retries 5xx answers up to the configured attempts', async () => {
    const r = await app.get('flaky:9080', '/?fail=2');
    expect(r.status).toBe(200);
    expect(r.headers['x-echo-attempt']).toBe('3');
    const noRetry = await app.get('flaky-noretry:9080', '/?fail=1');
    expect(noRetry.status).toBe(503);
    expect(noRetry.headers['x-echo-attempt']).toBe('1');
  });

  it('times a slow backend out with 504 after the route timeout', async () => {
    const r = await app.get('reviews-timeout:9080', '/?delay=2000');
    expect(r.status).toBe(504);
    expect(r.text).toBe('upstream request timeout');
    expect(r.ms).toBeGreaterThanOrEqual(280);
    expect(r.ms).toBeLessThan(1500);
  });

  it('trips the circuit breaker: overflow answers 503 with response flag UO', async () => {
    const replies = await Promise.all(Array.from({ length: 12 }, () => app.get('reviews-breaker:9080', '/?delay=300')));
    const statuses = countBy(replies, (r) => String(r.status));
    expect(statuses['200']).toBeGreaterThanOrEqual(1);
    expect(statuses['503']).toBeGreaterThanOrEqual(1);
    const overflow = replies.find((r) => r.status === 503)!;
    expect(overflow.text).toMatch(/overflow/);
    expect(overflow.echo).toBeUndefined();
    const stats = await productpage.admin('/stats?filter=response_flag.UO');
    expect(stats.text).toMatch(/response_flag\.UO: [1-9]/);
  });

  it('ejects an endpoint that keeps failing and sends everything to the healthy one', async () => {
    const bad = backends.find((b) => b.version === 'bad')!;
    await fetch(`http://${bad.address}:${bad.port}/control?status=503`, { method: 'POST' });
    const replies: { status: number; version: string | undefined }[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await app.get('outlier:9080', '/');
      replies.push({ status: r.status, version: r.echo?.version });
    }
    // At most the first failures reach the bad endpoint; then it is ejected.
    expect(replies.filter((r) => r.status === 503).length).toBeLessThanOrEqual(2);
    expect(replies.slice(-10).every((r) => r.status === 200 && r.version === 'good')).toBe(true);
    const clusters = await productpage.admin('/clusters');
    expect(clusters.text).toContain(`outbound|9080||outlier.default.svc.cluster.local::${bad.address}:${bad.port}::health_flags::/failed_outlier_check`);
  });
});

describe('ingress gateways', () => {
  // undici's request, not fetch: fetch does not let a caller set Host.
  const viaGateway = (address: string, port: number, host: string) =>
    request(`http://${address}:${port}/productpage`, { headers: { host } }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));

  it('routes by host on the gateway its labels select', async () => {
    const bookinfo = await viaGateway(ip.ingress, gatewayPort, 'bookinfo.example.com');
    expect(bookinfo.status).toBe(200);
    expect(JSON.parse(bookinfo.body)).toMatchObject({ name: 'reviews', version: 'v2' });
    const ratings = await viaGateway(ip.ingress, gatewayPort, 'ratings.example.com');
    expect(JSON.parse(ratings.body)).toMatchObject({ name: 'ratings' });
    // A host no server of this gateway lists: 404.
    expect((await viaGateway(ip.ingress, gatewayPort, 'reviews.example.com')).status).toBe(404);
    // The other gateway (other labels) serves its own host on its own port, and nothing else.
    const other = await viaGateway(ip.otherIngress, otherGatewayPort, 'reviews.example.com');
    expect(JSON.parse(other.body)).toMatchObject({ name: 'reviews', version: 'v3' });
    await expect(viaGateway(ip.otherIngress, gatewayPort, 'bookinfo.example.com')).rejects.toThrow();
  });

  it.skipIf(noOpenssl)('terminates HTTPS (SIMPLE) with the credential named by the Gateway', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: ip.ingress, port: gatewayTlsPort, servername: 'bookinfo.example.com', ca: caCert, ALPNProtocols: ['http/1.1'] }, () => {
        socket.write('GET /secure HTTP/1.1\r\nhost: bookinfo.example.com\r\nconnection: close\r\n\r\n');
      });
      let data = '';
      socket.on('data', (d: Buffer) => {
        data += d.toString();
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toContain('"version":"v2"');
    expect(reply).toContain('"x-forwarded-proto":"https"');
  });
});

describe('admin', () => {
  it('dumps the active config, lists clusters and answers readiness', async () => {
    const dump = JSON.parse((await productpage.admin('/config_dump')).text) as { configs: Record<string, unknown>[] };
    const types = dump.configs.map((c) => c['@type']);
    expect(types).toContain('type.googleapis.com/envoy.admin.v3.ListenersConfigDump');
    const listeners = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump') as { dynamic_listeners: { name: string }[]; version_info: string };
    expect(listeners.dynamic_listeners.map((l) => l.name)).toEqual(expect.arrayContaining(['virtualOutbound', 'virtualInbound', '0.0.0.0_9080']));
    expect(listeners.version_info).not.toBe('');
    expect((await productpage.admin('/ready')).status).toBe(200);
    const health = await fetch(`http://${ip.productpage}:${productpage.healthPort}/healthz/ready`);
    expect(health.status).toBe(200);
    const clusters = await productpage.admin('/clusters');
    expect(clusters.text).toContain(`outbound|9080|v1|reviews.default.svc.cluster.local::${ip.reviews.v1}:`);
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const p = await startProxy({ xdsPort: weftd.xdsPort, ip: '127.10.1.200', pod: 'short-lived', labels: 'app=short' });
    const code = await p.proc.stop('SIGTERM');
    expect(code).toBe(0);
    expect(p.proc.lines.some((l) => l.msg === 'proxy stopped')).toBe(true);
  });
});

