// The cluster manager against real backends on 127.0.0.1, configured by what pilot generates
// (ServiceEntries, WorkloadEntries and DestinationRules in, CDS/EDS out, through the Envoy protos)
// or by hand-built Envoy resources where pilot cannot express the case.
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import { UpstreamError } from '../core/types.ts';
import { createClusterManager, type WeftClusterManager } from './manager.ts';
import { assignment, type Backend, cluster, delay, get, h2Backend, httpBackend, pilotSnapshot, snapshot, text } from './test-support.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function backends(...names: string[]): Promise<Backend[]> {
  const out = await Promise.all(names.map((n) => httpBackend(n)));
  for (const b of out) cleanups.push(() => b.close());
  return out;
}

function manager(): WeftClusterManager {
  const cm = createClusterManager();
  cleanups.push(() => cm.close());
  return cm;
}

/** A ServiceEntry `svc.default.svc.cluster.local:80` whose WorkloadEntries are the backends (version label = backend name). */
function serviceYaml(bs: readonly Backend[], opts: { weights?: number[]; protocol?: string; tlsMode?: boolean } = {}): string {
  const entries = bs
    .map(
      (b, i) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${b.name}, namespace: default}
spec:
  address: 127.0.0.1
  ports: {web: ${b.port}}
  ${opts.weights ? `weight: ${opts.weights[i]}` : ''}
  labels: {app: svc, version: ${b.name}${opts.tlsMode ? ', security.istio.io/tlsMode: istio' : ''}}
`,
    )
    .join('');
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: default}
spec:
  hosts: [svc.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: web, protocol: ${opts.protocol ?? 'HTTP'}}]
  workloadSelector: {labels: {app: svc}}
${entries}`;
}

function destinationRule(trafficPolicy: string, subsets = ''): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: default}
spec:
  host: svc
  trafficPolicy:
${trafficPolicy
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
${subsets}`;
}

const svc = 'outbound|80||svc.default.svc.cluster.local';

async function spread(cm: WeftClusterManager, name: string, n: number, opts: Parameters<NonNullable<ReturnType<WeftClusterManager['get']>>['request']>[1] = {}) {
  const c = cm.get(name)!;
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await c.request(get(), opts);
    const body = await text(r);
    counts.set(body, (counts.get(body) ?? 0) + 1);
  }
  return counts;
}

describe('endpoints and load balancing from pilot output', () => {
  test('EDS endpoints of a ServiceEntry answer; /clusters lists them; auto-mTLS endpoints are reached in plaintext while no SDS secret exists', async () => {
    const bs = await backends('a', 'b');
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml(bs, { tlsMode: true })));
    const counts = await spread(cm, svc, 20);
    expect([...counts.keys()].sort()).toEqual(['a', 'b']);
    const status = cm.status().get(svc)!;
    expect(status.map((s) => s.port).sort()).toEqual(bs.map((b) => b.port).sort());
    expect(status.every((s) => s.healthy && !s.ejected && s.address === '127.0.0.1')).toBe(true);
    expect(status.reduce((n, s) => n + s.totalRequests, 0)).toBe(20);
  });

  test('weighted ROUND_ROBIN splits 3:1 within ±2%', async () => {
    const bs = await backends('heavy', 'light');
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml(bs, { weights: [3, 1] }) + destinationRule('loadBalancer: {simple: ROUND_ROBIN}')));
    const counts = await spread(cm, svc, 4000);
    expect(Math.abs(counts.get('heavy')! / 4000 - 0.75)).toBeLessThan(0.02);
  });

  test('weighted RANDOM splits 3:1 within ±2%', async () => {
    const bs = await backends('heavy', 'light');
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml(bs, { weights: [3, 1] }) + destinationRule('loadBalancer: {simple: RANDOM}')));
    const counts = await spread(cm, svc, 6000);
    expect(Math.abs(counts.get('heavy')! / 6000 - 0.75)).toBeLessThan(0.02);
  });

  test('LEAST_REQUEST (the default) splits an idle cluster evenly and steers load away from a slow endpoint', async () => {
    let slowMs = 0;
    const fast = await httpBackend('fast');
    const slow = await httpBackend('slow', (req, res) => {
      req.resume();
      setTimeout(() => res.end('slow'), slowMs);
    });
    cleanups.push(() => fast.close(), () => slow.close());
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml([fast, slow])));
    const idle = await spread(cm, svc, 4000);
    expect(Math.abs(idle.get('fast')! / 4000 - 0.5)).toBeLessThan(0.03);
    fast.count = 0;
    slow.count = 0;
    slowMs = 50;
    const c = cm.get(svc)!;
    // 10 concurrent clients for 300 requests: the slow endpoint holds its requests longer, so it gets fewer.
    let left = 300;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (left-- > 0) await text(await c.request(get(), {}));
      }),
    );
    // Power of two choices with two endpoints compares distinct ones half the time (as Envoy's, sampling with replacement).
    expect(fast.count / (fast.count + slow.count)).toBeGreaterThan(0.65);
  });

  test('consistent hash (RING_HASH) keeps a key on one endpoint, across snapshot updates and when another endpoint leaves', async () => {
    const bs = await backends('a', 'b', 'c', 'd');
    const cm = manager();
    const dr = destinationRule('loadBalancer: {consistentHash: {httpHeaderName: x-user}}');
    cm.update(pilotSnapshot(serviceYaml(bs) + dr));
    const c = cm.get(svc)!;
    const where = async (key: string) => text(await c.request(get(), { hashKey: key }));
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const before = new Map<string, string>();
    for (const k of keys) before.set(k, await where(k));
    for (const k of keys.slice(0, 20)) expect(await where(k)).toBe(before.get(k));
    expect(new Set(before.values()).size).toBe(4);
    // A new snapshot with the same endpoints (freshly decoded objects): nothing moves.
    cm.update(pilotSnapshot(serviceYaml(bs) + dr));
    for (const k of keys) expect(await where(k)).toBe(before.get(k));
    // `d` leaves: only its keys move.
    cm.update(pilotSnapshot(serviceYaml(bs.slice(0, 3)) + dr));
    let moved = 0;
    for (const k of keys) {
      const now = await where(k);
      if (before.get(k) === 'd') expect(now).not.toBe('d');
      else if (now !== before.get(k)) moved++;
    }
    expect(moved).toBe(0);
  });

  test('MAGLEV keeps keys sticky and moves few keys of the endpoints that stay', async () => {
    const bs = await backends('a', 'b', 'c', 'd');
    const cm = manager();
    const dr = destinationRule('loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}}');
    cm.update(pilotSnapshot(serviceYaml(bs) + dr));
    expect(cm.get(svc)).toBeDefined();
    const where = async (key: string) => text(await cm.get(svc)!.request(get(), { hashKey: key }));
    const keys = Array.from({ length: 400 }, (_, i) => `session-${i}`);
    const before = new Map<string, string>();
    for (const k of keys) before.set(k, await where(k));
    expect(new Set(before.values()).size).toBe(4);
    for (const k of keys.slice(0, 20)) expect(await where(k)).toBe(before.get(k));
    cm.update(pilotSnapshot(serviceYaml(bs.slice(0, 3)) + dr));
    let stayed = 0;
    let others = 0;
    for (const k of keys) {
      if (before.get(k) === 'd') continue;
      others++;
      if ((await where(k)) === before.get(k)) stayed++;
    }
    expect(stayed / others).toBeGreaterThan(0.9);
  });

  test('excludeEndpoints (retry previous_hosts) picks another endpoint when one exists, for every policy', async () => {
    const bs = await backends('a', 'b');
    for (const lb of ['{simple: ROUND_ROBIN}', '{simple: RANDOM}', '{simple: LEAST_REQUEST}', '{consistentHash: {httpHeaderName: x}}']) {
      const cm = manager();
      cm.update(pilotSnapshot(serviceYaml(bs) + destinationRule(`loadBalancer: ${lb}`)));
      const c = cm.get(svc)!;
      const first = await c.request(get(), { hashKey: 'k' });
      await text(first);
      for (let i = 0; i < 20; i++) {
        const r = await c.request(get(), { hashKey: 'k', excludeEndpoints: new Set([first.endpoint]) });
        expect(r.endpoint).not.toBe(first.endpoint);
        await text(r);
      }
    }
    // With one endpoint, the excluded one is still used.
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml(bs.slice(0, 1))));
    const only = `127.0.0.1:${bs[0]!.port}`;
    const r = await cm.get(svc)!.request(get(), { excludeEndpoints: new Set([only]) });
    expect(r.endpoint).toBe(only);
    await text(r);
  });
});

describe('special clusters', () => {
  test('PassthroughCluster connects to the original destination; without one it has no healthy upstream', async () => {
    const [b] = await backends('direct');
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml([b!])));
    const c = cm.get('PassthroughCluster')!;
    const r = await c.request(get(), { originalDestination: { address: '127.0.0.1', port: b!.port } });
    expect(await text(r)).toBe('direct');
    expect(r.endpoint).toBe(`127.0.0.1:${b!.port}`);
    await expect(c.request(get(), {})).rejects.toMatchObject({ flag: 'UH' });
    expect(cm.status().get('PassthroughCluster')!.map((s) => s.port)).toEqual([b!.port]);
  });

  test('BlackHoleCluster fails every request with UH', async () => {
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml([])));
    await expect(cm.get('BlackHoleCluster')!.request(get(), {})).rejects.toMatchObject({ flag: 'UH', message: 'no healthy upstream' });
    await expect(cm.get('BlackHoleCluster')!.connect({})).rejects.toMatchObject({ flag: 'UH' });
  });

  test('STRICT_DNS resolves localhost; LOGICAL_DNS connects to its first address', async () => {
    const [b] = await backends('dns');
    const cm = manager();
    const la = (name: string) => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'localhost', port_value: b!.port } } } }] }] });
    cm.update(
      snapshot([
        cluster({ name: 'strict', type: 'STRICT_DNS', dns_lookup_family: 'V4_ONLY', connect_timeout: { seconds: 1 }, load_assignment: la('strict') }),
        cluster({ name: 'logical', type: 'LOGICAL_DNS', dns_lookup_family: 'V4_ONLY', connect_timeout: { seconds: 1 }, load_assignment: la('logical') }),
      ]),
    );
    expect(await text(await cm.get('strict')!.request(get(), {}))).toBe('dns');
    expect(await text(await cm.get('logical')!.request(get(), {}))).toBe('dns');
    expect(cm.status().get('strict')!.map((s) => `${s.address}:${s.port}`)).toEqual([`127.0.0.1:${b!.port}`]);
  });

  test('DNS clusters re-resolve every dns_refresh_rate: new connections follow the address', async () => {
    const { createServer } = await import('node:http');
    const a = await httpBackend('first');
    cleanups.push(() => a.close());
    // The same port on another loopback address.
    const second = createServer((req, res) => {
      req.resume();
      res.end('second');
    });
    second.listen(a.port, '127.0.0.2');
    await once(second, 'listening');
    cleanups.push(() => {
      second.closeAllConnections();
      second.close();
    });
    let answer = ['127.0.0.1'];
    const cm = createClusterManager({ lookup: async (name) => (name === 'moving.example' ? answer : []) });
    cleanups.push(() => cm.close());
    const la = (name: string) => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'moving.example', port_value: a.port } } } }] }] });
    cm.update(
      snapshot([
        cluster({ name: 'strict', type: 'STRICT_DNS', dns_refresh_rate: { nanos: 50_000_000 }, load_assignment: la('strict') }),
        cluster({ name: 'logical', type: 'LOGICAL_DNS', dns_refresh_rate: { nanos: 50_000_000 }, load_assignment: la('logical') }),
      ]),
    );
    expect(await text(await cm.get('strict')!.request(get(), {}))).toBe('first');
    expect(await text(await cm.get('logical')!.request(get(), { timeoutMs: 1000 }))).toBe('first');
    answer = ['127.0.0.2'];
    await delay(150);
    expect(await text(await cm.get('strict')!.request(get(), {}))).toBe('second');
    expect(cm.status().get('strict')!.map((x) => x.address)).toEqual(['127.0.0.2']);
    // LOGICAL_DNS keeps its one host; a new connection goes to the new address.
    expect(cm.status().get('logical')!.map((x) => x.address)).toEqual(['127.0.0.2']);
  });

  test('EDS endpoints that are not HEALTHY or UNKNOWN take no traffic while enough others are healthy', async () => {
    const bs = await backends('up1', 'up2', 'down');
    const cm = manager();
    cm.update(
      snapshot(
        [cluster({ name: 'c', type: 'EDS', eds_cluster_config: { service_name: 'c', eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN' })],
        [assignment('c', [{ port: bs[0]!.port }, { port: bs[1]!.port }, { port: bs[2]!.port, health: 'UNHEALTHY' }])],
      ),
    );
    const counts = await spread(cm, 'c', 30);
    expect(counts.get('down')).toBeUndefined();
    expect(cm.status().get('c')!.find((x) => x.port === bs[2]!.port)).toMatchObject({ healthy: false, ejected: false });
  });

  test('an unreachable endpoint fails with UF (connection refused)', async () => {
    const [b] = await backends('gone');
    const port = b!.port;
    await b!.close();
    cleanups.pop();
    const cm = manager();
    cm.update(snapshot([cluster({ name: 'c', type: 'EDS', eds_cluster_config: { service_name: 'c', eds_config: { ads: {} } } })], [assignment('c', [{ port }])]));
    await expect(cm.get('c')!.request(get(), {})).rejects.toMatchObject({ flag: 'UF', endpoint: `127.0.0.1:${port}` });
    expect(cm.stats().get('c')!.upstream_cx_connect_fail).toBe(1);
  });

  test('HTTP2 ports speak h2c with prior knowledge and pass trailers', async () => {
    const b = await h2Backend('grpc');
    cleanups.push(() => b.close());
    const cm = manager();
    const yaml = serviceYaml([{ ...b, name: 'grpc' }], { protocol: 'GRPC' });
    cm.update(pilotSnapshot(yaml));
    const c = cm.get(svc)!;
    const rs = await Promise.all(Array.from({ length: 10 }, () => c.request({ method: 'POST', path: '/pkg.Svc/Call', authority: 'svc:80', headers: { te: 'trailers', 'content-type': 'application/grpc' }, body: Buffer.from('x') }, {})));
    for (const r of rs) {
      expect(r.status).toBe(200);
      expect(r.headers['x-authority']).toBe('svc:80');
      expect(await text(r)).toBe('grpc HTTP/2');
      expect(r.trailers?.()).toEqual({ 'grpc-status': '0' });
    }
    // Ten concurrent requests, one connection.
    expect(b.connections).toBe(1);
  });
});

test('a streamed request body goes upstream as it is written (HTTP/1.1 chunked and HTTP/2)', async () => {
  const echoBody = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    res.setHeader('x-te', String(req.headers['transfer-encoding'] ?? ''));
    req.pipe(res);
  };
  const h1 = await httpBackend('h1', echoBody);
  cleanups.push(() => h1.close());
  const cm = manager();
  cm.update(snapshot([cluster({ name: 'c', type: 'STATIC', load_assignment: assignment('c', [{ port: h1.port }]) })]));
  const { PassThrough } = await import('node:stream');
  const body = new PassThrough();
  const pending = cm.get('c')!.request({ method: 'POST', path: '/', authority: 't', headers: {}, bodyStream: body }, {});
  body.write('one ');
  await delay(20);
  body.end('two');
  const r = await pending;
  expect(r.headers['x-te']).toBe('chunked');
  expect(await text(r)).toBe('one two');

  // HTTP/2: the response streams back while the request is still open (as a bidirectional gRPC call).
  const { createServer } = await import('node:http2');
  const h2 = createServer((req, res) => req.pipe(res));
  h2.listen(0, '127.0.0.1');
  await once(h2, 'listening');
  cleanups.push(() => {
    h2.close();
  });
  const port = (h2.address() as import('node:net').AddressInfo).port;
  cm.update(
    snapshot([
      cluster({ name: 'c', type: 'STATIC', load_assignment: assignment('c', [{ port: h1.port }]) }),
      cluster({ name: 'g', type: 'STATIC', http2_protocol_options: {}, load_assignment: assignment('g', [{ port }]) }),
    ]),
  );
  const stream = new PassThrough();
  const calling = cm.get('g')!.request({ method: 'POST', path: '/svc/Chat', authority: 'g', headers: { te: 'trailers' }, bodyStream: stream }, {});
  stream.write('ping');
  const call = await calling;
  const [first] = await once(call.body, 'data');
  expect(String(first)).toBe('ping');
  stream.end('pong');
  expect(await text(call)).toBe('pong');
  await new Promise<void>((resolve) => h2.close(() => resolve()));
});

describe('timeouts and aborts', () => {
  test('a per-attempt timeout fails with UT; an aborted request with DC', async () => {
    const [b] = await backends('slow');
    (b!.server as import('node:http').Server).removeAllListeners('request');
    (b!.server as import('node:http').Server).on('request', (req, res) => {
      req.resume();
      setTimeout(() => res.end('late'), 300);
    });
    const cm = manager();
    cm.update(snapshot([cluster({ name: 'c', type: 'EDS', eds_cluster_config: { service_name: 'c', eds_config: { ads: {} } } })], [assignment('c', [{ port: b!.port }])]));
    const c = cm.get('c')!;
    const t0 = performance.now();
    await expect(c.request(get(), { timeoutMs: 50 })).rejects.toMatchObject({ flag: 'UT' });
    expect(performance.now() - t0).toBeLessThan(500);
    const ac = new AbortController();
    const p = c.request(get(), { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(UpstreamError);
    await expect(p).rejects.toMatchObject({ flag: 'DC' });
    const s = cm.stats().get('c')!;
    expect(s.upstream_rq_active).toBe(0);
  });
});

test('the plain node http client sees the same backend (sanity of the test backends)', async () => {
  const [b] = await backends('x');
  const body = await new Promise<string>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: b!.port, path: '/' }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(s));
    })
      .on('error', reject)
      .end();
  });
  expect(body).toBe('x');
  await delay(1);
});
