// A fake API server for the unit tests of this package's consumers of list and watch (the config
// source, the registries): collections with resourceVersions and an event history, watched
// through client-node's real ListWatch over a fake Watch, so ListWatch's own behaviour (relist
// after 410, resuming from the last resourceVersion, stopping at an error) is what the tests see.
// Tests against a real API server are the *.kube.test.ts files.
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { ClusterClient } from './config-source.ts';
import type { WatchLike } from './informer.ts';

type Obj = KubernetesObject & Record<string, unknown>;

interface Watcher {
  collection: string;
  callback: (phase: string, obj: unknown) => void;
  done: (err: unknown) => void;
  controller: AbortController;
}

interface HistoryEvent {
  rv: number;
  collection: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  obj: Obj;
}

/** Why a fake list or watch failed: looks like client-node's errors (statusCode) or a refused connection. */
export class FakeApiError extends Error {
  readonly statusCode: number | undefined;
  readonly code: string | undefined;
  constructor(message: string, statusCode?: number, code?: string) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}

const clone = <T>(v: T): T => structuredClone(v);

/**
 * An in-memory API server: `put`/`remove` objects of any collection (`group/version/plural`),
 * `down()`/`up()` to refuse every list and watch (and end open watches) as a stopped API server
 * does, `compact()` so that watches from older resourceVersions get 410 Gone.
 */
export class FakeCluster implements ClusterClient {
  /** collection -> `namespace/name` -> object. */
  readonly #objects = new Map<string, Map<string, Obj>>();
  readonly #history: HistoryEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  #rv = 100;
  #compactedTo = 0;
  #down = false;
  /** Lists served, per collection. */
  readonly lists = new Map<string, number>();
  /** Watches opened, per collection, with the resourceVersion each started from. */
  readonly watches: { collection: string; resourceVersion: string }[] = [];

  /** Creates or replaces; sets resourceVersion (and creationTimestamp on create, kept on update). */
  put(group: string, version: string, plural: string, obj: KubernetesObject): Obj {
    const collection = `${group}/${plural}`;
    const objects = this.#objects.get(collection) ?? new Map<string, Obj>();
    this.#objects.set(collection, objects);
    const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
    const previous = objects.get(key);
    const rv = ++this.#rv;
    const stored: Obj = {
      ...clone(obj as Obj),
      apiVersion: `${group}/${version}`,
      metadata: {
        ...clone(obj.metadata ?? {}),
        resourceVersion: String(rv),
        creationTimestamp: previous?.metadata?.creationTimestamp ?? obj.metadata?.creationTimestamp ?? new Date(1_800_000_000_000 + rv * 1000),
        uid: previous?.metadata?.uid ?? `uid-${rv}`,
      },
    };
    // The wire carries RFC 3339 text.
    const meta = stored.metadata as { creationTimestamp?: unknown };
    if (meta.creationTimestamp instanceof Date) meta.creationTimestamp = `${meta.creationTimestamp.toISOString().slice(0, 19)}Z`;
    objects.set(key, stored);
    this.#publish({ rv, collection, type: previous ? 'MODIFIED' : 'ADDED', obj: stored });
    return stored;
  }

  remove(group: string, plural: string, namespace: string, name: string): boolean {
    const collection = `${group}/${plural}`;
    const objects = this.#objects.get(collection);
    const key = `${namespace}/${name}`;
    const gone = objects?.get(key);
    if (!objects || !gone) return false;
    objects.delete(key);
    const rv = ++this.#rv;
    this.#publish({ rv, collection, type: 'DELETED', obj: { ...gone, metadata: { ...gone.metadata, resourceVersion: String(rv) } } });
    return true;
  }

  get(group: string, plural: string, namespace: string, name: string): Obj | undefined {
    return this.#objects.get(`${group}/${plural}`)?.get(`${namespace}/${name}`);
  }

  /** Sends a BOOKMARK with the current resourceVersion to every open watch. */
  bookmark(): void {
    for (const w of this.#watchers) w.callback('BOOKMARK', { kind: 'Bookmark', metadata: { resourceVersion: String(this.#rv) } });
  }

  /** Forgets the history up to now: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.#compactedTo = this.#rv;
    this.#history.length = 0;
  }

  /** The API server stops: open watches end with a connection error, lists and watches are refused. */
  down(): void {
    this.#down = true;
    for (const w of [...this.#watchers]) this.#end(w, new FakeApiError('read ECONNRESET', undefined, 'ECONNRESET'));
  }

  up(): void {
    this.#down = false;
  }

  /** Ends every open watch normally (as the server does at timeoutSeconds). */
  closeWatches(): void {
    for (const w of [...this.#watchers]) this.#end(w, null);
  }

  get openWatches(): number {
    return this.#watchers.size;
  }

  async list(group: string, version: string, plural: string): Promise<KubernetesListObject<KubernetesObject>> {
    await Promise.resolve();
    if (this.#down) throw new FakeApiError('connect ECONNREFUSED 127.0.0.1:6443', undefined, 'ECONNREFUSED');
    const collection = `${group}/${plural}`;
    this.lists.set(collection, (this.lists.get(collection) ?? 0) + 1);
    const items = [...(this.#objects.get(collection)?.values() ?? [])].map((o) => ({ ...clone(o), apiVersion: `${group}/${version}` }));
    return { apiVersion: `${group}/${version}`, kind: 'List', metadata: { resourceVersion: String(this.#rv) }, items };
  }

  /** What client-node's Watch offers ListWatch: `watch(path, query, callback, done)` -> an AbortController. */
  readonly watch: WatchLike = {
    watch: async (path: string, query: Record<string, string | number | boolean | undefined>, callback: (phase: string, obj: unknown) => void, done: (err: unknown) => void): Promise<AbortController> => {
      const controller = new AbortController();
      const m = /^\/apis\/([^/]+)\/([^/]+)\/([^/?]+)/.exec(path);
      const collection = m ? `${m[1]}/${m[3]}` : path;
      const version = m?.[2] ?? '';
      const from = Number(query.resourceVersion ?? 0);
      await Promise.resolve();
      if (this.#down) {
        done(new FakeApiError('connect ECONNREFUSED 127.0.0.1:6443', undefined, 'ECONNREFUSED'));
        return controller;
      }
      this.watches.push({ collection, resourceVersion: String(query.resourceVersion ?? '') });
      if (from < this.#compactedTo) {
        // As the API server: 200, one ERROR event with 410, then the stream ends.
        callback('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from} (${this.#compactedTo})` });
        setImmediate(() => done(null));
        return controller;
      }
      const w: Watcher = { collection, callback: (phase, obj) => callback(phase, withVersion(obj, group(collection), version)), done, controller };
      this.#watchers.add(w);
      for (const e of this.#history) if (e.collection === collection && e.rv > from) w.callback(e.type, clone(e.obj));
      // A client that aborts gets an error from its stream, as with node-fetch (ListWatch reports it).
      controller.signal.addEventListener('abort', () => this.#end(w, new FakeApiError('The operation was aborted.', undefined, 'ABORT_ERR')));
      return controller;
    },
  };

  #end(w: Watcher, err: unknown): void {
    if (!this.#watchers.delete(w)) return;
    setImmediate(() => w.done(err));
  }

  #publish(e: HistoryEvent): void {
    this.#history.push(e);
    for (const w of [...this.#watchers]) if (w.collection === e.collection) w.callback(e.type, clone(e.obj));
  }
}

function group(collection: string): string {
  return collection.slice(0, collection.lastIndexOf('/'));
}

function withVersion(obj: unknown, g: string, version: string): unknown {
  if (typeof obj !== 'object' || obj === null || (obj as { kind?: string }).kind === 'Bookmark' || (obj as { kind?: string }).kind === 'Status') return obj;
  return { ...(obj as object), apiVersion: `${g}/${version}` };
}

/** A CustomResourceDefinition as the API server shows an established one (for FakeCluster.put). */
export function establishedCrd(plural: string, group: string, kind: string, versions: readonly string[], scope: 'Namespaced' | 'Cluster' = 'Namespaced'): KubernetesObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: { group, names: { kind, plural }, scope, versions: versions.map((name, i) => ({ name, served: true, storage: i === versions.length - 1 })) },
    status: { conditions: [{ type: 'Established', status: 'True' }] },
  } as KubernetesObject;
}
