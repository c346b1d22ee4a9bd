// Push scoping with the real push context and generators: a config change regenerates only the
// proxies that can see it, judged before and after the change.
import { type Config, createLogger, defaultKindRegistry, loadText, MemoryConfigStore } from '@weft/model';
import { ClientFeature, decodeAny, TypeUrl } from '@weft/xds';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultMeshConfig } from '../core/types.ts';
import { proxyFromNode } from '../proxy/node.ts';
import { buildPushContext } from '../push/context.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { envoyGenerators } from '../translate/index.ts';
import { DiscoveryServer } from './discovery.ts';
import { proxyNeedsPush } from './push-scope.ts';
import { DeltaTestClient, SotwTestClient } from './testing.ts';

const RDS = TypeUrl.RouteConfiguration;
const EDS = TypeUrl.ClusterLoadAssignment;

const serviceEntry = (ns: string, name: string, exportTo = '"*"') => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${name}.${ns}.svc.cluster.local]
  exportTo: [${exportTo}]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.9.1}]
`;
const virtualService = (ns: string, host: string, timeout: string, exportTo: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: ${ns}}
spec:
  hosts: [${host}]
  exportTo: [${exportTo}]
  http:
  - route:
    - destination: {host: ${host}}
    timeout: ${timeout}
`;

function config(text: string): Config {
  const c = loadText(text, 'test.yaml', { registry: defaultKindRegistry() }).resources[0]?.config;
  if (!c) throw new Error('bad test config');
  return c;
}

let server: DiscoveryServer | undefined;
const clients: (SotwTestClient | DeltaTestClient)[] = [];

async function startPilot(store: MemoryConfigStore): Promise<{ target: string; pilot: DiscoveryServer }> {
  const pilot = new DiscoveryServer({
    store,
    registry: new ServiceEntryRegistry(store),
    mesh: defaultMeshConfig,
    generators: { envoy: envoyGenerators },
    buildPushContext,
    proxyFromNode: (n) => proxyFromNode(n),
    proxyNeedsPush,
    debounce: { quietMs: 5, maxMs: 50 },
    logger: createLogger({ scope: 'pilot', sink: () => {} }),
  });
  server = pilot;
  return { target: `127.0.0.1:${await pilot.listen({ port: 0 })}`, pilot };
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.stop();
  server = undefined;
});

/** A sidecar in `ns` that holds port 80's routes (acknowledged). */
async function sidecar(target: string, ns: string, ip: string): Promise<SotwTestClient> {
  const c = new SotwTestClient(target, { id: `sidecar~${ip}~app.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns } });
  clients.push(c);
  c.request(RDS, ['80']);
  c.ack(await c.next(), ['80']);
  return c;
}

describe('per-virtual-host routes on the wire', () => {
  it('are for delta streams that ask for them; a state-of-the-world stream asking gets whole route configurations', async () => {
    const store = new MemoryConfigStore();
    store.upsert(config(serviceEntry('a', 'web')));
    const { target } = await startPilot(store);
    const sotw = new SotwTestClient(target, { id: 'sidecar~127.0.7.3~app.a~a.svc.cluster.local', metadata: { NAMESPACE: 'a' }, clientFeatures: [ClientFeature.vhds] });
    clients.push(sotw);
    sotw.request(RDS, ['80']);
    const whole = decodeAny((await sotw.next()).resources[0]!, RDS);
    expect(whole.virtual_hosts.map((v) => v.name)).toContain('web.a.svc.cluster.local:80');

    const delta = new DeltaTestClient(target, { id: 'sidecar~127.0.7.4~app.a~a.svc.cluster.local', metadata: { NAMESPACE: 'a' }, clientFeatures: [ClientFeature.vhds] });
    clients.push(delta);
    delta.send({ type_url: RDS, resource_names_subscribe: ['80'] });
    const bare = decodeAny((await delta.next()).resources[0]!.resource!, RDS);
    expect(bare.virtual_hosts).toEqual([]);
    delta.send({ type_url: TypeUrl.VirtualHost, resource_names_subscribe: ['*'] });
    const hosts = await delta.next();
    expect(hosts.resources.map((r) => r.name)).toContain('80/web.a.svc.cluster.local:80');
  });
});

describe('push scoping', () => {
  it('regenerates only the proxies that see a changed VirtualService (exportTo), and still marks the others current', async () => {
    const store = new MemoryConfigStore();
    store.upsert(config(serviceEntry('a', 'web')));
    store.upsert(config(serviceEntry('b', 'api')));
    store.upsert(config(virtualService('a', 'web.a.svc.cluster.local', '5s', '"."')));
    const { target, pilot } = await startPilot(store);
    const inA = await sidecar(target, 'a', '127.0.7.1');
    const inB = await sidecar(target, 'b', '127.0.7.2');

    // Private to namespace a: only a's sidecar is concerned.
    store.upsert(config(virtualService('a', 'web.a.svc.cluster.local', '7s', '"."')));
    await pilot.flush();
    expect(pilot.lastPush).toMatchObject({ proxies: 2, proxiesPushed: 1, proxiesSkipped: 1 });
    const routes = await inA.next();
    expect(JSON.stringify(routes.resources)).not.toBe('');
    inA.ack(routes, ['80']);
    await inB.none(150);
    expect(pilot.syncStatus().map((s) => s.pushVersion)).toEqual([pilot.lastPush!.version, pilot.lastPush!.version]);

    // Exported everywhere: b's sidecar now sees it (the push context after the change decides); a's
    // routes are regenerated too, and not sent, being the same.
    store.upsert(config(virtualService('a', 'web.a.svc.cluster.local', '7s', '"*"')));
    await pilot.flush();
    expect(pilot.lastPush).toMatchObject({ proxiesSkipped: 0, proxiesPushed: 1 });
    inB.ack(await inB.next(), ['80']);
    await inA.none(100);

    // Private again: b's sidecar saw it before the change, so it is pushed its removal.
    store.upsert(config(virtualService('a', 'web.a.svc.cluster.local', '7s', '"."')));
    await pilot.flush();
    expect(pilot.lastPush).toMatchObject({ proxiesSkipped: 0 });
    const removed = await inB.next();
    expect(removed.type_url).toBe(RDS);
  });

  it('pushes a new service only to the proxies that can see it (exportTo), judged by the hosts the registry names', async () => {
    const store = new MemoryConfigStore();
    store.upsert(config(serviceEntry('a', 'web')));
    store.upsert(config(serviceEntry('b', 'api')));
    const { target, pilot } = await startPilot(store);
    const inA = await sidecar(target, 'a', '127.0.7.5');
    const inB = await sidecar(target, 'b', '127.0.7.6');
    store.upsert(config(serviceEntry('b', 'jobs', '"."')));
    await pilot.flush();
    expect(pilot.lastPush).toMatchObject({ proxies: 2, proxiesSkipped: 1 });
    const routes = await inB.next();
    expect(JSON.stringify(routes.resources.map((r) => decodeAny(r, RDS).virtual_hosts.map((v) => v.name)))).toContain('jobs.b.svc.cluster.local:80');
    await inA.none(150);
    // Exported to everyone: now a's sidecar is pushed it too.
    inB.ack(routes, ['80']);
    store.upsert(config(serviceEntry('b', 'jobs', '"*"')));
    await pilot.flush();
    expect(pilot.lastPush).toMatchObject({ proxiesSkipped: 0 });
    expect(JSON.stringify(decodeAny((await inA.next()).resources[0]!, RDS).virtual_hosts.map((v) => v.name))).toContain('jobs.b.svc.cluster.local:80');
  });

  it('a WorkloadEntry no ServiceEntry selects pushes the proxy at its address: its locality now orders its endpoints', async () => {
    const store = new MemoryConfigStore();
    store.upsert(
      config(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: geo, namespace: a}
spec:
  hosts: [geo.a.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.9.1, locality: us-east/zone-a}, {address: 127.0.9.2, locality: us-west/zone-b}]
`),
    );
    store.upsert(
      config(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: a}
spec:
  host: geo.a.svc.cluster.local
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}
`),
    );
    const { target, pilot } = await startPilot(store);
    const eds = async (ip: string) => {
      const c = new SotwTestClient(target, { id: `sidecar~${ip}~app.a~a.svc.cluster.local`, metadata: { NAMESPACE: 'a' } });
      clients.push(c);
      c.request(EDS, [cluster]);
      const r = await c.next();
      c.ack(r, [cluster]);
      return { c, first: r };
    };
    const cluster = 'outbound|80||geo.a.svc.cluster.local';
    const priorities = (r: Awaited<ReturnType<SotwTestClient['next']>>) =>
      Object.fromEntries(decodeAny(r.resources[0]!, EDS).endpoints.map((g) => [g.locality?.region ?? '', g.priority ?? 0]));
    const here = await eds('127.0.7.8');
    const other = await eds('127.0.7.9');
    // No locality known: both regions are equally far.
    expect(priorities(here.first)).toEqual({ 'us-east': 0, 'us-west': 0 });
    store.upsert(
      config(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: app, namespace: a}
spec: {address: 127.0.7.8, locality: us-west/zone-b, labels: {app: app}}
`),
    );
    await pilot.flush();
    expect(pilot.lastPush).toMatchObject({ proxies: 2, proxiesPushed: 1, proxiesSkipped: 1 });
    expect(priorities(await here.c.next())).toEqual({ 'us-east': 1, 'us-west': 0 });
    await other.c.none(150);
  });
});
