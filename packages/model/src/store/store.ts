import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { type Config, type GroupKind, groupKindOf } from '../config/config.ts';

export type ConfigEventType = 'add' | 'update' | 'delete';

export interface ConfigEvent {
  type: ConfigEventType;
  /** The object after the change (for delete: the object as it was). */
  config: Config;
  /** For update: the object before the change. */
  previous?: Config;
}

export type ConfigHandler = (event: ConfigEvent) => void;

/** The key of one object: `networking.istio.io/VirtualService/default/reviews`. */
export function configKey(gk: GroupKind, namespace: string, name: string): string {
  return `${gk}/${namespace}/${name}`;
}

export function keyOf(config: Config): string {
  return configKey(groupKindOf(config), config.metadata.namespace, config.metadata.name);
}

/** JSON with sorted keys, for comparing plain data by value (whatever order its keys were written in). */
export function canonicalJson(v: unknown): string {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v) ?? 'null';
  // Loops rather than map/join: analysis of an apply compares every match of thousands of VirtualServices.
  let out: string;
  if (Array.isArray(v)) {
    out = '[';
    for (let i = 0; i < v.length; i++) out += (i > 0 ? ',' : '') + canonicalJson(v[i]);
    return `${out}]`;
  }
  const keys = Object.keys(v);
  if (keys.length > 1) keys.sort();
  out = '{';
  for (let i = 0; i < keys.length; i++) out += `${i > 0 ? ',' : ''}${JSON.stringify(keys[i])}:${canonicalJson((v as Record<string, unknown>)[keys[i]!])}`;
  return `${out}}`;
}

/**
 * A short digest of a spec (of its canonical JSON: keys sorted): two parties that read the same
 * object compare digests instead of sending whole specs (weftctl apply waiting on weftd). Sorted,
 * because they read it from different places: a file keeps its author's key order, the API server
 * gives an object back with its keys in its own order.
 */
export function specDigest(spec: unknown): string {
  return createHash('sha256')
    .update(spec === undefined ? '' : canonicalJson(spec))
    .digest('base64url')
    .slice(0, 22);
}

/** What every config store offers: reads, writes that report what changed, and a watch. */
export interface ConfigStore {
  get(gk: GroupKind, namespace: string, name: string): Config | undefined;
  /** All objects of a kind, in one namespace or all; sorted by namespace then name. */
  list(gk: GroupKind, namespace?: string): Config[];
  /** Every object of every kind. */
  all(): Config[];
  /** Creates or replaces; returns the stored object, or undefined when nothing changed. */
  upsert(config: Config): Config | undefined;
  delete(gk: GroupKind, namespace: string, name: string): Config | undefined;
  watch(handler: ConfigHandler): () => void;
  /** Increments on every change; a cheap "has anything changed" check. */
  readonly revision: number;
}

/**
 * In-memory store. Single-threaded by construction (Node): a write and its events complete
 * before the next write starts. Handlers run synchronously in registration order; a handler
 * that throws is reported and does not stop the others.
 */
export class MemoryConfigStore implements ConfigStore {
  readonly #objects = new Map<string, Config>();
  readonly #byKind = new Map<GroupKind, Map<string, Config>>();
  readonly #handlers = new Set<ConfigHandler>();
  #revision = 0;
  readonly #onHandlerError: (error: unknown) => void;

  constructor(opts: { onHandlerError?: (error: unknown) => void } = {}) {
    this.#onHandlerError = opts.onHandlerError ?? ((e) => console.error(JSON.stringify({ level: 'error', msg: 'config watcher failed', error: String(e) })));
  }

  get revision(): number {
    return this.#revision;
  }

  get(gk: GroupKind, namespace: string, name: string): Config | undefined {
    return this.#objects.get(configKey(gk, namespace, name));
  }

  list(gk: GroupKind, namespace?: string): Config[] {
    const m = this.#byKind.get(gk);
    if (!m) return [];
    const out = [...m.values()].filter((c) => namespace === undefined || c.metadata.namespace === namespace);
    return out.sort(compareConfigs);
  }

  all(): Config[] {
    return [...this.#objects.values()].sort(compareConfigs);
  }

  upsert(config: Config): Config | undefined {
    const key = keyOf(config);
    const previous = this.#objects.get(key);
    // (A new generation from the source is a change even when what this store keeps of the spec is not.)
    const sameGeneration = config.metadata.generation === undefined || config.metadata.generation === previous?.metadata.generation;
    if (previous && sameGeneration && sameContent(previous, config)) {
      // Same content from moved text: keep positions current without announcing a change.
      if (config.source) previous.source = config.source;
      return undefined;
    }
    this.#revision++;
    // A source with its own versions (the API server's) keeps them, as istiod shows them; others get
    // the store's. The API server's generation must be kept, not recounted: an object created and
    // patched before its source's batch reached the store arrives once, already at generation 2, and
    // a recount would say 1 for good (Gateway API statuses would report observedGeneration 1 for ever).
    const specChanged = !previous || !isDeepStrictEqual(previous.spec, config.spec);
    const generation = config.metadata.generation ?? (previous?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
    const resourceVersion = config.metadata.resourceVersion ?? String(this.#revision);
    const stored: Config = { ...config, metadata: { ...config.metadata, resourceVersion, generation } };
    this.#objects.set(key, stored);
    const gk = groupKindOf(config);
    const m = this.#byKind.get(gk) ?? new Map<string, Config>();
    this.#byKind.set(gk, m);
    m.set(key, stored);
    this.#emit(previous ? { type: 'update', config: stored, previous } : { type: 'add', config: stored });
    return stored;
  }

  delete(gk: GroupKind, namespace: string, name: string): Config | undefined {
    const key = configKey(gk, namespace, name);
    const previous = this.#objects.get(key);
    if (!previous) return undefined;
    this.#revision++;
    this.#objects.delete(key);
    this.#byKind.get(gk)?.delete(key);
    this.#emit({ type: 'delete', config: previous });
    return previous;
  }

  watch(handler: ConfigHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  #emit(event: ConfigEvent): void {
    for (const h of this.#handlers) {
      try {
        h(event);
      } catch (e) {
        this.#onHandlerError(e);
      }
    }
  }
}

function compareConfigs(a: Config, b: Config): number {
  return a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name) || a.kind.localeCompare(b.kind);
}

/** Same object for a store's purposes: content equal, ignoring the store's own bookkeeping and the source. */
function sameContent(a: Config, b: Config): boolean {
  const strip = (c: Config) => {
    const { resourceVersion: _rv, generation: _g, ...meta } = c.metadata;
    return { apiVersion: c.apiVersion, kind: c.kind, metadata: meta, spec: c.spec, status: c.status };
  };
  return isDeepStrictEqual(strip(a), strip(b));
}
