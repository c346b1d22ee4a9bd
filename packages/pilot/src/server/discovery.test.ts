import { status } from '@grpc/grpc-js';
import type { ConfigStore } from '@weft/model';
import { TypeUrl } from '@weft/xds';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { proxyFromNode } from '../proxy/node.ts';
import { silentLogger } from '@weft/model';
import { DiscoveryServer, type DiscoveryEvent } from './discovery.ts';
import { DeltaTestClient, newStore, resourceNames, SotwTestClient, TestRegistry, virtualService, type World, worldGenerators, worldPushContext } from './testing.ts';

const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;

const a = 'outbound|80||a.default.svc.cluster.local';
const b = 'outbound|80||b.default.svc.cluster.local';
const bV1 = 'outbound|80|v1|b.default.svc.cluster.local';

let world: World;
let store: ConfigStore;
let registry: TestRegistry;
let server: DiscoveryServer;
let target: string;
const clients: { close(): void }[] = [];

function sotw(node?: ConstructorParameters<typeof SotwTestClient>[1]) {
  const c = new SotwTestClient(target, node);
  clients.push(c);
  return c;
}
function delta(node?: ConstructorParameters<typeof DeltaTestClient>[1]) {
  const c = new DeltaTestClient(target, node);
  clients.push(c);
  return c;
}

function events(filter: DiscoveryEvent['type']) {
  const seen: DiscoveryEvent[] = [];
  server.onEvent((e) => {
    if (e.type === filter) seen.push(e);
  });
  return seen;
}

async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

beforeEach(async () => {
  world = {
    clusters: { [a]: ['10.0.0.1:8080'], [b]: ['10.0.1.1:8080'], [bV1]: ['10.0.1.1:8080'] },
    listeners: ['0.0.0.0_80', 'virtualInbound'],
    routes: { '80': 'v1', '9080': 'v1' },
  };
  store = newStore();
  registry = new TestRegistry();
  server = new DiscoveryServer({
    store,
    registry,
    generators: worldGenerators,
    buildPushContext: worldPushContext(world),
    proxyFromNode: (node) => proxyFromNode(node),
    debounce: { quietMs: 20, maxMs: 200 },
    logger: silentLogger,
  });
  const port = await server.listen({ port: 0 });
  target = `127.0.0.1:${port}`;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server.stop();
});

describe('state of the world', () => {
  it('answers wildcard CDS with every cluster and named EDS with the named ones, and records ACKs', async () => {
    const c = sotw();
    c.request(CDS);
    const cds = await c.next();
    expect(cds.type_url).toBe(CDS);
    expect(cds.version_info).toBe('1');
    expect(resourceNames(cds).sort()).toEqual([a, b, bV1].sort());
    c.ack(cds);
    c.request(EDS, [a]);
    const eds = await c.next();
    expect(resourceNames(eds)).toEqual([a]);
    c.ack(eds, [a]);
    await until(() => server.syncStatus()[0]?.types[EDS]?.status === 'ACKED', 'EDS ACK');
    const sync = server.syncStatus()[0]!;
    expect(sync.id).toBe(c.node.id);
    expect(sync.types[CDS]).toMatchObject({ status: 'ACKED', sent: '1', acked: '1', resources: 3, subscribed: '*' });
    expect(sync.types[EDS]).toMatchObject({ status: 'ACKED', sent: '1', acked: '1', subscribed: [a] });
  });

  it('pushes a full change to every watched type in order: CDS, EDS, LDS, RDS', async () => {
    const c = sotw();
    c.request(LDS);
    c.ack(await c.next());
    c.request(RDS, ['80']);
    c.ack(await c.next(), ['80']);
    c.request(CDS);
    c.ack(await c.next());
    c.request(EDS, [a, b]);
    c.ack(await c.next(), [a, b]);
    await c.none(50);

    world.clusters[a] = ['10.0.0.9:8080'];
    world.clusters['outbound|80||c.default.svc.cluster.local'] = ['10.0.2.1:8080'];
    world.listeners.push('0.0.0.0_9090');
    world.routes['80'] = 'v2';
    registry.emit({ services: true, endpoints: new Set() });
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await c.next();
      order.push(r.type_url);
      expect(r.version_info).toBe('2');
    }
    expect(order).toEqual([CDS, EDS, LDS, RDS]);
  });

  it('sends only what changed: a VirtualService change reaches RDS, and unchanged listeners are not resent', async () => {
    const c = sotw();
    c.request(LDS);
    c.ack(await c.next());
    c.request(RDS, ['80', '9080']);
    c.ack(await c.next(), ['80', '9080']);
    c.request(CDS);
    c.ack(await c.next());

    world.routes['80'] = 'v2';
    store.upsert(virtualService('reviews', 'reviews'));
    const r = await c.next();
    expect(r.type_url).toBe(RDS);
    expect(r.version_info).toBe('2');
    // Only the route configuration that changed: RDS responses need not carry the whole set.
    expect(resourceNames(r)).toEqual(['80']);
    await c.none(150);
    expect(server.lastPush).toMatchObject({ version: '2', types: [LDS, TypeUrl.VirtualHost, RDS], configs: ['VirtualService default/reviews'], proxiesPushed: 1, responses: 1 });
  });

  it('pushes only EDS, and only the affected clusters, when only endpoints changed', async () => {
    const c = sotw();
    c.request(CDS);
    c.ack(await c.next());
    c.request(EDS, [a, b, bV1]);
    c.ack(await c.next(), [a, b, bV1]);
    c.request(LDS);
    c.ack(await c.next());

    world.clusters[b] = ['10.0.1.1:8080', '10.0.1.2:8080'];
    world.clusters[bV1] = ['10.0.1.1:8080', '10.0.1.2:8080'];
    registry.emit({ services: false, endpoints: new Set(['b.default.svc.cluster.local']) });
    const r = await c.next();
    expect(r.type_url).toBe(EDS);
    expect(resourceNames(r).sort()).toEqual([b, bV1].sort());
    await c.none(150);
    expect(server.lastPush).toMatchObject({ full: false, types: [], edsHosts: ['b.default.svc.cluster.local'] });
  });

  it('records a NACK with its reason, does not resend the rejected version, and sends the next good one', async () => {
    const c = sotw();
    c.request(RDS, ['80']);
    const first = await c.next();
    c.ack(first, ['80']);

    world.routes['80'] = 'bad';
    store.upsert(virtualService('reviews', 'reviews'));
    const bad = await c.next();
    expect(bad.version_info).toBe('2');
    c.nack(bad, 'route 80: virtual host "bad" is not acceptable', '1', ['80']);
    await until(() => server.syncStatus()[0]?.types[RDS]?.status === 'NACKED', 'NACK');
    expect(server.syncStatus()[0]!.types[RDS]).toMatchObject({ sent: '2', acked: '1', nacked: '2', nackReason: 'route 80: virtual host "bad" is not acceptable' });
    const rejects = await server.metrics.rejects.get();
    expect(rejects.values.find((v) => v.labels.type === 'rds')?.value).toBe(1);
    await c.none(150);

    // An unrelated change: the rejected route is unchanged, so it is not sent again.
    store.upsert(virtualService('other', 'other'));
    await c.none(200);

    world.routes['80'] = 'v3';
    store.upsert(virtualService('reviews', 'reviews.default.svc.cluster.local'));
    const good = await c.next();
    expect(good.version_info).toBe('4');
    c.ack(good, ['80']);
    await until(() => server.syncStatus()[0]?.types[RDS]?.status === 'ACKED', 'ACK of the next good version');
    expect(server.syncStatus()[0]!.types[RDS]).toMatchObject({ sent: '4', acked: '4', nacked: '2' });
  });

  it('ignores requests with a stale nonce, and answers a subscription change carried by an ACK', async () => {
    const c = sotw();
    c.request(EDS, [a]);
    const first = await c.next();
    c.ack(first, [a]);
    world.clusters[a] = ['10.0.0.5:8080'];
    registry.emit({ services: false, endpoints: new Set(['a.default.svc.cluster.local']) });
    const second = await c.next();
    // A request answering the first response now: stale, so its new names are not acted on.
    c.ack(first, [a, b]);
    await c.none(150);
    c.ack(second, [a, b]);
    const added = await c.next();
    expect(resourceNames(added)).toEqual([b]);
  });

  it('takes an empty list after named listeners or clusters as unsubscribing from all (not the wildcard), and sends nothing until a new subscription', async () => {
    const c = sotw();
    c.request(LDS, ['0.0.0.0_80']);
    const named = await c.next();
    expect(resourceNames(named)).toEqual(['0.0.0.0_80']);
    c.ack(named, ['0.0.0.0_80']);
    c.request(CDS, [a]);
    const cds = await c.next();
    c.ack(cds, [a]);
    // Both cleared (what a gRPC client sends when its last watch of a type goes).
    c.ack(named, []);
    c.ack(cds, []);
    await c.none(100);
    await until(() => server.syncStatus()[0]?.types[LDS]?.subscribed?.length === 0, 'the empty LDS subscription');
    expect(server.syncStatus()[0]!.types[CDS]?.subscribed).toEqual([]);
    // Later changes are not pushed to it either.
    world.listeners.push('0.0.0.0_9090');
    world.clusters[a] = ['10.0.0.7:8080'];
    registry.emit({ services: true, endpoints: new Set() });
    await c.none(300);
    // Subscribing again is answered, with what is asked for only.
    c.ack(named, ['0.0.0.0_9090']);
    expect(resourceNames(await c.next())).toEqual(['0.0.0.0_9090']);
  });

  it('keeps an empty first listener request a wildcard while the client keeps sending empty lists', async () => {
    const c = sotw();
    c.request(LDS);
    const all = await c.next();
    expect(resourceNames(all).sort()).toEqual(['0.0.0.0_80', 'virtualInbound']);
    c.ack(all);
    world.listeners.push('0.0.0.0_9090');
    registry.emit({ services: true, endpoints: new Set() });
    expect(resourceNames(await c.next()).sort()).toEqual(['0.0.0.0_80', '0.0.0.0_9090', 'virtualInbound']);
    expect(server.syncStatus()[0]!.types[LDS]?.subscribed).toBe('*');
  });

  it('follows a CDS subscription with an EDS answer even when the EDS request looks like an ACK', async () => {
    const c = sotw();
    c.request(CDS);
    const cds1 = await c.next();
    c.request(EDS, [a]);
    const eds1 = await c.next();
    c.ack(eds1, [a]);
    await c.none(50);
    // Envoy (re)requests CDS from scratch, then re-requests EDS with unchanged names to warm the clusters.
    c.request(CDS);
    const cds2 = await c.next();
    expect(cds2.type_url).toBe(CDS);
    c.ack(cds2);
    c.ack(eds1, [a]);
    const eds2 = await c.next();
    expect(eds2.type_url).toBe(EDS);
    expect(resourceNames(eds2)).toEqual([a]);
    expect(cds1.nonce).not.toBe(cds2.nonce);
  });

  it('measures convergence from the change to the ACK of everything pushed', async () => {
    const converged = events('converged');
    const c = sotw();
    c.request(LDS);
    c.ack(await c.next());
    c.request(RDS, ['80']);
    c.ack(await c.next(), ['80']);
    world.listeners.push('0.0.0.0_8080');
    world.routes['80'] = 'v2';
    store.upsert(virtualService('reviews', 'reviews'));
    const lds = await c.next();
    const rds = await c.next();
    expect([lds.type_url, rds.type_url]).toEqual([LDS, RDS]);
    c.ack(lds);
    await new Promise((r) => setTimeout(r, 30));
    expect(converged).toHaveLength(0);
    c.ack(rds, ['80']);
    await until(() => converged.length === 1, 'convergence');
    const ms = (converged[0] as Extract<DiscoveryEvent, { type: 'converged' }>).ms;
    // Includes the 20 ms quiet period and the 30 ms before the RDS ACK.
    expect(ms).toBeGreaterThanOrEqual(45);
    expect(server.syncStatus()[0]!.convergenceMs).toBeCloseTo(ms, 0);
    const h = await server.metrics.convergence.get();
    expect(h.values.find((v) => v.metricName === 'pilot_proxy_convergence_time_count')?.value).toBe(1);
  });

  it('debounces a burst of changes into one push', async () => {
    const pushes = events('push');
    for (let i = 0; i < 10; i++) {
      store.upsert(virtualService(`vs-${i}`, `h${i}`));
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => pushes.length === 1, 'one push');
    await new Promise((r) => setTimeout(r, 60));
    expect(pushes).toHaveLength(1);
    expect(server.lastPush?.configs).toHaveLength(10);
    expect(server.lastPush?.version).toBe('2');
  });

  it('pushes at the latest after the maximum wait, even while changes keep coming', async () => {
    const pushes = events('push');
    const t0 = Date.now();
    const keepChanging = setInterval(() => store.upsert(virtualService(`vs-${Date.now()}`, 'h')), 10);
    try {
      await until(() => pushes.length >= 1, 'a push during a steady stream of changes', 1000);
    } finally {
      clearInterval(keepChanging);
    }
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(600);
  });

  it('keeps the last good config when a generator fails, and reports the error in the push status', async () => {
    const c = sotw();
    c.request(CDS);
    c.ack(await c.next());
    world.failing = CDS;
    registry.emit({ services: true, endpoints: new Set() });
    await until(() => server.lastPush?.version === '2', 'push 2');
    expect(server.lastPush?.errors).toEqual([{ proxy: c.node.id, typeUrl: CDS, message: 'cds generator failed' }]);
    await c.none(100);
    expect(server.syncStatus()[0]!.types[CDS]).toMatchObject({ status: 'ACKED', acked: '1' });
  });

  it('refuses a stream whose node it cannot parse', async () => {
    const c = sotw({ id: 'not-a-node-id' });
    c.request(CDS);
    await expect(c.next()).rejects.toThrow(/invalid node/);
    expect(c.status?.code).toBe(status.INVALID_ARGUMENT);
    expect(server.connections).toHaveLength(0);
  });

  it('counts connected proxies and forgets them when they disconnect', async () => {
    const c1 = sotw();
    const c2 = sotw({ id: 'sidecar~10.0.0.3~app-3.default~default.svc.cluster.local' });
    c1.request(CDS);
    c2.request(CDS);
    await c1.next();
    await c2.next();
    expect((await server.metrics.connected.get()).values[0]?.value).toBe(2);
    c1.close();
    await until(() => server.connections.length === 1, 'disconnect');
    expect((await server.metrics.connected.get()).values[0]?.value).toBe(1);
  });
});

describe('delta', () => {
  it('sends resources with per-name versions, then only changes and removals', async () => {
    const c = delta();
    c.send({ type_url: CDS, resource_names_subscribe: [] });
    const first = await c.next();
    expect(first.resources.map((r) => r.name).sort()).toEqual([a, b, bV1].sort());
    expect(first.resources.every((r) => /^[\w-]{16}$/.test(r.version))).toBe(true);
    expect(first.removed_resources).toEqual([]);
    c.ack(first);

    delete world.clusters[bV1];
    world.clusters['outbound|80||c.default.svc.cluster.local'] = ['10.0.2.1:8080'];
    registry.emit({ services: true, endpoints: new Set() });
    const second = await c.next();
    expect(second.resources.map((r) => r.name)).toEqual(['outbound|80||c.default.svc.cluster.local']);
    expect(second.removed_resources).toEqual([bV1]);
    expect(second.system_version_info).toBe('2');
  });

  it('resends nothing the client already has (initial_resource_versions)', async () => {
    const c1 = delta();
    c1.send({ type_url: CDS });
    const first = await c1.next();
    const versions = Object.fromEntries(first.resources.map((r) => [r.name, r.version]));
    world.clusters[a] = ['10.0.0.7:8080'];
    const c2 = delta({ id: 'sidecar~10.0.0.4~app-4.default~default.svc.cluster.local' });
    versions['outbound|80||gone.default.svc.cluster.local'] = 'x';
    c2.send({ type_url: CDS, initial_resource_versions: versions });
    const r = await c2.next();
    // Clusters do not carry endpoints, so all three are unchanged; the one the server does not have is removed.
    expect(r.resources).toEqual([]);
    expect(r.removed_resources).toEqual(['outbound|80||gone.default.svc.cluster.local']);
  });

  it('answers a reconnect that holds everything with an empty response, which the client ACKs: it shows as synced', async () => {
    const c1 = delta();
    c1.send({ type_url: CDS });
    const first = await c1.next();
    const versions = Object.fromEntries(first.resources.map((r) => [r.name, r.version]));
    const id = 'sidecar~10.0.0.5~app-5.default~default.svc.cluster.local';
    const c2 = delta({ id });
    c2.send({ type_url: CDS, initial_resource_versions: versions });
    const r = await c2.next();
    expect(r.resources).toEqual([]);
    expect(r.removed_resources).toEqual([]);
    expect(r.nonce).not.toBe('');
    c2.ack(r);
    await until(() => server.syncStatus().find((s) => s.id === id)?.types[CDS]?.status === 'ACKED', 'ACK of the empty answer');
  });

  it('follows subscribe and unsubscribe, and reports a named resource that does not exist as removed', async () => {
    const c = delta();
    c.send({ type_url: EDS, resource_names_subscribe: [a] });
    const r1 = await c.next();
    expect(r1.resources.map((r) => r.name)).toEqual([a]);
    c.ack(r1);
    c.send({ type_url: EDS, resource_names_subscribe: [b, 'outbound|80||nope.default.svc.cluster.local'] });
    const r2 = await c.next();
    expect(r2.resources.map((r) => r.name)).toEqual([b]);
    expect(r2.removed_resources).toEqual(['outbound|80||nope.default.svc.cluster.local']);
    c.ack(r2);
    c.send({ type_url: EDS, resource_names_unsubscribe: [a] });
    await c.none(100);
    // Endpoints of an unsubscribed cluster change: nothing is sent for it.
    world.clusters[a] = ['10.0.0.8:8080'];
    registry.emit({ services: false, endpoints: new Set(['a.default.svc.cluster.local']) });
    await c.none(150);
    world.clusters[b] = ['10.0.1.8:8080'];
    registry.emit({ services: false, endpoints: new Set(['b.default.svc.cluster.local']) });
    const r3 = await c.next();
    expect(r3.resources.map((r) => r.name)).toEqual([b]);
    expect(r3.removed_resources).toEqual([]);
  });

  it('records a NACK and keeps sending later updates', async () => {
    const nacks = events('nack');
    const c = delta();
    c.send({ type_url: RDS, resource_names_subscribe: ['80'] });
    c.ack(await c.next());
    world.routes['80'] = 'bad';
    store.upsert(virtualService('reviews', 'reviews'));
    const bad = await c.next();
    c.send({ type_url: RDS, response_nonce: bad.nonce, error_detail: { code: 3, message: 'rejected: bad' } });
    await until(() => nacks.length === 1, 'NACK');
    expect(server.syncStatus()[0]!.types[RDS]).toMatchObject({ status: 'NACKED', nacked: '2', nackReason: 'rejected: bad', acked: '1' });
    world.routes['80'] = 'good';
    store.upsert(virtualService('reviews', 'reviews.default.svc.cluster.local'));
    const good = await c.next();
    expect(good.resources.map((r) => r.name)).toEqual(['80']);
    c.ack(good);
    await until(() => server.syncStatus()[0]?.types[RDS]?.status === 'ACKED', 'ACK');
  });

  it('answers an initial CDS request with EDS too, without waiting for an EDS request', async () => {
    const c = delta();
    c.send({ type_url: EDS, resource_names_subscribe: [a] });
    c.ack(await c.next());
    c.send({ type_url: CDS });
    const cds = await c.next();
    expect(cds.type_url).toBe(CDS);
    const eds = await c.next();
    expect(eds.type_url).toBe(EDS);
  });
});

describe('flow control', () => {
  it('answers every request and push even when the transport may hold only one response at a time', async () => {
    const tight = new DiscoveryServer({
      store,
      registry,
      generators: worldGenerators,
      buildPushContext: worldPushContext(world),
      proxyFromNode: (node) => proxyFromNode(node),
      debounce: { quietMs: 10, maxMs: 100 },
      logger: silentLogger,
      maxInflightBytes: 1,
    });
    const port = await tight.listen({ port: 0 });
    try {
      const cs = [0, 1, 2].map((i) => {
        const c = new SotwTestClient(`127.0.0.1:${port}`, { id: `sidecar~10.0.1.${i}~app-${i}.default~default.svc.cluster.local` });
        clients.push(c);
        return c;
      });
      for (const c of cs) {
        c.request(CDS);
        c.request(EDS, [a, b]);
        c.request(LDS);
        c.request(RDS, ['80']);
      }
      for (const c of cs) {
        const got = new Set<string>();
        for (let i = 0; i < 4; i++) {
          const r = await c.next();
          got.add(r.type_url);
          c.ack(r, r.type_url === EDS ? [a, b] : r.type_url === RDS ? ['80'] : []);
        }
        expect(got).toEqual(new Set([CDS, EDS, LDS, RDS]));
      }
      world.routes['80'] = 'v9';
      store.upsert(virtualService('reviews', 'reviews'));
      for (const c of cs) expect((await c.next()).type_url).toBe(RDS);
    } finally {
      await tight.stop();
    }
  });
});

describe('a push of slow generation', () => {
  it('yields to the event loop between proxies, so timers (health checks, keepalives) still run', async () => {
    // Each proxy's routes take 150 ms to generate (thousands of VirtualServices); six proxies.
    const busyMs = 150;
    const slow: typeof worldGenerators = {
      envoy: {
        ...worldGenerators.envoy,
        [RDS]: (push, proxy, req) => {
          const end = performance.now() + busyMs;
          while (performance.now() < end) {}
          return worldGenerators.envoy[RDS]!(push, proxy, req);
        },
      },
    };
    const slowServer = new DiscoveryServer({
      store,
      registry,
      generators: slow,
      buildPushContext: worldPushContext(world),
      proxyFromNode: (node) => proxyFromNode(node),
      debounce: { quietMs: 10, maxMs: 100 },
      logger: silentLogger,
    });
    const port = await slowServer.listen({ port: 0 });
    try {
      const proxies: SotwTestClient[] = [];
      for (let i = 0; i < 6; i++) {
        const c = new SotwTestClient(`127.0.0.1:${port}`, { id: `sidecar~10.0.0.${i + 1}~app-${i}.default~default.svc.cluster.local` });
        clients.push(c);
        c.request(RDS, ['80']);
        c.ack(await c.next(5000), ['80']);
        proxies.push(c);
      }
      let last = performance.now();
      let longest = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
      }, 5);
      world.routes['80'] = 'v2';
      slowServer.pushAll();
      const pushed = await Promise.all(proxies.map((c) => c.next(10_000)));
      clearInterval(timer);
      expect(pushed.map((r) => r.type_url)).toEqual(proxies.map(() => RDS));
      // One proxy's generation at a time (150 ms and a margin), not all six at once (900 ms).
      expect(longest).toBeLessThan(450);
    } finally {
      await slowServer.stop();
    }
  });
});
