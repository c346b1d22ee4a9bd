// Following snapshots: unchanged clusters keep their connections and state, EDS pushes are cheap,
// changed and removed clusters drain without cutting requests in flight.
import { afterEach, expect, test } from 'vitest';
import type { Cluster__Output, ClusterLoadAssignment__Output } from '@weft/xds';
import { createClusterManager, type WeftClusterManager } from './manager.ts';
import { assignment, type Backend, cluster, delay, get, httpBackend, snapshot, text } from './test-support.ts';

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

const edsCluster = (name: string, connectSeconds = 1) =>
  cluster({
    name,
    type: 'EDS',
    eds_cluster_config: { service_name: name, eds_config: { ads: {} } },
    connect_timeout: { seconds: connectSeconds },
    lb_policy: 'ROUND_ROBIN',
    outlier_detection: { consecutive_5xx: { value: 3 } },
  });

test('an unchanged cluster keeps its identity and connections across snapshots; an EDS push adds endpoints without new clusters', async () => {
  const a = await backend('a');
  const b = await backend('b');
  const cm = manager();
  cm.update(snapshot([edsCluster('c')], [assignment('c', [{ port: a.port }])]));
  const c = cm.get('c')!;
  await text(await c.request(get(), {}));
  // The same definitions, decoded again (new objects), and a new version of the assignment with a second endpoint.
  cm.update(snapshot([edsCluster('c')], [assignment('c', [{ port: a.port }, { port: b.port }])]));
  expect(cm.get('c')).toBe(c);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await text(await c.request(get(), {})));
  expect(seen).toEqual(new Set(['a', 'b']));
  // `a` served three requests over its one keep-alive connection.
  expect(a.connections).toBe(1);
});

test('a changed cluster is replaced: its request in flight completes, its idle connections close', async () => {
  const a = await backend('a', (req, res, bk) => {
    req.resume();
    setTimeout(() => res.end(bk.name), 100);
  });
  const idle = await backend('idle');
  const cm = manager();
  cm.update(snapshot([edsCluster('c'), edsCluster('d')], [assignment('c', [{ port: a.port }]), assignment('d', [{ port: idle.port }])]));
  const old = cm.get('c')!;
  await text(await cm.get('d')!.request(get(), {}));
  const inFlight = old.request(get(), {});
  await delay(20);
  // `c` changes (connect timeout), `d` goes away.
  cm.update(snapshot([edsCluster('c', 2)], [assignment('c', [{ port: a.port }])]));
  expect(cm.get('c')).not.toBe(old);
  expect(cm.get('d')).toBeUndefined();
  expect(await text(await inFlight)).toBe('a');
  // d's idle keep-alive connection was closed.
  const closed = await new Promise<boolean>((resolve) => {
    const srv = idle.server as import('node:http').Server;
    srv.getConnections((_e, n) => resolve(n === 0));
  });
  expect(closed).toBe(true);
  expect(await text(await cm.get('c')!.request(get(), {}))).toBe('a');
  expect(cm.status().has('d')).toBe(false);
});

test('outlier state survives an EDS push that keeps the endpoint', async () => {
  const bad = await backend('bad', (req, res) => {
    req.resume();
    res.statusCode = 503;
    res.end();
  });
  const good = await backend('good');
  const cm = manager();
  const def = cluster({
    name: 'c',
    type: 'EDS',
    eds_cluster_config: { service_name: 'c', eds_config: { ads: {} } },
    lb_policy: 'ROUND_ROBIN',
    outlier_detection: { consecutive_5xx: { value: 2 }, base_ejection_time: { seconds: 30 }, max_ejection_percent: { value: 100 } },
  });
  cm.update(snapshot([def], [assignment('c', [{ port: bad.port }, { port: good.port }])]));
  for (let i = 0; i < 4; i++) await text(await cm.get('c')!.request(get(), {}));
  expect(cm.status().get('c')!.find((s) => s.port === bad.port)!.ejected).toBe(true);
  const third = await backend('third');
  cm.update(snapshot([def], [assignment('c', [{ port: bad.port }, { port: good.port }, { port: third.port }])]));
  expect(cm.status().get('c')!.find((s) => s.port === bad.port)!.ejected).toBe(true);
  for (let i = 0; i < 10; i++) expect(await text(await cm.get('c')!.request(get(), {}))).not.toBe('');
  expect(bad.count).toBe(2);
});

test('1,000 clusters: CDS and EDS pushes apply the changed assignments and keep unchanged clusters', () => {
  const n = 1000;
  const clusters: Cluster__Output[] = [];
  const endpoints: ClusterLoadAssignment__Output[] = [];
  for (let i = 0; i < n; i++) {
    clusters.push(edsCluster(`outbound|80||svc-${i}.default.svc.cluster.local`));
    endpoints.push(assignment(`outbound|80||svc-${i}.default.svc.cluster.local`, [{ port: 10000 + i }, { port: 20000 + i, address: '127.0.0.2' }]));
  }
  const cm = manager();
  cm.update(snapshot(clusters, endpoints));
  const untouched = cm.get(endpoints[0]!.cluster_name);
  // A full CDS push with the same clusters, decoded anew.
  const again = clusters.map((c) => cluster({ ...(c as object) } as Parameters<typeof cluster>[0]));
  const sameEndpoints = new Map(endpoints.map((e) => [e.cluster_name, e]));
  const cdsMap = new Map(again.map((c) => [c.name, c]));
  cm.update(snapshot(cdsMap, sameEndpoints));
  // EDS only: the same cluster map, a new endpoint map with one new assignment.
  const changed = new Map(sameEndpoints);
  changed.set(endpoints[7]!.cluster_name, assignment(endpoints[7]!.cluster_name, [{ port: 30000 }]));
  cm.update({ versions: {}, listeners: new Map(), routes: new Map(), clusters: cdsMap, endpoints: changed, secrets: new Map() });
  // What the xDS client hands over on an EDS push: a new cluster map holding the same objects.
  const rebuilt = new Map(changed);
  rebuilt.set(endpoints[8]!.cluster_name, assignment(endpoints[8]!.cluster_name, [{ port: 30001 }]));
  cm.update({ versions: {}, listeners: new Map(), routes: new Map(), clusters: new Map(cdsMap), endpoints: rebuilt, secrets: new Map() });
  expect(cm.status().get(endpoints[7]!.cluster_name)!.map((s) => s.port)).toEqual([30000]);
  expect(cm.status().get(endpoints[8]!.cluster_name)!.map((s) => s.port)).toEqual([30001]);
  // Clusters the pushes did not change keep their state (pools, balancer, outlier counters).
  expect(cm.get(endpoints[0]!.cluster_name)).toBe(untouched);
});
