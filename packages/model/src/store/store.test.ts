import { describe, expect, it } from 'vitest';
import type { Config } from '../config/config.ts';
import { canonicalJson, type ConfigEvent, MemoryConfigStore, specDigest } from './store.ts';

const gk = 'test.weft.dev/Widget';
const widget = (name: string, spec: unknown, namespace = 'default'): Config => ({ apiVersion: 'test.weft.dev/v1', kind: 'Widget', metadata: { name, namespace }, spec });

describe('MemoryConfigStore', () => {
  it('emits add, update and delete, and versions objects', () => {
    const store = new MemoryConfigStore();
    const events: ConfigEvent[] = [];
    store.watch((e) => events.push(e));
    const a = store.upsert(widget('a', { x: 1 }))!;
    expect(a.metadata).toEqual(expect.objectContaining({ resourceVersion: '1', generation: 1 }));
    expect(store.upsert(widget('a', { x: 1 }))).toBeUndefined();
    const b = store.upsert(widget('a', { x: 2 }))!;
    expect(b.metadata.generation).toBe(2);
    store.upsert({ ...widget('a', { x: 2 }), metadata: { name: 'a', namespace: 'default', labels: { l: 'v' } } });
    expect(store.get(gk, 'default', 'a')!.metadata.generation).toBe(2);
    expect(store.delete(gk, 'default', 'a')).toBeDefined();
    expect(store.delete(gk, 'default', 'a')).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(['add', 'update', 'update', 'delete']);
    expect(events[1]!.previous!.spec).toEqual({ x: 1 });
    expect(store.revision).toBe(4);
  });
  it("keeps a source's own resourceVersion (the API server's) and numbers the rest", () => {
    const store = new MemoryConfigStore();
    store.upsert(widget('plain', {}));
    const fromCluster = store.upsert({ ...widget('kube', { x: 1 }), metadata: { name: 'kube', namespace: 'default', resourceVersion: '48213' } })!;
    expect(fromCluster.metadata).toEqual(expect.objectContaining({ resourceVersion: '48213', generation: 1 }));
    expect(store.get(gk, 'default', 'plain')!.metadata.resourceVersion).toBe('1');
    // A new cluster version with the same content changes nothing (no event, no push).
    expect(store.upsert({ ...widget('kube', { x: 1 }), metadata: { name: 'kube', namespace: 'default', resourceVersion: '48999' } })).toBeUndefined();
    const edited = store.upsert({ ...widget('kube', { x: 2 }), metadata: { name: 'kube', namespace: 'default', resourceVersion: '49000' } })!;
    expect(edited.metadata).toEqual(expect.objectContaining({ resourceVersion: '49000', generation: 2 }));
  });
  it("keeps a source's own generation: an object first seen after its second edit says generation 2, not 1", () => {
    const store = new MemoryConfigStore();
    // created (generation 1) and patched (2) before the watch's batch reached the store: one upsert
    const seen = store.upsert({ ...widget('route', { x: 2 }), metadata: { name: 'route', namespace: 'default', resourceVersion: '500', generation: 2 } })!;
    expect(seen.metadata.generation).toBe(2);
    // a status write: new resourceVersion, same spec and generation
    store.upsert({ ...widget('route', { x: 2 }), metadata: { name: 'route', namespace: 'default', resourceVersion: '501', generation: 2 } });
    expect(store.get(gk, 'default', 'route')!.metadata.generation).toBe(2);
    const edited = store.upsert({ ...widget('route', { x: 3 }), metadata: { name: 'route', namespace: 'default', resourceVersion: '502', generation: 3 } })!;
    expect(edited.metadata.generation).toBe(3);
  });
  it('lists by kind and namespace in order', () => {
    const store = new MemoryConfigStore();
    store.upsert(widget('b', {}, 'prod'));
    store.upsert(widget('a', {}, 'prod'));
    store.upsert(widget('c', {}));
    expect(store.list(gk).map((c) => c.metadata.name)).toEqual(['c', 'a', 'b']);
    expect(store.list(gk, 'prod').map((c) => c.metadata.name)).toEqual(['a', 'b']);
    expect(store.list('other/Kind')).toEqual([]);
  });
  it('keeps notifying other watchers when one throws', () => {
    const errors: unknown[] = [];
    const store = new MemoryConfigStore({ onHandlerError: (e) => errors.push(e) });
    const seen: string[] = [];
    store.watch(() => {
      throw new Error('boom');
    });
    store.watch((e) => seen.push(e.type));
    store.upsert(widget('a', {}));
    expect(seen).toEqual(['add']);
    expect(String(errors[0])).toBe('Error: boom');
  });
});

describe('specDigest', () => {
  it('is the same for the same spec whatever order its keys come in (a file vs. the API server), and differs by value', () => {
    // the API server hands a DestinationRule subset back as {labels, name}; Istio's file says {name, labels}
    const fromFile = { host: 'productpage', subsets: [{ name: 'v1', labels: { version: 'v1' } }] };
    const fromCluster = { subsets: [{ labels: { version: 'v1' }, name: 'v1' }], host: 'productpage' };
    expect(specDigest(fromCluster)).toBe(specDigest(fromFile));
    expect(specDigest({ ...fromFile, subsets: [{ name: 'v2', labels: { version: 'v2' } }] })).not.toBe(specDigest(fromFile));
    // array order is meaning (routes, matches): not sorted
    expect(specDigest({ hosts: ['a', 'b'] })).not.toBe(specDigest({ hosts: ['b', 'a'] }));
    expect(canonicalJson(fromCluster)).toBe('{"host":"productpage","subsets":[{"labels":{"version":"v1"},"name":"v1"}]}');
  });
});
