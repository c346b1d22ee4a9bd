// TCP connections for tcp_proxy: the same endpoints, load balancing and breakers as HTTP.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { createClusterManager, type WeftClusterManager } from './manager.ts';
import { assignment, cluster, delay, echoServer, pilotSnapshot, snapshot } from './test-support.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function manager(): WeftClusterManager {
  const cm = createClusterManager();
  cleanups.push(() => cm.close());
  return cm;
}

async function echo() {
  const e = await echoServer();
  cleanups.push(() => e.close());
  return e;
}

async function roundTrip(socket: Socket, message: string): Promise<string> {
  socket.write(message);
  const [data] = await once(socket, 'data');
  return (data as Buffer).toString();
}

test('a TCP service from pilot: connect reaches an endpoint, which counts the open connection', async () => {
  const e = await echo();
  const cm = manager();
  cm.update(
    pilotSnapshot(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: 127.0.0.1, ports: {tcp: ${e.port}}}]
`),
  );
  const c = cm.get('outbound|5432||db.default.svc.cluster.local')!;
  const { socket, endpoint } = await c.connect({});
  expect(endpoint).toBe(`127.0.0.1:${e.port}`);
  expect(await roundTrip(socket, 'ping')).toBe('ping');
  expect(cm.status().get('outbound|5432||db.default.svc.cluster.local')![0]).toMatchObject({ activeRequests: 1, totalRequests: 1 });
  socket.destroy();
  await once(socket, 'close');
  expect(cm.status().get('outbound|5432||db.default.svc.cluster.local')![0]!.activeRequests).toBe(0);
});

test('max_connections holds for TCP (UO); a refused connection is UF; ORIGINAL_DST connects where the listener says', async () => {
  const e = await echo();
  const cm = manager();
  cm.update(
    snapshot(
      [
        cluster({
          name: 'c',
          type: 'EDS',
          eds_cluster_config: { service_name: 'c', eds_config: { ads: {} } },
          circuit_breakers: { thresholds: [{ max_connections: { value: 1 } }] },
        }),
        cluster({ name: 'gone', type: 'STATIC', load_assignment: assignment('gone', [{ port: 1 }]) }),
        cluster({ name: 'PassthroughCluster', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' }),
      ],
      [assignment('c', [{ port: e.port }])],
    ),
  );
  const c = cm.get('c')!;
  const first = await c.connect({});
  await expect(c.connect({})).rejects.toMatchObject({ flag: 'UO' });
  first.socket.destroy();
  await once(first.socket, 'close');
  const second = await c.connect({});
  expect(await roundTrip(second.socket, 'again')).toBe('again');
  second.socket.destroy();
  await expect(cm.get('gone')!.connect({})).rejects.toMatchObject({ flag: 'UF', endpoint: '127.0.0.1:1' });
  const pass = await cm.get('PassthroughCluster')!.connect({ originalDestination: { address: '127.0.0.1', port: e.port } });
  expect(await roundTrip(pass.socket, 'through')).toBe('through');
  pass.socket.destroy();
  await delay(1);
});
