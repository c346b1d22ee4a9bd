// The ADS client against a scripted ADS server (a real gRPC stream; the test decides each response).
import { type ServerDuplexStream, Server, ServerCredentials } from '@grpc/grpc-js';
import {
  adsServiceDefinition,
  type Cluster,
  type ClusterLoadAssignment,
  type DiscoveryRequest__Output,
  type DiscoveryResponse,
  encodeAny,
  type Listener,
  type RouteConfiguration,
  TypeUrl,
} from '@weft/xds';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { compileListener } from '../listener/chains.ts';
import { XdsClient } from './client.ts';
import { buildNode } from './node.ts';

type Stream = ServerDuplexStream<DiscoveryRequest__Output, DiscoveryResponse>;

class ScriptedAds {
  readonly requests: DiscoveryRequest__Output[] = [];
  streams: Stream[] = [];
  server = new Server();
  port = 0;
  #waiters: { match: (r: DiscoveryRequest__Output) => boolean; resolve: (r: DiscoveryRequest__Output) => void }[] = [];
  #nonce = 0;

  async start(port = 0): Promise<void> {
    this.server = new Server();
    this.server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (stream: Stream) => {
        this.streams.push(stream);
        stream.on('data', (r: DiscoveryRequest__Output) => {
          this.requests.push(r);
          for (const w of [...this.#waiters]) {
            if (w.match(r)) {
              this.#waiters.splice(this.#waiters.indexOf(w), 1);
              w.resolve(r);
            }
          }
        });
        stream.on('error', () => {});
      },
      DeltaAggregatedResources: () => {},
    });
    this.port = await new Promise((resolve, reject) =>
      this.server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  }

  /** The next request (from now on, or already received after `from`) matching. */
  next(match: (r: DiscoveryRequest__Output) => boolean, from = this.requests.length): Promise<DiscoveryRequest__Output> {
    const seen = this.requests.slice(from).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching request within 5 s')), 5000);
      this.#waiters.push({
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  send(typeUrl: string, version: string, resources: { type_url: string; value: Buffer }[]): string {
    const nonce = String(++this.#nonce);
    this.streams.at(-1)!.write({ type_url: typeUrl, version_info: version, nonce, resources });
    return nonce;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

const edsCluster = (name: string): Cluster => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: name }, connect_timeout: { seconds: 1 } });
const cla = (name: string, port: number): ClusterLoadAssignment => ({
  cluster_name: name,
  endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
});
const hcmListener = (name: string, port: number, route: string): Listener => ({
  name,
  address: { socket_address: { address: '0.0.0.0', port_value: port } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: encodeAny(TypeUrl.HttpConnectionManager, {
            stat_prefix: name,
            rds: { route_config_name: route, config_source: { ads: {} } },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, {}) }],
          }),
        },
      ],
    },
  ],
});
const routeConfig = (name: string, cluster: string): RouteConfiguration => ({
  name,
  virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
});
const any = {
  cluster: (c: Cluster) => encodeAny(TypeUrl.Cluster, c),
  cla: (c: ClusterLoadAssignment) => encodeAny(TypeUrl.ClusterLoadAssignment, c),
  listener: (l: Listener) => encodeAny(TypeUrl.Listener, l),
  route: (r: RouteConfiguration) => encodeAny(TypeUrl.RouteConfiguration, r),
};

let ads: ScriptedAds;
let client: XdsClient | undefined;

afterEach(async () => {
  await client?.close();
  client = undefined;
  ads?.stop();
});

function newClient(extra: Partial<ConstructorParameters<typeof XdsClient>[0]> = {}): XdsClient {
  client = new XdsClient({
    address: `127.0.0.1:${ads.port}`,
    node: buildNode({ type: 'sidecar', ip: '127.0.1.1', pod: 'productpage-v1-1', namespace: 'default', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'bookinfo-productpage' }),
    validate: (t, _name, r) => {
      if (t === TypeUrl.Listener) compileListener(r as Parameters<typeof compileListener>[0]);
    },
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    // This server speaks state of the world; delta.test.ts covers delta and per-virtual-host routes.
    protocol: 'sotw',
    ...extra,
  });
  client.start();
  return client;
}

/** Answers the initial requests with one listener, route, cluster and endpoints. */
async function initialConfig(): Promise<void> {
  await ads.next((r) => r.type_url === TypeUrl.Cluster, 0);
  ads.send(TypeUrl.Cluster, 'c1', [any.cluster(edsCluster('outbound|9080||reviews'))]);
  await ads.next((r) => r.type_url === TypeUrl.Listener, 0);
  ads.send(TypeUrl.Listener, 'l1', [any.listener(hcmListener('0.0.0.0_9080', 9080, '9080'))]);
  await ads.next((r) => r.type_url === TypeUrl.ClusterLoadAssignment && r.resource_names.includes('outbound|9080||reviews'), 0);
  ads.send(TypeUrl.ClusterLoadAssignment, 'e1', [any.cla(cla('outbound|9080||reviews', 9081))]);
  await ads.next((r) => r.type_url === TypeUrl.RouteConfiguration && r.resource_names.includes('9080'), 0);
  ads.send(TypeUrl.RouteConfiguration, 'r1', [any.route(routeConfig('9080', 'outbound|9080||reviews'))]);
}

describe('XdsClient', () => {
  it('subscribes CDS and LDS, then EDS and RDS for what they name, and serves once everything is warm', async () => {
    ads = new ScriptedAds();
    await ads.start();
    const c = newClient();
    const first = await ads.next(() => true, 0);
    // Istio's node identity goes with the first request.
    expect(first.node?.id).toBe('sidecar~127.0.1.1~productpage-v1-1.default~default.svc.cluster.local');
    const md = first.node?.metadata?.fields ?? {};
    expect(md.NAMESPACE?.stringValue).toBe('default');
    expect(md.INSTANCE_IPS?.stringValue).toBe('127.0.1.1');
    expect(md.SERVICE_ACCOUNT?.stringValue).toBe('bookinfo-productpage');
    expect(md.LABELS?.structValue?.fields?.version?.stringValue).toBe('v1');

    await ads.next((r) => r.type_url === TypeUrl.Cluster, 0);
    ads.send(TypeUrl.Cluster, 'c1', [any.cluster(edsCluster('outbound|9080||reviews'))]);
    await ads.next((r) => r.type_url === TypeUrl.Listener, 0);
    ads.send(TypeUrl.Listener, 'l1', [any.listener(hcmListener('0.0.0.0_9080', 9080, '9080'))]);
    const eds = await ads.next((r) => r.type_url === TypeUrl.ClusterLoadAssignment, 0);
    expect(eds.resource_names).toEqual(['outbound|9080||reviews']);
    const rds = await ads.next((r) => r.type_url === TypeUrl.RouteConfiguration, 0);
    expect(rds.resource_names).toEqual(['9080']);
    // CDS and LDS are acknowledged with their versions.
    expect((await ads.next((r) => r.type_url === TypeUrl.Cluster && r.version_info === 'c1', 0)).error_detail).toBeNull();
    // Clusters wait for endpoints, listeners for routes: nothing is served yet.
    await new Promise((r) => setTimeout(r, 50));
    expect(c.snapshot).toBeUndefined();
    expect(c.status().warming.clusters).toEqual(['outbound|9080||reviews']);

    ads.send(TypeUrl.ClusterLoadAssignment, 'e1', [any.cla(cla('outbound|9080||reviews', 9081))]);
    ads.send(TypeUrl.RouteConfiguration, 'r1', [any.route(routeConfig('9080', 'outbound|9080||reviews'))]);
    const snap = await c.ready();
    expect([...snap.listeners.keys()]).toEqual(['0.0.0.0_9080']);
    expect([...snap.routes.keys()]).toEqual(['9080']);
    expect([...snap.clusters.keys()]).toEqual(['outbound|9080||reviews']);
    expect(snap.endpoints.get('outbound|9080||reviews')?.endpoints[0]?.lb_endpoints[0]?.endpoint?.address?.socket_address?.port_value).toBe(9081);
    expect(snap.versions).toMatchObject({ [TypeUrl.Cluster]: 'c1', [TypeUrl.Listener]: 'l1', [TypeUrl.ClusterLoadAssignment]: 'e1', [TypeUrl.RouteConfiguration]: 'r1' });
    expect(c.status().initialized).toBe(true);
  });

  it('NACKs a listener it cannot serve, with the reason, and keeps the last accepted config', async () => {
    ads = new ScriptedAds();
    await ads.start();
    const c = newClient();
    await initialConfig();
    const before = await c.ready();
    const bad = hcmListener('0.0.0.0_9080', 9080, '9080');
    bad.filter_chains![0]!.filters!.unshift({ name: 'envoy.filters.network.mongo_proxy', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy', value: Buffer.alloc(0) } });
    const mark = ads.requests.length;
    const nonce = ads.send(TypeUrl.Listener, 'l2', [any.listener(bad)]);
    const nack = await ads.next((r) => r.type_url === TypeUrl.Listener && r.response_nonce === nonce, mark);
    expect(nack.error_detail?.message).toMatch(/listener 0\.0\.0\.0_9080: .*unsupported network filter "envoy.filters.network.mongo_proxy"/);
    // The NACK names the last accepted version, as Envoy does.
    expect(nack.version_info).toBe('l1');
    await new Promise((r) => setTimeout(r, 50));
    expect(c.snapshot).toBe(before);
    expect(c.status().types.find((t) => t.type === TypeUrl.Listener)?.lastNack?.reason).toMatch(/mongo_proxy/);

    // An undecodable resource is refused the same way.
    const nonce2 = ads.send(TypeUrl.Cluster, 'c2', [{ type_url: TypeUrl.Cluster, value: Buffer.from([0xff, 0xff, 0xff]) }]);
    const nack2 = await ads.next((r) => r.type_url === TypeUrl.Cluster && r.response_nonce === nonce2, mark);
    expect(nack2.error_detail?.message).toMatch(/cannot decode/);
    expect(nack2.version_info).toBe('c1');

    // The next good version is accepted.
    const nonce3 = ads.send(TypeUrl.Listener, 'l3', [any.listener(hcmListener('0.0.0.0_9080', 9080, '9080')), any.listener(hcmListener('0.0.0.0_8080', 8080, '9080'))]);
    const ack = await ads.next((r) => r.type_url === TypeUrl.Listener && r.response_nonce === nonce3, mark);
    expect(ack.error_detail).toBeNull();
    expect(ack.version_info).toBe('l3');
    await new Promise((r) => setTimeout(r, 50));
    expect([...c.snapshot!.listeners.keys()].sort()).toEqual(['0.0.0.0_8080', '0.0.0.0_9080']);
    expect(c.status().types.find((t) => t.type === TypeUrl.Listener)?.lastNack).toBeUndefined();
  });

  it('warms a new cluster until its endpoints arrive, serving the rest meanwhile', async () => {
    ads = new ScriptedAds();
    await ads.start();
    const c = newClient();
    await initialConfig();
    const before = await c.ready();
    const mark = ads.requests.length;
    ads.send(TypeUrl.Cluster, 'c2', [any.cluster(edsCluster('outbound|9080||reviews')), any.cluster(edsCluster('outbound|9080|v2|reviews'))]);
    const eds = await ads.next((r) => r.type_url === TypeUrl.ClusterLoadAssignment && r.resource_names.length === 2, mark);
    expect(eds.resource_names).toEqual(['outbound|9080|v2|reviews', 'outbound|9080||reviews'].sort());
    // A route naming the warming cluster waits for it too; the old route keeps serving.
    ads.send(TypeUrl.RouteConfiguration, 'r2', [any.route(routeConfig('9080', 'outbound|9080|v2|reviews'))]);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.snapshot!.clusters.has('outbound|9080|v2|reviews')).toBe(false);
    expect(c.snapshot!.routes.get('9080')).toBe(before.routes.get('9080'));
    expect(c.status().warming).toEqual({ listeners: [], routes: ['9080'], clusters: ['outbound|9080|v2|reviews'] });
    ads.send(TypeUrl.ClusterLoadAssignment, 'e2', [any.cla(cla('outbound|9080|v2|reviews', 9082))]);
    await new Promise((r) => setTimeout(r, 50));
    const after = c.snapshot!;
    expect(after).not.toBe(before);
    expect(after.clusters.has('outbound|9080|v2|reviews')).toBe(true);
    expect(after.routes.get('9080')?.virtual_hosts[0]?.routes[0]?.route?.cluster).toBe('outbound|9080|v2|reviews');
    // Unchanged resources are the same objects: caches keyed on them stay valid.
    expect(after.listeners.get('0.0.0.0_9080')).toBe(before.listeners.get('0.0.0.0_9080'));
    expect(after.clusters.get('outbound|9080||reviews')).toBe(before.clusters.get('outbound|9080||reviews'));
  });

  it('activates a cluster whose endpoints never come after the warming timeout', async () => {
    ads = new ScriptedAds();
    await ads.start();
    const c = newClient({ warmingTimeoutMs: 300 });
    await ads.next((r) => r.type_url === TypeUrl.Cluster, 0);
    ads.send(TypeUrl.Cluster, 'c1', [any.cluster(edsCluster('outbound|9080||reviews'))]);
    await ads.next((r) => r.type_url === TypeUrl.Listener, 0);
    ads.send(TypeUrl.Listener, 'l1', []);
    const t0 = Date.now();
    const snap = await c.ready();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(snap.clusters.has('outbound|9080||reviews')).toBe(true);
    expect(snap.endpoints.size).toBe(0);
  });

  it('keeps serving when pilot goes away and resyncs its versions and names when it returns', async () => {
    ads = new ScriptedAds();
    await ads.start();
    const c = newClient();
    await initialConfig();
    const before = await c.ready();
    const port = ads.port;
    ads.stop();
    await new Promise((r) => setTimeout(r, 300));
    expect(c.status().connected).toBe(false);
    expect(c.snapshot).toBe(before);

    ads = new ScriptedAds();
    await ads.start(port);
    const cds = await ads.next((r) => r.type_url === TypeUrl.Cluster, 0);
    // The reconnecting client sends its node again and tells pilot what it has.
    expect(cds.node?.id).toMatch(/^sidecar~/);
    expect(cds.version_info).toBe('c1');
    expect(cds.response_nonce).toBe('');
    const eds = await ads.next((r) => r.type_url === TypeUrl.ClusterLoadAssignment, 0);
    expect(eds.version_info).toBe('e1');
    expect(eds.resource_names).toEqual(['outbound|9080||reviews']);
    const rds = await ads.next((r) => r.type_url === TypeUrl.RouteConfiguration, 0);
    expect(rds.version_info).toBe('r1');
    expect(rds.resource_names).toEqual(['9080']);
    // The same config again changes nothing.
    ads.send(TypeUrl.Cluster, 'c1', [any.cluster(edsCluster('outbound|9080||reviews'))]);
    ads.send(TypeUrl.ClusterLoadAssignment, 'e1', [any.cla(cla('outbound|9080||reviews', 9081))]);
    ads.send(TypeUrl.Listener, 'l1', [any.listener(hcmListener('0.0.0.0_9080', 9080, '9080'))]);
    ads.send(TypeUrl.RouteConfiguration, 'r1', [any.route(routeConfig('9080', 'outbound|9080||reviews'))]);
    await ads.next((r) => r.type_url === TypeUrl.RouteConfiguration && r.version_info === 'r1' && r.response_nonce !== '');
    await new Promise((r) => setTimeout(r, 50));
    expect(c.status().connected).toBe(true);
    expect(c.snapshot).toBe(before);
  });

  it('gives up a connection that never comes up (a SYN a vanished pod drops, a peer that never speaks) and dials a new one', async () => {
    ads = new ScriptedAds();
    await ads.start();
    // Pilot's address as a Service that first leads nowhere: the first connection is accepted and
    // never answered (grpc-js would wait on it for ever), later ones reach pilot.
    const held: net.Socket[] = [];
    let connections = 0;
    const front = net.createServer((socket) => {
      connections++;
      socket.on('error', () => {});
      if (connections === 1) {
        held.push(socket);
        return;
      }
      const upstream = net.connect(ads.port, '127.0.0.1');
      upstream.on('error', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    try {
      const started = Date.now();
      const c = newClient({ address: `127.0.0.1:${(front.address() as net.AddressInfo).port}`, connectTimeoutMs: 400 });
      await initialConfig();
      await c.ready();
      expect(connections).toBeGreaterThanOrEqual(2);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(c.status().connected).toBe(true);
    } finally {
      for (const h of held) h.destroy();
      front.close();
    }
  });
});
