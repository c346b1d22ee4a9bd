// Circuit breakers, outlier detection, connection limits and keep-alive behaviour against real
// backends on 127.0.0.1.
import { once } from 'node:events';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { Cluster } from '@weft/xds';
import { createClusterManager, type WeftClusterManager } from './manager.ts';
import { assignment, type Backend, cluster, delay, get, httpBackend, pilotSnapshot, snapshot, text } from './test-support.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function manager(): WeftClusterManager {
  const cm = createClusterManager();
  cleanups.push(() => cm.close());
  return cm;
}

async function backend(name: string, handler?: Parameters<typeof httpBackend>[1]): Promise<Backend> {
  const b = await httpBackend(name, handler);
  cleanups.push(() => b.close());
  return b;
}

/** A backend that answers after `ms`. */
const slowly = (ms: number) => ((req, res, b) => {
  req.resume();
  setTimeout(() => res.end(b.name), ms);
}) as Parameters<typeof httpBackend>[1];

const eds = (name: string, extra: Partial<Cluster> = {}) =>
  cluster({ name, type: 'EDS', eds_cluster_config: { service_name: name, eds_config: { ads: {} } }, connect_timeout: { seconds: 1 }, ...extra });

function serviceYaml(bs: readonly { name: string; port: number }[], dr = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: default}
spec:
  hosts: [svc.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: web, protocol: HTTP}]
  workloadSelector: {labels: {app: svc}}
${bs
  .map(
    (b) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${b.name}, namespace: default}
spec: {address: 127.0.0.1, ports: {web: ${b.port}}, labels: {app: svc, version: ${b.name}}}
`,
  )
  .join('')}${
  dr
    ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: default}
spec:
  host: svc
  trafficPolicy: ${dr}
`
    : ''
}`;
}

const svc = 'outbound|80||svc.default.svc.cluster.local';

describe('circuit breakers', () => {
  test('max_connections 1, max_pending_requests 0: a second concurrent request overflows with UO while the first holds the connection', async () => {
    const b = await backend('one', slowly(100));
    const cm = manager();
    cm.update(
      snapshot(
        [eds('c', { circuit_breakers: { thresholds: [{ max_connections: { value: 1 }, max_pending_requests: { value: 0 } }] } })],
        [assignment('c', [{ port: b.port }])],
      ),
    );
    const c = cm.get('c')!;
    const first = c.request(get(), {});
    await expect(c.request(get(), {})).rejects.toMatchObject({ flag: 'UO' });
    expect(await text(await first)).toBe('one');
    // The limit no longer holds: the next request goes through, on the same connection.
    expect(await text(await c.request(get(), {}))).toBe('one');
    expect(b.connections).toBe(1);
    expect(cm.stats().get('c')!.upstream_rq_pending_overflow).toBe(1);
  });

  test('a DestinationRule with maxConnections 1 and http1MaxPendingRequests 1 queues one request and rejects the next', async () => {
    const b = await backend('one', slowly(80));
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml([b], '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}')));
    const c = cm.get(svc)!;
    const results = await Promise.allSettled([c.request(get(), {}), c.request(get(), {}), c.request(get(), {})]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ flag: 'UO' });
    for (const r of results) if (r.status === 'fulfilled') expect(await text(r.value)).toBe('one');
    // The queued request waited for the one connection.
    expect(b.connections).toBe(1);
  });

  test('max_requests caps requests in flight (UO)', async () => {
    const b = await backend('one', slowly(50));
    const cm = manager();
    cm.update(snapshot([eds('c', { circuit_breakers: { thresholds: [{ max_requests: { value: 2 } }] } })], [assignment('c', [{ port: b.port }])]));
    const c = cm.get('c')!;
    const results = await Promise.allSettled([c.request(get(), {}), c.request(get(), {}), c.request(get(), {})]);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.flag)).toEqual(['UO']);
    for (const r of results) if (r.status === 'fulfilled') await text(r.value);
  });

  test('max_retries: the retry budget is taken and given back', async () => {
    const cm = manager();
    cm.update(snapshot([eds('c', { circuit_breakers: { thresholds: [{ max_retries: { value: 1 } }] } })]));
    const c = cm.get('c')!;
    const release = c.acquireRetry!();
    expect(release).toBeTypeOf('function');
    expect(c.acquireRetry!()).toBeUndefined();
    release!();
    release!();
    const again = c.acquireRetry!();
    expect(again).toBeTypeOf('function');
    expect(c.acquireRetry!()).toBeUndefined();
    expect(cm.stats().get('c')!.upstream_rq_retry_overflow).toBe(2);
  });

  test('maxRequestsPerConnection closes a connection after that many requests; idleTimeout closes idle ones', async () => {
    const b = await backend('one');
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml([b], '{connectionPool: {http: {maxRequestsPerConnection: 2, idleTimeout: 100ms}}}')));
    const c = cm.get(svc)!;
    for (let i = 0; i < 6; i++) expect(await text(await c.request(get(), {}))).toBe('one');
    expect(b.connections).toBe(3);
    b.connections = 0;
    await text(await c.request(get(), {}));
    await delay(250);
    await text(await c.request(get(), {}));
    expect(b.connections).toBe(2);
  });
});

describe('keep-alive', () => {
  /**
   * An HTTP/1.1 keep-alive server that closes connections idle for 50 ms and, to reproduce the
   * race where its close crosses the client's next request, sometimes drops a reused connection
   * the moment a request arrives on it (before answering).
   */
  async function idleClosingServer(dropChance: number) {
    const state = { port: 0, drops: 0, idleCloses: 0, served: 0, connections: 0, sockets: new Set<Socket>() };
    const server = createNetServer((socket) => {
      state.connections++;
      state.sockets.add(socket);
      socket.on('close', () => state.sockets.delete(socket));
      socket.on('error', () => {});
      let buf = '';
      let served = 0;
      let idle: NodeJS.Timeout | undefined;
      socket.on('data', (d) => {
        buf += d.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          const head = buf.slice(0, end);
          const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length < end + 4 + length) return;
          buf = buf.slice(end + 4 + length);
          clearTimeout(idle);
          // The idle close already went out: this request can never be answered (the client replays it).
          if (socket.writableEnded) return;
          if (served > 0 && Math.random() < dropChance) {
            state.drops++;
            socket.destroy();
            return;
          }
          served++;
          state.served++;
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok`);
          idle = setTimeout(() => {
            state.idleCloses++;
            socket.end();
          }, 50);
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    state.port = (server.address() as AddressInfo).port;
    cleanups.push(async () => {
      for (const s of state.sockets) s.destroy();
      server.close();
      await once(server, 'close');
    });
    return state;
  }

  test('1,000 sequential requests while the backend closes idle keep-alive connections: zero failures', async () => {
    const srv = await idleClosingServer(0.1);
    const cm = manager();
    cm.update(snapshot([eds('c')], [assignment('c', [{ port: srv.port }])]));
    const c = cm.get('c')!;
    let failures = 0;
    for (let i = 0; i < 1000; i++) {
      // Now and then wait past the backend's idle timeout, so it really closes the connection.
      if (i % 25 === 24) await delay(55);
      try {
        const r = await c.request(i % 2 ? get('/x') : { method: 'PUT', path: '/x', authority: 't', headers: {}, body: Buffer.from('data') }, {});
        if ((await text(r)) !== 'ok') failures++;
      } catch {
        failures++;
      }
    }
    expect(failures).toBe(0);
    expect(srv.served).toBe(1000);
    // Both ways of losing a connection happened, and every drop was replayed on a fresh connection
    // (so was any request that met a real idle close in flight).
    expect(srv.drops).toBeGreaterThan(20);
    expect(srv.idleCloses).toBeGreaterThan(20);
    expect(cm.stats().get('c')!.upstream_rq_stale_connection_retry).toBeGreaterThanOrEqual(srv.drops);
  });

  test('a non-idempotent request (POST) on a dropped connection is not replayed: it fails with UC', async () => {
    const srv = await idleClosingServer(1);
    const cm = manager();
    cm.update(snapshot([eds('c')], [assignment('c', [{ port: srv.port }])]));
    const c = cm.get('c')!;
    await text(await c.request(get(), {}));
    await expect(c.request({ method: 'POST', path: '/', authority: 't', headers: {}, body: Buffer.from('x') }, {})).rejects.toMatchObject({ flag: 'UC' });
    expect(srv.served).toBe(1);
    // With an Idempotency-Key it is safe to replay.
    await text(await c.request(get(), {}));
    const r = await c.request({ method: 'POST', path: '/', authority: 't', headers: { 'idempotency-key': 'k1' }, body: Buffer.from('x') }, {});
    expect(await text(r)).toBe('ok');
  });
});

describe('outlier detection', () => {
  async function failingPair() {
    let failing = true;
    const bad = await backend('bad', (req, res) => {
      req.resume();
      res.statusCode = failing ? 500 : 200;
      res.end('bad');
    });
    const good = await backend('good');
    return { bad, good, heal: () => (failing = false) };
  }

  test('consecutive 5xx eject an endpoint for base_ejection_time, longer after each ejection', async () => {
    const { bad, good } = await failingPair();
    const cm = manager();
    cm.update(
      pilotSnapshot(
        serviceYaml([bad, good], '{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 3, interval: 20ms, baseEjectionTime: 300ms, maxEjectionPercent: 100}}'),
      ),
    );
    const c = cm.get(svc)!;
    const ejected = () => cm.status().get(svc)!.find((s) => s.port === bad.port)!.ejected;
    const send = async (n: number) => {
      const seen: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = await c.request(get(), {});
        await text(r);
        seen.push(r.status);
      }
      return seen;
    };
    // Round robin alternates: six requests give the bad endpoint its three 500s.
    expect((await send(6)).filter((s) => s === 500)).toHaveLength(3);
    expect(ejected()).toBe(true);
    const ejectedAt = performance.now();
    expect(await send(20)).toEqual(Array(20).fill(200));
    expect(cm.stats().get(svc)!['outlier_detection.ejections_active']).toBe(1);
    while (ejected()) await delay(10);
    // Measured from when the sends returned, a little after the ejection itself: allow that slack.
    const first = performance.now() - ejectedAt;
    expect(first).toBeGreaterThanOrEqual(250);
    expect(first).toBeLessThan(500);
    // Back in rotation: it fails three more times and is ejected again, now for 2 x 300 ms.
    expect((await send(6)).filter((s) => s === 500)).toHaveLength(3);
    expect(ejected()).toBe(true);
    const again = performance.now();
    while (ejected()) await delay(10);
    expect(performance.now() - again).toBeGreaterThanOrEqual(550);
    expect(cm.stats().get(svc)!['outlier_detection.ejections_enforced_total']).toBe(2);
    expect(good.count).toBeGreaterThan(20);
  });

  test("Envoy's default max_ejection_percent (10%) ejects nothing in a two-endpoint cluster", async () => {
    const { bad, good } = await failingPair();
    const cm = manager();
    cm.update(pilotSnapshot(serviceYaml([bad, good], '{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 2, interval: 20ms, baseEjectionTime: 1s}}')));
    const c = cm.get(svc)!;
    for (let i = 0; i < 10; i++) await text(await c.request(get(), {}));
    expect(cm.status().get(svc)!.some((s) => s.ejected)).toBe(false);
    expect(cm.stats().get(svc)!['outlier_detection.ejections_overflow']).toBeGreaterThan(0);
  });

  test('below minHealthPercent the cluster panics and balances over every endpoint, ejected ones included', async () => {
    const { bad, good } = await failingPair();
    const cm = manager();
    cm.update(
      pilotSnapshot(
        serviceYaml(
          [bad, good],
          '{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: 2, interval: 20ms, baseEjectionTime: 10s, maxEjectionPercent: 100, minHealthPercent: 60}}',
        ),
      ),
    );
    const c = cm.get(svc)!;
    for (let i = 0; i < 4; i++) await text(await c.request(get(), {}));
    expect(cm.status().get(svc)!.find((s) => s.port === bad.port)!.ejected).toBe(true);
    bad.count = 0;
    for (let i = 0; i < 10; i++) await text(await c.request(get(), {}));
    expect(bad.count).toBe(5);
  });

  test('with every endpoint ejected and no panic threshold, requests fail with UH', async () => {
    const { bad } = await failingPair();
    const cm = manager();
    cm.update(
      pilotSnapshot(serviceYaml([bad], '{outlierDetection: {consecutive5xxErrors: 2, interval: 20ms, baseEjectionTime: 10s, maxEjectionPercent: 100, minHealthPercent: 0}}')),
    );
    const c = cm.get(svc)!;
    for (let i = 0; i < 2; i++) await text(await c.request(get(), {}));
    await expect(c.request(get(), {})).rejects.toMatchObject({ flag: 'UH' });
  });

  test('consecutive local-origin failures (connection refused) eject an endpoint when split from 5xx', async () => {
    const good = await backend('good');
    const dead = await httpBackend('dead');
    const deadPort = dead.port;
    await dead.close();
    const cm = manager();
    cm.update(
      pilotSnapshot(
        serviceYaml(
          [good, { name: 'dead', port: deadPort }],
          '{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, consecutive5xxErrors: 0, interval: 20ms, baseEjectionTime: 10s, maxEjectionPercent: 100}}',
        ),
      ),
    );
    const c = cm.get(svc)!;
    const flags: string[] = [];
    for (let i = 0; i < 20; i++) {
      try {
        await text(await c.request(get(), {}));
        flags.push('ok');
      } catch (err) {
        flags.push((err as { flag: string }).flag);
      }
    }
    expect(flags.filter((f) => f === 'UF')).toHaveLength(2);
    expect(flags.slice(-10)).toEqual(Array(10).fill('ok'));
    expect(cm.status().get(svc)!.find((s) => s.port === deadPort)).toMatchObject({ ejected: true, healthy: false, failures: 2 });
  });
});
