import { loadText, MemoryConfigStore, defaultKindRegistry, specDigest } from '@weft/model';
import { TypeUrl } from '@weft/xds';
import { Counter, Registry } from 'prom-client';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { proxyFromNode } from '../proxy/node.ts';
import { DiscoveryServer } from './discovery.ts';
import { silentLogger } from '@weft/model';
import { MonitoringServer } from './monitoring.ts';
import { SotwTestClient, TestRegistry, type World, worldGenerators, worldPushContext } from './testing.ts';

let world: World;
let store: MemoryConfigStore;
let discovery: DiscoveryServer;
let monitoring: MonitoringServer;
let other: Registry;
let client: SotwTestClient | undefined;
let ready = false;

beforeEach(async () => {
  world = { clusters: { 'outbound|80||a.default.svc.cluster.local': ['10.0.0.1:80'] }, listeners: [], routes: { '80': 'v1' } };
  store = new MemoryConfigStore();
  const text = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n  hosts: [reviews]\n';
  const loaded = loadText(text, 'reviews.yaml', { registry: defaultKindRegistry(), defaultNamespace: 'default' });
  store.upsert(loaded.resources[0]!.config!);
  discovery = new DiscoveryServer({
    store,
    registry: new TestRegistry(),
    generators: worldGenerators,
    buildPushContext: worldPushContext(world),
    proxyFromNode: (node) => proxyFromNode(node),
    debounce: { quietMs: 10, maxMs: 100 },
    logger: silentLogger,
  });
  other = new Registry();
  new Counter({ name: 'citadel_server_csr_count', help: 'CSRs received.', registers: [other] }).inc(3);
  ready = false;
  monitoring = await MonitoringServer.start({ port: 0, discovery, store, registries: [other], ready: () => ready, logger: silentLogger });
});

afterEach(async () => {
  client?.close();
  client = undefined;
  await monitoring.close();
  await discovery.stop();
});

async function get(path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`${monitoring.url}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

it('answers /healthz with 503 until ready, then 200', async () => {
  expect((await get('/healthz')).status).toBe(503);
  ready = true;
  expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
});

it('shows the accepted config with where it came from', async () => {
  const configs = JSON.parse((await get('/debug/configz')).body);
  expect(configs).toEqual([
    expect.objectContaining({ kind: 'VirtualService', metadata: expect.objectContaining({ name: 'reviews', namespace: 'default' }), spec: { hosts: ['reviews'] }, source: { file: 'reviews.yaml', line: 1, column: 1 } }),
  ]);
});

it('gives the file and spec digest of every object, compact, for waiting on an apply', async () => {
  const res = await get('/debug/config_versions');
  expect(res.body).not.toContain('\n  ');
  const body = JSON.parse(res.body);
  expect(body).toEqual({ revision: expect.any(Number), objects: { 'networking.istio.io/VirtualService/default/reviews': ['reviews.yaml', specDigest({ hosts: ['reviews'] })] } });
  expect(specDigest({ hosts: ['reviews'] })).not.toBe(specDigest({ hosts: ['ratings'] }));
});

it('shows per-proxy sync state with the NACK reason, the last push, and Istio-named metrics with the other registries', async () => {
  const port = await discovery.listen({ port: 0 });
  client = new SotwTestClient(`127.0.0.1:${port}`);
  client.request(TypeUrl.RouteConfiguration, ['80']);
  const first = await client.next();
  client.ack(first, ['80']);
  // The push must follow the ACK: an ACK that arrives after the next response is stale, and the acked version would stay empty.
  for (let i = 0; i < 300 && discovery.syncStatus()[0]?.types[TypeUrl.RouteConfiguration]?.status !== 'ACKED'; i++) await new Promise((r) => setTimeout(r, 10));
  world.routes['80'] = 'bad';
  discovery.pushAll();
  const bad = await client.next();
  client.nack(bad, 'virtual host "bad": invalid domain', first.version_info, ['80']);

  let syncz: { id: string; types: Record<string, { status: string; nackReason: string; acked: string; nacked: string }> }[] = [];
  for (let i = 0; i < 100; i++) {
    syncz = JSON.parse((await get('/debug/syncz')).body);
    if (syncz[0]?.types[TypeUrl.RouteConfiguration]?.status === 'NACKED') break;
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(syncz).toHaveLength(1);
  expect(syncz[0]!.id).toBe(client.node.id);
  expect(syncz[0]!.types[TypeUrl.RouteConfiguration]).toMatchObject({ status: 'NACKED', acked: '1', nacked: '2', nackReason: 'virtual host "bad": invalid domain' });
  expect(JSON.parse((await get(`/debug/syncz?proxy=${encodeURIComponent('nobody')}`)).body)).toEqual([]);

  const push = JSON.parse((await get('/debug/push_status')).body);
  expect(push).toMatchObject({ version: '2', full: true, types: 'all', proxies: 1, proxiesPushed: 1, responses: 1, errors: [] });
  expect(push.durationMs).toBeGreaterThanOrEqual(0);

  const metrics = await get('/metrics');
  expect(metrics.type).toMatch(/^text\/plain/);
  expect(metrics.body).toMatch(/^pilot_xds_pushes\{type="rds"\} 2$/m);
  expect(metrics.body).toMatch(/^pilot_total_xds_rejects\{type="rds"\} 1$/m);
  expect(metrics.body).toMatch(/^pilot_xds_connected 1$/m);
  expect(metrics.body).toMatch(/^# TYPE pilot_proxy_convergence_time histogram$/m);
  expect(metrics.body).toMatch(/^# TYPE pilot_xds_push_time histogram$/m);
  expect(metrics.body).toMatch(/^citadel_server_csr_count 3$/m);
});

it('lists its endpoints for an unknown path', async () => {
  const res = await get('/debug/nothing');
  expect(res.status).toBe(404);
  expect(JSON.parse(res.body).endpoints).toEqual(['/debug/config_versions', '/debug/configz', '/debug/describe', '/debug/push_status', '/debug/syncz', '/healthz', '/metrics']);
});
