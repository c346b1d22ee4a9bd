// The config source against FakeCluster (client-node's real ListWatch over a fake Watch): what
// reaches the store, in how many batches, through outages, 410s, CRDs coming and going and
// objects galley refuses. The same behaviours against a real API server: config-source.kube.test.ts.
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { validateConfig } from '@weft/galley';
import { type Config, type ConfigEvent, createLogger, defaultKindRegistry, loadText, MemoryConfigStore } from '@weft/model';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterConfigSource } from './config-source.ts';
import { decodeClusterObject, withoutSource } from './convert.ts';
import { establishedCrd, FakeCluster } from './testing.ts';

const registry = defaultKindRegistry();
const net = 'networking.istio.io';
const vsGk = `${net}/VirtualService`;

function virtualService(name: string, namespace: string, weights: [number, number] = [100, 0], extra: Record<string, unknown> = {}): KubernetesObject {
  return {
    apiVersion: `${net}/v1`,
    kind: 'VirtualService',
    metadata: { name, namespace, ...extra },
    spec: {
      hosts: [`${name}.${namespace}.svc.cluster.local`],
      http: [{ route: [{ destination: { host: name, subset: 'v1' }, weight: weights[0] }, { destination: { host: name, subset: 'v2' }, weight: weights[1] }] }],
    },
  } as KubernetesObject;
}

interface Harness {
  cluster: FakeCluster;
  store: MemoryConfigStore;
  source: ClusterConfigSource;
  logs: { level: string; msg: string; [k: string]: unknown }[];
  /** Store events grouped by the synchronous step that made them. */
  batches: ConfigEvent[][];
}

const running: ClusterConfigSource[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
});

function harness(cluster = new FakeCluster(), opts: { resyncMs?: number } = {}): Harness {
  const store = new MemoryConfigStore();
  const logs: Harness['logs'] = [];
  const batches: ConfigEvent[][] = [];
  let open: ConfigEvent[] | undefined;
  store.watch((e) => {
    if (!open) {
      open = [];
      batches.push(open);
      queueMicrotask(() => (open = undefined));
    }
    open.push(e);
  });
  const source = new ClusterConfigSource({
    kubeConfig: new KubeConfig(),
    store,
    registry,
    validate: (c, o) => validateConfig(c, o),
    logger: createLogger({ scope: 'kube-config', level: 'debug', sink: (line) => logs.push(JSON.parse(line)) }),
    batch: { quietMs: 30, burstQuietMs: 150, maxMs: 2000 },
    backoff: { initialMs: 20, maxMs: 100 },
    resyncMs: opts.resyncMs ?? 0,
    client: cluster,
  });
  running.push(source);
  return { cluster, store, source, logs, batches };
}

function installIstioCrds(cluster: FakeCluster, versions: readonly string[] = ['v1alpha3', 'v1beta1', 'v1']): void {
  for (const k of registry.all()) {
    if (!k.crd) continue;
    const served = k.group === net ? versions : k.versions;
    cluster.put('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', establishedCrd(k.plural, k.group, k.kind, served, k.scope));
  }
}

const until = async (what: string, ok: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const quiet = (ms = 100) => new Promise((r) => setTimeout(r, ms));

describe('decodeClusterObject', () => {
  it('gives the Config the same object read from a file gives, without the API server bookkeeping', () => {
    const fromCluster = {
      apiVersion: `${net}/v1`,
      kind: 'VirtualService',
      metadata: {
        name: 'reviews',
        namespace: 'bookinfo',
        labels: { app: 'reviews' },
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', note: 'x' },
        creationTimestamp: '2026-12-07T04:00:00Z',
        resourceVersion: '4711',
        uid: '0b7e8c1a-0000-4000-8000-000000000000',
        generation: 3,
        managedFields: [{ manager: 'kubectl', operation: 'Apply', apiVersion: `${net}/v1` }],
      },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
    };
    const file = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
  labels: {app: reviews}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
    note: x
  creationTimestamp: "2026-12-07T04:00:00Z"
  resourceVersion: "4711"
  generation: 3
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`;
    const decoded = decodeClusterObject(fromCluster as unknown as KubernetesObject, registry, '/apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices/reviews');
    const loaded = loadText(file, 'reviews.yaml', { registry });
    expect(decoded.problems).toEqual([]);
    expect(withoutSource(decoded.config!)).toEqual(withoutSource(loaded.resources[0]!.config!));
    expect(decoded.config!.metadata).not.toHaveProperty('managedFields');
    expect(decoded.config!.metadata).not.toHaveProperty('uid');
  });

  it('reports structural problems located at the object path, and a Date creationTimestamp as RFC 3339 text', () => {
    const d = decodeClusterObject(
      { apiVersion: `${net}/v1`, kind: 'VirtualService', metadata: { name: 'x', namespace: 'ns', creationTimestamp: new Date('2026-12-07T04:00:00.123Z') as unknown as string }, spec: { hosts: 'not-a-list' } } as unknown as KubernetesObject,
      registry,
      '/apis/networking.istio.io/v1/namespaces/ns/virtualservices/x',
    );
    expect(d.config!.metadata.creationTimestamp).toBe('2026-12-07T04:00:00Z');
    expect(d.problems.map((p) => [p.file, p.path, p.severity])).toEqual([['/apis/networking.istio.io/v1/namespaces/ns/virtualservices/x', 'spec.hosts', 'error']]);
  });
});

describe('ClusterConfigSource', () => {
  it('lists every kind into the store in one batch at sync, then applies a burst of writes as one batch', async () => {
    const h = harness();
    installIstioCrds(h.cluster);
    for (let i = 0; i < 50; i++) h.cluster.put(net, 'v1', 'virtualservices', virtualService(`vs-${i}`, 'default'));
    h.cluster.put('gateway.networking.k8s.io', 'v1', 'httproutes', { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r', namespace: 'default' }, spec: {} } as KubernetesObject);
    h.source.start();
    await h.source.synced();
    expect(h.store.list(vsGk)).toHaveLength(50);
    expect(h.store.list('gateway.networking.k8s.io/HTTPRoute')).toHaveLength(1);
    expect(h.batches).toHaveLength(1);
    const stored = h.store.get(vsGk, 'default', 'vs-7')!;
    expect(stored.metadata.resourceVersion).toBe(h.cluster.get(net, 'virtualservices', 'default', 'vs-7')!.metadata!.resourceVersion);
    expect(stored.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(stored.source).toBeUndefined();
    // Every kind is watched at the newest version: one list and one watch each.
    const kinds = h.source.status().kinds;
    expect(kinds.every((k) => k.version !== null && k.synced)).toBe(true);
    expect(kinds.find((k) => k.kind === vsGk)!.version).toBe('v1');

    // 300 writes 2 ms apart (a kubectl apply), then deletes: one store batch each.
    for (let i = 0; i < 300; i++) {
      h.cluster.put(net, 'v1', 'virtualservices', virtualService(`burst-${i}`, `ns-${i % 7}`));
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    await until('the burst in the store', () => h.store.list(vsGk).length === 350);
    await quiet();
    expect(h.batches).toHaveLength(2);
    expect(h.batches[1]).toHaveLength(300);
    for (let i = 0; i < 300; i++) h.cluster.remove(net, 'virtualservices', `ns-${i % 7}`, `burst-${i}`);
    await until('the deletes', () => h.store.list(vsGk).length === 50);
    await quiet();
    expect(h.batches).toHaveLength(3);
    expect(h.batches[2]!.every((e) => e.type === 'delete')).toBe(true);
  });

  it('checks a batch of thousands in slices of the event loop and still writes it to the store in one step', async () => {
    const h = harness();
    installIstioCrds(h.cluster);
    h.source.start();
    await h.source.synced();
    for (let i = 0; i < 4000; i++) h.cluster.put(net, 'v1', 'virtualservices', virtualService(`bulk-${i}`, `ns-${i % 10}`));
    let last = performance.now();
    let longest = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 2);
    const t0 = performance.now();
    await until('4000 objects', () => h.store.list(vsGk).length === 4000, 30_000);
    const took = performance.now() - t0;
    clearInterval(ticker);
    expect(h.batches.at(-1)).toHaveLength(4000);
    // Checking 4,000 objects takes hundreds of ms; no turn of the event loop waits for all of it.
    expect(longest).toBeLessThan(Math.max(150, took / 3));
  });

  it('one edit is applied after quietMs; a burst waits out pauses up to burstQuietMs and stays one batch', async () => {
    const h = harness();
    installIstioCrds(h.cluster);
    h.source.start();
    await h.source.synced();
    const t0 = performance.now();
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('one', 'default'));
    await until('the one edit', () => h.store.get(vsGk, 'default', 'one') !== undefined);
    const single = performance.now() - t0;
    expect(single).toBeLessThan(140); // 30 ms quiet, not the burst's 150
    const before = h.batches.length;
    // 40 objects with two pauses of 90 ms (longer than quietMs, shorter than burstQuietMs).
    for (let i = 0; i < 40; i++) {
      h.cluster.put(net, 'v1', 'virtualservices', virtualService(`b-${i}`, 'default'));
      if (i === 15 || i === 30) await new Promise((r) => setTimeout(r, 90));
    }
    await until('the burst', () => h.store.list(vsGk).length === 41);
    await quiet(200);
    expect(h.batches.length - before).toBe(1);
  });

  it('a batch is applied at the latest maxMs after its first event, however busy the stream', async () => {
    const cluster = new FakeCluster();
    installIstioCrds(cluster);
    const store = new MemoryConfigStore();
    const source = new ClusterConfigSource({ kubeConfig: new KubeConfig(), store, registry, logger: createLogger({ scope: 't', sink: () => {} }), batch: { quietMs: 50, maxMs: 150 }, resyncMs: 0, client: cluster });
    running.push(source);
    source.start();
    await source.synced();
    const t0 = Date.now();
    let i = 0;
    while (store.list(vsGk).length === 0) {
      cluster.put(net, 'v1', 'virtualservices', virtualService(`s-${i++}`, 'default'));
      await new Promise((r) => setTimeout(r, 10));
      if (Date.now() - t0 > 2000) throw new Error('nothing applied within 2 s of a steady stream');
    }
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('skips a kind whose CRD is missing with one log line, and watches it once the CRD is established', async () => {
    const h = harness();
    // Only VirtualService's CRD at first.
    h.cluster.put('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', establishedCrd('virtualservices', net, 'VirtualService', ['v1']));
    h.cluster.put(net, 'v1', 'destinationrules', { apiVersion: `${net}/v1`, kind: 'DestinationRule', metadata: { name: 'dr', namespace: 'default' }, spec: { host: 'reviews' } } as KubernetesObject);
    h.source.start();
    await h.source.synced();
    const missing = h.logs.filter((l) => l.msg.startsWith('CRD not installed'));
    expect(missing.map((l) => l.crd).sort()).toEqual(
      registry
        .all()
        .filter((k) => k.crd && k.kind !== 'VirtualService')
        .map((k) => `${k.plural}.${k.group}`)
        .sort(),
    );
    expect(h.cluster.lists.get(`${net}/destinationrules`)).toBeUndefined();
    // Events about other CRDs do not repeat the line.
    h.cluster.put('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', establishedCrd('widgets', 'example.com', 'Widget', ['v1']));
    const crd = establishedCrd('destinationrules', net, 'DestinationRule', ['v1']);
    const pending = { ...crd, status: { conditions: [{ type: 'Established', status: 'False' }] } } as KubernetesObject;
    h.cluster.put('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', pending);
    await quiet(50);
    expect(h.store.list(`${net}/DestinationRule`)).toHaveLength(0);
    h.cluster.put('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', crd);
    await until('the DestinationRule', () => h.store.get(`${net}/DestinationRule`, 'default', 'dr') !== undefined);
    expect(h.logs.filter((l) => l.crd === 'destinationrules.networking.istio.io' && l.msg.startsWith('CRD not installed'))).toHaveLength(1);
    expect(h.logs.some((l) => l.msg === 'CRD installed; watching its kind' && l.kind === 'DestinationRule')).toBe(true);
  });

  it('watches the newest version a CRD serves that model reads, and takes the objects out when the CRD goes', async () => {
    const h = harness();
    installIstioCrds(h.cluster, ['v1alpha3', 'v1beta1']);
    h.cluster.put(net, 'v1beta1', 'virtualservices', virtualService('old', 'default'));
    h.source.start();
    await h.source.synced();
    expect(h.store.get(vsGk, 'default', 'old')!.apiVersion).toBe(`${net}/v1beta1`);
    // An upgrade that serves v1: the kind moves to it.
    h.cluster.put('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', establishedCrd('virtualservices', net, 'VirtualService', ['v1alpha3', 'v1beta1', 'v1']));
    await until('v1', () => h.store.get(vsGk, 'default', 'old')?.apiVersion === `${net}/v1`);
    h.cluster.remove('apiextensions.k8s.io', 'customresourcedefinitions', '', 'virtualservices.networking.istio.io');
    await until('the objects gone', () => h.store.list(vsGk).length === 0);
    expect(h.logs.some((l) => l.msg === 'CRD removed; its objects leave the config' && l.objects === 1)).toBe(true);
  });

  it('logs an invalid object with kind/namespace/name and the reason, keeps the accepted version, accepts the fix', async () => {
    const h = harness(new FakeCluster(), { resyncMs: 40 });
    installIstioCrds(h.cluster);
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('reviews', 'bookinfo', [100, 0]));
    // Stored before any webhook existed, never valid.
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('broken', 'bookinfo', [105, -5]));
    h.source.start();
    await h.source.synced();
    expect(h.store.get(vsGk, 'bookinfo', 'broken')).toBeUndefined();
    const first = h.logs.find((l) => l.msg.startsWith('config rejected') && l.name === 'broken')!;
    expect(first).toMatchObject({ level: 'error', kind: 'VirtualService', namespace: 'bookinfo', name: 'broken', msg: 'config rejected; the object is left out of the config until it is fixed' });
    expect(first.problems).toEqual(['spec.http[0].route[1].weight: weight -5 < 0']);

    const accepted = h.store.get(vsGk, 'bookinfo', 'reviews')!;
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('reviews', 'bookinfo', [105, -5]));
    await until('the rejection', () => h.logs.some((l) => l.msg === 'config rejected; the last accepted version stays in force' && l.name === 'reviews'));
    await quiet(150); // several resyncs: logged once per resourceVersion
    expect(h.logs.filter((l) => l.msg.startsWith('config rejected') && l.name === 'reviews')).toHaveLength(1);
    expect(h.store.get(vsGk, 'bookinfo', 'reviews')).toEqual(accepted);
    expect(h.source.status().rejected.map((r) => [r.name, r.previousInForce])).toEqual([
      ['broken', false],
      ['reviews', true],
    ]);

    h.cluster.put(net, 'v1', 'virtualservices', virtualService('reviews', 'bookinfo', [80, 20]));
    const weight = () => (h.store.get(vsGk, 'bookinfo', 'reviews')!.spec as { http: { route: { weight: number }[] }[] }).http[0]!.route[1]!.weight;
    await until('the fix', () => weight() === 20);
    expect(h.logs.some((l) => l.msg === 'config accepted' && l.name === 'reviews')).toBe(true);
    // Deleting the never-valid object clears it.
    h.cluster.remove(net, 'virtualservices', 'bookinfo', 'broken');
    await until('rejected list empty', () => h.source.status().rejected.length === 0);
  });

  it('retries with backoff while the API server is down, resumes from its resourceVersion, loses and duplicates nothing', async () => {
    const h = harness();
    installIstioCrds(h.cluster);
    for (let i = 0; i < 20; i++) h.cluster.put(net, 'v1', 'virtualservices', virtualService(`vs-${i}`, 'default'));
    h.source.start();
    await h.source.synced();
    const snapshot = (): Config[] => h.store.all();
    const before = snapshot();
    const listsBefore = h.cluster.lists.get(`${net}/virtualservices`);
    h.cluster.down();
    await quiet(150); // several failed attempts
    const failures = h.logs.filter((l) => l.msg === 'list/watch failed; retrying with backoff' && l.resource === 'virtualservices.networking.istio.io/v1');
    expect(failures).toHaveLength(1);
    expect(h.store.all()).toEqual(before);
    h.cluster.up();
    await until('watching again', () => h.logs.some((l) => l.msg === 'watching again' && l.resource === 'virtualservices.networking.istio.io/v1'), 3000);
    // Changes made once it is back arrive over the resumed watch, without a relist.
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('after', 'default'));
    await until('the new object', () => h.store.get(vsGk, 'default', 'after') !== undefined);
    expect(h.cluster.lists.get(`${net}/virtualservices`)).toBe(listsBefore);
    expect(h.cluster.watches.filter((w) => w.collection === `${net}/virtualservices`).at(-1)!.resourceVersion).not.toBe('');
    const after = snapshot().filter((c) => c.metadata.name !== 'after');
    expect(after).toEqual(before);
  });

  it('relists after 410 Gone: what was deleted meanwhile leaves, what was added arrives, the rest is untouched', async () => {
    const h = harness();
    installIstioCrds(h.cluster);
    for (let i = 0; i < 5; i++) h.cluster.put(net, 'v1', 'virtualservices', virtualService(`vs-${i}`, 'default'));
    h.source.start();
    await h.source.synced();
    h.cluster.down();
    h.cluster.remove(net, 'virtualservices', 'default', 'vs-0');
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('vs-new', 'default'));
    h.cluster.compact();
    const kept = h.store.get(vsGk, 'default', 'vs-3');
    const events: ConfigEvent[] = [];
    h.store.watch((e) => events.push(e));
    h.cluster.up();
    await until('relisted', () => h.store.get(vsGk, 'default', 'vs-new') !== undefined && !h.store.get(vsGk, 'default', 'vs-0'));
    await quiet();
    expect(events.map((e) => `${e.type} ${e.config.metadata.name}`).sort()).toEqual(['add vs-new', 'delete vs-0']);
    expect(h.store.get(vsGk, 'default', 'vs-3')).toBe(kept);
    expect(h.cluster.lists.get(`${net}/virtualservices`)).toBe(2);
  });

  it('follows bookmarks and normal watch ends without relisting', async () => {
    const h = harness();
    installIstioCrds(h.cluster);
    h.source.start();
    await h.source.synced();
    h.cluster.put(net, 'v1', 'destinationrules', { apiVersion: `${net}/v1`, kind: 'DestinationRule', metadata: { name: 'dr', namespace: 'default' }, spec: { host: 'x' } } as KubernetesObject);
    h.cluster.bookmark();
    h.cluster.compact(); // history before the bookmark is gone; the bookmark's version is not
    h.cluster.closeWatches();
    await quiet(50);
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('later', 'default'));
    await until('later', () => h.store.get(vsGk, 'default', 'later') !== undefined);
    expect(h.cluster.lists.get(`${net}/virtualservices`)).toBe(1);
    expect(h.store.get(`${net}/DestinationRule`, 'default', 'dr')).toBeDefined();
  });

  it('stops cleanly: no retries or store writes after stop, even though ListWatch reports its own abort', async () => {
    const h = harness();
    installIstioCrds(h.cluster);
    h.source.start();
    await h.source.synced();
    expect(h.cluster.openWatches).toBeGreaterThan(0);
    await h.source.stop();
    await quiet(50);
    expect(h.cluster.openWatches).toBe(0);
    const revision = h.store.revision;
    h.cluster.put(net, 'v1', 'virtualservices', virtualService('late', 'default'));
    await quiet(80);
    expect(h.store.revision).toBe(revision);
    expect(h.logs.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('synced() ends when its signal aborts while the API server does not answer', async () => {
    const h = harness();
    h.cluster.down();
    h.source.start();
    const ac = new AbortController();
    const waiting = h.source.synced(ac.signal);
    setTimeout(() => ac.abort(new Error('interrupted')), 50);
    await expect(waiting).rejects.toThrow('interrupted');
  });
});
