// The ADS client in delta xDS against pilot's real server and generators: route configurations
// arrive without their virtual hosts and each virtual host as a resource of its own; the router
// gets the same route configuration a state-of-the-world client gets, and a VirtualService change
// sends one virtual host.
import { type Config, createLogger, defaultKindRegistry, groupKind, loadText, MemoryConfigStore } from '@weft/model';
import { buildPushContext, DiscoveryServer, defaultMeshConfig, envoyGenerators, proxyFromNode, ServiceEntryRegistry } from '@weft/pilot';
import { type RouteConfiguration__Output, TypeUrl } from '@weft/xds';
import { afterEach, describe, expect, it } from 'vitest';
import { compileRouteConfiguration } from '../http/compile.ts';
import { XdsClient } from './client.ts';
import { buildNode } from './node.ts';
import { assembleRoutes } from './vhds.ts';

const serviceEntry = (name: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: shop}
spec:
  hosts: [${name}.shop.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.9.1}]
`;
const virtualService = (timeout: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart.shop.svc.cluster.local]
  http:
  - route:
    - destination: {host: cart.shop.svc.cluster.local}
    timeout: ${timeout}
`;

function config(text: string): Config {
  const c = loadText(text, 'test.yaml', { registry: defaultKindRegistry() }).resources[0]?.config;
  if (!c) throw new Error('bad test config');
  return c;
}

let server: DiscoveryServer | undefined;
const clients: XdsClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.stop();
  server = undefined;
});

async function startPilot(store: MemoryConfigStore): Promise<string> {
  server = new DiscoveryServer({
    store,
    registry: new ServiceEntryRegistry(store),
    mesh: defaultMeshConfig,
    generators: { envoy: envoyGenerators },
    buildPushContext,
    proxyFromNode: (n) => proxyFromNode(n),
    debounce: { quietMs: 5, maxMs: 100 },
    logger: createLogger({ scope: 'pilot', sink: () => {} }),
  });
  return `127.0.0.1:${await server.listen({ port: 0 })}`;
}

function client(address: string, ip: string, protocol: 'sotw' | 'delta'): XdsClient {
  const c = new XdsClient({
    address,
    node: buildNode({ type: 'sidecar', ip, pod: `web-${ip}`, namespace: 'shop' }),
    protocol,
    validate: (t, _name, r) => {
      if (t === TypeUrl.RouteConfiguration) compileRouteConfiguration(r as RouteConfiguration__Output);
    },
    initialBackoffMs: 50,
    maxBackoffMs: 200,
  });
  clients.push(c);
  c.start();
  return c;
}

/** Port 80's virtual hosts, by name. */
function hosts(c: XdsClient): Map<string, unknown> {
  const rc = c.snapshot?.routes.get('80');
  return new Map((rc?.virtual_hosts ?? []).map((vh) => [vh.name, vh]));
}

async function until(check: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('XdsClient, delta xDS with per-virtual-host routes', () => {
  it('routes as a state-of-the-world client does, and a VirtualService change sends only its virtual host', async () => {
    const store = new MemoryConfigStore();
    for (const name of ['cart', 'catalog', 'checkout']) store.upsert(config(serviceEntry(name)));
    store.upsert(config(virtualService('5s')));
    const address = await startPilot(store);
    const delta = client(address, '127.0.8.1', 'delta');
    const sotw = client(address, '127.0.8.2', 'sotw');
    await Promise.all([delta.ready(), sotw.ready()]);
    await until(() => hosts(delta).size === 4 && hosts(sotw).size === 4, 'port 80 with three services and the catch-all');
    expect(hosts(delta)).toEqual(hosts(sotw));
    // The route configuration itself names VHDS and carries no virtual hosts on the wire.
    const deltaSync = server!.syncStatus().find((s) => s.mode === 'delta')!;
    expect(deltaSync.types[TypeUrl.VirtualHost]).toMatchObject({ status: 'ACKED', subscribed: '*', resources: 4 });
    const rdsSent = deltaSync.types[TypeUrl.RouteConfiguration]!.sent;

    store.upsert(config(virtualService('7s')));
    await server!.flush();
    const cart = 'cart.shop.svc.cluster.local:80';
    await until(() => JSON.stringify(hosts(delta).get(cart)).includes('"seconds":"7"') && JSON.stringify(hosts(sotw).get(cart)).includes('"seconds":"7"'), 'the new timeout on both');
    expect(hosts(delta)).toEqual(hosts(sotw));
    // The ACKs reach pilot after the clients have taken the config in.
    const acked = (mode: string, t: string) => server!.syncStatus().find((s) => s.mode === mode)?.types[t]?.status === 'ACKED';
    await until(() => acked('delta', TypeUrl.VirtualHost) && acked('sotw', TypeUrl.RouteConfiguration), 'both ACKs at pilot');
    const after = server!.syncStatus().find((s) => s.mode === 'delta')!;
    // One virtual host went out; the route configuration was not sent again.
    expect(after.types[TypeUrl.VirtualHost]).toMatchObject({ status: 'ACKED', resources: 1 });
    expect(after.types[TypeUrl.RouteConfiguration]!.sent).toBe(rdsSent);
    const sotwAfter = server!.syncStatus().find((s) => s.mode === 'sotw')!;
    expect(sotwAfter.types[TypeUrl.RouteConfiguration]).toMatchObject({ status: 'ACKED', resources: 1 });

    // A service removed: its virtual host is removed from the route configuration too.
    store.delete(groupKind('networking.istio.io', 'ServiceEntry'), 'shop', 'checkout');
    await server!.flush();
    await until(() => hosts(delta).size === 3 && hosts(sotw).size === 3, 'checkout gone from both');
    expect(hosts(delta)).toEqual(hosts(sotw));
  });

  it('tells pilot what it holds when it reconnects, and is sent nothing it already has', async () => {
    const store = new MemoryConfigStore();
    for (const name of ['cart', 'catalog']) store.upsert(config(serviceEntry(name)));
    let address = await startPilot(store);
    const delta = client(address, '127.0.8.3', 'delta');
    await delta.ready();
    const before = delta.snapshot;
    const port = Number(address.split(':')[1]);
    await server!.stop();
    address = `127.0.0.1:${port}`;
    server = new DiscoveryServer({
      store,
      registry: new ServiceEntryRegistry(store),
      mesh: defaultMeshConfig,
      generators: { envoy: envoyGenerators },
      buildPushContext,
      proxyFromNode: (n) => proxyFromNode(n),
      logger: createLogger({ scope: 'pilot', sink: () => {} }),
    });
    await server.listen({ port });
    await until(() => server!.syncStatus().some((s) => s.types[TypeUrl.VirtualHost]?.status === 'ACKED' || s.types[TypeUrl.VirtualHost]?.sent !== undefined), 'the client back');
    await new Promise((r) => setTimeout(r, 200));
    const s = server.syncStatus()[0]!;
    for (const t of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.VirtualHost]) expect(s.types[t]?.resources, t).toBe(0);
    expect(delta.snapshot).toBe(before);
  });
});

describe('assembleRoutes', () => {
  it('puts the virtual hosts of each VHDS route configuration into it, and keeps an unchanged one as it was', () => {
    const rc = { name: '80', vhds: {}, virtual_hosts: [] } as unknown as RouteConfiguration__Output;
    const other = { name: '90', virtual_hosts: [] } as unknown as RouteConfiguration__Output;
    const vh = (name: string) => ({ name, domains: [name] }) as unknown as RouteConfiguration__Output['virtual_hosts'][number];
    const routes = new Map([
      ['80', rc],
      ['90', other],
    ]);
    const vhosts = new Map([
      ['80/b', vh('b')],
      ['80/a', vh('a')],
      ['81/c', vh('c')],
    ]);
    const first = assembleRoutes(routes, vhosts, new Map(), new Set(['80']));
    expect(first.get('80')!.virtual_hosts.map((v) => v.name)).toEqual(['a', 'b']);
    expect(first.get('90')).toBe(other);
    expect(assembleRoutes(routes, vhosts, first, new Set()).get('80')).toBe(first.get('80'));
  });
});
