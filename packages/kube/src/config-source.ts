// Config from the cluster: every kind of model's registry that has a CRD (Istio's networking and
// security kinds, Gateway API's) listed and watched into the same ConfigStore the directory
// source feeds, through model's decoder and the caller's validation (galley's), in batches.
import { CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject, Watch } from '@kubernetes/client-node';
import { type Config, type ConfigStore, configKey, groupKind, type KindRegistry, type KindSchema, type Logger, type Problem } from '@weft/model';
import { decodeClusterObject, objectPath, withoutSource } from './convert.ts';
import { type BackoffOptions, ResourceInformer, type WatchLike } from './informer.ts';

/** How collections are listed and watched: the API server through client-node, or a fake (testing entry). */
export interface ClusterClient {
  /** One list of `/apis/<group>/<version>/<plural>` across all namespaces, objects as JSON. */
  list(group: string, version: string, plural: string): Promise<KubernetesListObject<KubernetesObject>>;
  /** The watch transport ListWatch runs over. */
  readonly watch: WatchLike;
}

/** client-node against the cluster of `kc`: lists through the custom-objects API (plain JSON for any group), watches through Watch. */
export function apiServerClient(kc: KubeConfig): ClusterClient {
  const objects = kc.makeApiClient(CustomObjectsApi);
  return {
    list: (group, version, plural) => objects.listClusterCustomObject({ group, version, plural }) as Promise<KubernetesListObject<KubernetesObject>>,
    watch: new Watch(kc),
  };
}

export interface ClusterConfigSourceOptions {
  kubeConfig: KubeConfig;
  store: ConfigStore;
  /** The kinds to watch: every one with `crd: true`. */
  registry: KindRegistry;
  /** Galley's rules; an error keeps the last accepted version of the object in the store. */
  validate?: (config: Config, opts: { structurallyBroken: boolean }) => Problem[];
  logger: Logger;
  /**
   * Changes are applied to the store in batches: after `quietMs` without a new event (default
   * 100), or `burstQuietMs` (default 1000) once the batch holds `burstEvents` objects (default 10),
   * and at the latest `maxMs` after its first event (default 10 s, pilot's own longest debounce).
   */
  batch?: { quietMs?: number; burstQuietMs?: number; burstEvents?: number; maxMs?: number };
  /** Every object in the informers' caches is checked against the store again this often; default 10 min, 0: never. */
  resyncMs?: number;
  backoff?: BackoffOptions;
  watchTimeoutSeconds?: number;
  /** Default: the API server of `kubeConfig`. */
  client?: ClusterClient;
}

const crdGroup = 'apiextensions.k8s.io';
const crdVersion = 'v1';
const crdPlural = 'customresourcedefinitions';

/** The parts of a CustomResourceDefinition read here. */
interface CrdObject extends KubernetesObject {
  spec?: { group?: string; names?: { plural?: string }; versions?: { name?: string; served?: boolean }[] };
  status?: { conditions?: { type?: string; status?: string }[] };
}

interface KindWatch {
  schema: KindSchema;
  /** `virtualservices.networking.istio.io`. */
  crd: string;
  /** The version watched; undefined while the CRD is absent (or serves no version model reads). */
  version?: string;
  informer?: ResourceInformer<KubernetesObject>;
  /** Store keys this source wrote for the kind. */
  owned: Set<string>;
  /** Said once that the CRD is missing. */
  reportedMissing: boolean;
}

/** An object decoded and validated, waiting to be applied with the rest of its batch. */
interface Checked {
  config: Config | undefined;
  errors: Problem[];
  warnings: Problem[];
  subject: { kind: string; apiVersion: string | undefined; namespace: string; name: string; resourceVersion: string | undefined };
}

/** Checking a batch yields to the event loop after this long. */
const sliceMs = 20;

type Pending = { op: 'upsert'; kind: KindWatch; version: string; obj: KubernetesObject } | { op: 'delete'; kind: KindWatch; namespace: string; name: string };

/** An object whose latest version from the cluster failed validation. */
export interface RejectedObject {
  kind: string;
  apiVersion: string | undefined;
  namespace: string;
  name: string;
  resourceVersion: string | undefined;
  /** Whether an older accepted version stays in force. */
  previousInForce: boolean;
  problems: { path: string; message: string; code?: string | undefined }[];
}

export interface ClusterConfigStatus {
  kinds: { kind: string; crd: string; version: string | null; synced: boolean; objects: number }[];
  rejected: RejectedObject[];
  batches: number;
}

/**
 * Keeps the store's share of cluster config equal to the cluster's, minus what fails validation.
 *
 * - Kinds: each kind of the registry with a CRD is watched at the newest version that both its
 *   installed CRD serves and model reads (objects of every version come back converted to it, as
 *   istiod's CRD client does). The CRDs themselves are watched: a kind whose CRD is missing is
 *   skipped with one log line and watched once the CRD is established; a CRD removed takes its
 *   objects out of the store.
 * - Validation: an object that fails (structure or galley's rules; admitted before the webhook
 *   existed) is logged with kind, namespace, name and the reasons, once per resourceVersion, and
 *   never replaces the accepted version; the next valid version replaces it (logged).
 * - Batches: watch events are collected and applied in one synchronous step per burst, so
 *   pilot builds one push from a `kubectl apply` of hundreds of objects. The first batch waits
 *   for every kind's first list (`synced()`).
 */
export class ClusterConfigSource {
  readonly #opts: ClusterConfigSourceOptions;
  readonly #client: ClusterClient;
  readonly #log: Logger;
  readonly #kinds = new Map<string, KindWatch>();
  readonly #crds = new Map<string, CrdObject>();
  readonly #crdInformer: ResourceInformer<KubernetesObject>;
  #crdsListed = false;
  readonly #pending = new Map<string, Pending>();
  readonly #rejected = new Map<string, RejectedObject>();
  #synced = false;
  #running = false;
  #firstPendingAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #again = false;
  #resync: NodeJS.Timeout | undefined;
  #batches = 0;

  constructor(opts: ClusterConfigSourceOptions) {
    this.#opts = opts;
    this.#client = opts.client ?? apiServerClient(opts.kubeConfig);
    this.#log = opts.logger;
    for (const schema of opts.registry.all()) {
      if (!schema.crd) continue;
      const crd = `${schema.plural}.${schema.group}`;
      this.#kinds.set(crd, { schema, crd, owned: new Set(), reportedMissing: false });
    }
    this.#crdInformer = this.#informer(crdGroup, crdVersion, crdPlural, {
      add: (o) => this.#crdChanged(o as CrdObject),
      update: (o) => this.#crdChanged(o as CrdObject),
      delete: (o) => this.#crdDeleted(o as CrdObject),
      listed: (items) => {
        // A relist is the whole truth: a CRD deleted while the watch was down is gone.
        const present = new Set(items.map((o) => o.metadata?.name ?? ''));
        for (const name of [...this.#crds.keys()]) if (!present.has(name)) this.#crds.delete(name);
        this.#crdsListed = true;
        this.#reconcileKinds();
      },
    });
  }

  /** Starts watching; `synced()` tells when the first batch is in the store. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#crdInformer.start();
    const every = this.#opts.resyncMs ?? 600_000;
    if (every > 0) {
      this.#resync = setInterval(() => this.resync(), every);
      this.#resync.unref();
    }
  }

  /**
   * Resolves once the CRDs and every installed kind have been listed and applied to the store.
   * While the API server cannot be reached it keeps waiting (the informers retry); `signal` ends the wait.
   */
  async synced(signal?: AbortSignal): Promise<void> {
    const aborted = new Promise<never>((_, reject) => {
      if (signal?.aborted) reject(signal.reason);
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
    aborted.catch(() => {});
    await Promise.race([this.#crdInformer.synced, aborted]);
    // Kinds whose CRD appeared meanwhile are waited for too.
    for (;;) {
      const waiting = [...this.#kinds.values()].filter((k) => k.informer && !k.informer.hasSynced);
      if (waiting.length === 0) break;
      await Promise.race([Promise.all(waiting.map((k) => k.informer?.synced)), aborted]);
    }
    if (!this.#synced) {
      this.#synced = true;
      await this.#flush();
      const kinds = [...this.#kinds.values()];
      this.#log.info('config from the cluster synced', {
        objects: kinds.reduce((n, k) => n + k.owned.size, 0),
        kinds: kinds.filter((k) => k.version).length,
        missingCrds: kinds.filter((k) => !k.version).map((k) => k.crd),
        rejected: this.#rejected.size,
      });
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#resync) clearInterval(this.#resync);
    await Promise.all([this.#crdInformer.stop(), ...[...this.#kinds.values()].map((k) => k.informer?.stop())]);
  }

  /** Checks every cached object against the store again (also run every `resyncMs`). */
  resync(): void {
    for (const k of this.#kinds.values()) if (k.informer?.hasSynced && k.version) this.#listed(k, k.version, k.informer.list());
  }

  /** What /debug shows: the kinds watched and at which version, and what the cluster holds that was refused. */
  status(): ClusterConfigStatus {
    return {
      kinds: [...this.#kinds.values()].map((k) => ({ kind: `${k.schema.group}/${k.schema.kind}`, crd: k.crd, version: k.version ?? null, synced: k.informer?.hasSynced ?? false, objects: k.owned.size })),
      rejected: [...this.#rejected.values()],
      batches: this.#batches,
    };
  }

  #informer(group: string, version: string, plural: string, handlers: ConstructorParameters<typeof ResourceInformer<KubernetesObject>>[1]): ResourceInformer<KubernetesObject> {
    return new ResourceInformer<KubernetesObject>(
      {
        name: `${plural}.${group}/${version}`,
        path: `/apis/${group}/${version}/${plural}`,
        list: () => this.#client.list(group, version, plural),
        watch: this.#client.watch,
        logger: this.#log,
        ...(this.#opts.backoff ? { backoff: this.#opts.backoff } : {}),
        ...(this.#opts.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: this.#opts.watchTimeoutSeconds } : {}),
      },
      handlers,
    );
  }

  #crdChanged(crd: CrdObject): void {
    const name = crd.metadata?.name;
    if (!name || !this.#kinds.has(name)) return;
    this.#crds.set(name, crd);
    if (this.#crdsListed) this.#reconcileKinds();
  }

  #crdDeleted(crd: CrdObject): void {
    const name = crd.metadata?.name;
    if (!name || !this.#crds.delete(name)) return;
    if (this.#crdsListed) this.#reconcileKinds();
  }

  /** The newest version model reads that the CRD serves, once the CRD is established. */
  #versionFor(k: KindWatch): string | undefined {
    const crd = this.#crds.get(k.crd);
    if (!crd) return undefined;
    const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    if (!established) return undefined;
    const served = new Set((crd.spec?.versions ?? []).filter((v) => v.served).map((v) => v.name));
    return [...k.schema.versions].reverse().find((v) => served.has(v));
  }

  #reconcileKinds(): void {
    if (!this.#running) return;
    for (const k of this.#kinds.values()) {
      const version = this.#versionFor(k);
      if (version === k.version) {
        if (!version && !k.reportedMissing) {
          k.reportedMissing = true;
          const crd = this.#crds.get(k.crd);
          this.#log.info(crd ? 'CRD serves no version Weft reads (or is not established yet); skipping its kind until it does' : 'CRD not installed; skipping its kind until it is', {
            kind: k.schema.kind,
            crd: k.crd,
            ...(crd ? { served: (crd.spec?.versions ?? []).filter((v) => v.served).map((v) => v.name), reads: k.schema.versions } : {}),
          });
        }
        continue;
      }
      const old = k.informer;
      k.informer = undefined;
      if (old) void old.stop();
      const before = k.version;
      k.version = version;
      if (!version) {
        // The CRD is gone (the API server deletes its objects with it): so is the config.
        this.#log.info('CRD removed; its objects leave the config', { kind: k.schema.kind, crd: k.crd, objects: k.owned.size });
        for (const key of k.owned) this.#queueDelete(k, key);
        k.reportedMissing = true;
        continue;
      }
      this.#log.info(before ? 'CRD now serves a newer version; watching it' : k.reportedMissing ? 'CRD installed; watching its kind' : 'watching', { kind: k.schema.kind, crd: k.crd, version });
      k.reportedMissing = false;
      const informer = this.#informer(k.schema.group, version, k.schema.plural, {
        add: (o) => this.#queueUpsert(k, version, o),
        update: (o) => this.#queueUpsert(k, version, o),
        delete: (o) => this.#queueDelete(k, this.#keyOf(k, o)),
        listed: (items) => this.#listed(k, version, items),
      });
      k.informer = informer;
      informer.start();
    }
  }

  #keyOf(k: KindWatch, obj: KubernetesObject): string {
    const ns = k.schema.scope === 'Cluster' ? '' : (obj.metadata?.namespace ?? '');
    return configKey(groupKind(k.schema.group, k.schema.kind), ns, obj.metadata?.name ?? '');
  }

  /** A complete list: everything in it is (re)checked, and what this source stored that it lacks goes. */
  #listed(k: KindWatch, version: string, items: readonly KubernetesObject[]): void {
    if (k.version !== version) return;
    const present = new Set<string>();
    for (const o of items) {
      const key = this.#keyOf(k, o);
      present.add(key);
      this.#queueUpsert(k, version, o);
    }
    for (const key of k.owned) if (!present.has(key)) this.#queueDelete(k, key);
    const prefix = `${groupKind(k.schema.group, k.schema.kind)}/`;
    for (const key of this.#rejected.keys()) if (key.startsWith(prefix) && !present.has(key)) this.#rejected.delete(key);
  }

  #queueUpsert(k: KindWatch, version: string, obj: KubernetesObject): void {
    if (k.version !== version) return;
    this.#pending.set(this.#keyOf(k, obj), { op: 'upsert', kind: k, version, obj });
    this.#schedule();
  }

  #queueDelete(k: KindWatch, key: string): void {
    const [, , namespace = '', name = ''] = splitKey(key);
    this.#pending.set(key, { op: 'delete', kind: k, namespace, name });
    this.#schedule();
  }

  #schedule(): void {
    if (!this.#synced || !this.#running) return;
    // One edit goes through after 100 ms. A burst (kubectl apply of a directory: one request or two
    // per object, and a busy machine pauses it for a few hundred ms now and then) waits longer
    // between events, so that it is one batch, one push, rather than one per pause.
    const b = this.#opts.batch;
    const quiet = this.#pending.size >= (b?.burstEvents ?? 10) ? (b?.burstQuietMs ?? 1000) : (b?.quietMs ?? 100);
    const max = this.#opts.batch?.maxMs ?? 10_000;
    const now = Date.now();
    if (!this.#timer) this.#firstPendingAt = now;
    else clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(quiet, this.#firstPendingAt + max - now));
    this.#timer = setTimeout(() => void this.#flush(), wait);
  }

  /** Applies every pending change: checked in slices of the event loop, then written in one synchronous step. */
  #flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#flushing) {
      this.#again = true;
      return this.#flushing;
    }
    this.#flushing = (async () => {
      do {
        this.#again = false;
        await this.#flushOnce();
      } while (this.#again && this.#pending.size > 0 && this.#running);
    })().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    if (this.#pending.size === 0) return;
    const pending = [...this.#pending];
    this.#pending.clear();
    // Decoding and galley's rules cost ~0.1 ms an object: thousands of them yield to the event loop
    // (health checks, xDS) every 20 ms, as the directory source does; the store sees one step.
    const checked: [string, Pending, Checked | undefined][] = [];
    let sliceStart = performance.now();
    for (const [key, p] of pending) {
      if (performance.now() - sliceStart > sliceMs) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      checked.push([key, p, p.op === 'upsert' && !this.#unchanged(key, p) ? this.#check(p.kind, p.version, p.obj) : undefined]);
    }
    if (!this.#running) return;
    this.#batches++;
    let upserts = 0;
    let deletes = 0;
    let rejected = 0;
    for (const [key, p, c] of checked) {
      if (p.op === 'delete') {
        this.#rejected.delete(key);
        if (!p.kind.owned.delete(key)) continue;
        if (this.#opts.store.delete(groupKind(p.kind.schema.group, p.kind.schema.kind), p.namespace, p.name)) deletes++;
        continue;
      }
      // Its CRD went away (or moved to another version) while it was being checked.
      if (!c || p.kind.version !== p.version) continue;
      const result = this.#apply(key, p.kind, c);
      if (result === 'rejected') rejected++;
      else if (result === 'changed') upserts++;
    }
    this.#log.debug('config batch applied', { events: pending.length, upserts, deletes, rejected, storeRevision: this.#opts.store.revision });
  }

  /**
   * The object at this resourceVersion, read at this API version, is the one already accepted or
   * refused: nothing to check again (relists and resyncs of thousands of unchanged objects).
   */
  #unchanged(key: string, p: Extract<Pending, { op: 'upsert' }>): boolean {
    const rv = p.obj.metadata?.resourceVersion;
    if (rv === undefined) return false;
    const refused = this.#rejected.get(key);
    if (refused) return refused.resourceVersion === rv && refused.apiVersion === p.obj.apiVersion;
    const [, , namespace, name] = splitKey(key);
    const stored = this.#opts.store.get(groupKind(p.kind.schema.group, p.kind.schema.kind), namespace, name);
    return stored?.metadata.resourceVersion === rv && stored.apiVersion === `${p.kind.schema.group}/${p.version}` && p.kind.owned.has(key);
  }

  #check(k: KindWatch, version: string, obj: KubernetesObject): Checked {
    const namespace = k.schema.scope === 'Cluster' ? '' : (obj.metadata?.namespace ?? '');
    const name = obj.metadata?.name ?? '';
    const decoded = decodeClusterObject(obj, this.#opts.registry, objectPath(k.schema.group, version, k.schema.plural, namespace, name));
    const broken = decoded.problems.some((p) => p.severity === 'error');
    const semantic = decoded.config ? (this.#opts.validate?.(decoded.config, { structurallyBroken: broken }) ?? []) : [];
    const problems = [...decoded.problems, ...semantic];
    return {
      config: decoded.config && withoutSource(decoded.config),
      errors: problems.filter((p) => p.severity === 'error'),
      warnings: problems.filter((p) => p.severity === 'warning'),
      subject: { kind: k.schema.kind, apiVersion: `${k.schema.group}/${version}`, namespace, name, resourceVersion: obj.metadata?.resourceVersion },
    };
  }

  #apply(key: string, k: KindWatch, c: Checked): 'changed' | 'unchanged' | 'rejected' {
    const { subject } = c;
    if (c.errors.length > 0 || !c.config) {
      const seen = this.#rejected.get(key);
      const previousInForce = k.owned.has(key);
      const reasons = c.errors.map((p) => ({ path: p.path, message: p.message, code: p.code }));
      this.#rejected.set(key, { ...subject, previousInForce, problems: reasons });
      if (seen?.resourceVersion !== subject.resourceVersion || subject.resourceVersion === undefined) {
        this.#log.error(previousInForce ? 'config rejected; the last accepted version stays in force' : 'config rejected; the object is left out of the config until it is fixed', {
          ...subject,
          problems: reasons.map((r) => `${r.path ? `${r.path}: ` : ''}${r.message}${r.code ? ` [${r.code}]` : ''}`),
        });
      }
      return 'rejected';
    }
    const wasRejected = this.#rejected.delete(key);
    const stored = this.#opts.store.upsert(c.config);
    k.owned.add(key);
    if (wasRejected) this.#log.info('config accepted', subject);
    if (stored && c.warnings.length > 0) this.#log.warn('config warning', { ...subject, problems: c.warnings.map((p) => `${p.path ? `${p.path}: ` : ''}${p.message}`) });
    return stored ? 'changed' : 'unchanged';
  }
}

/** `group/Kind/namespace/name` -> its parts (the name may not contain `/`; the namespace may be empty). */
function splitKey(key: string): [string, string, string, string] {
  const parts = key.split('/');
  const name = parts.pop() ?? '';
  const namespace = parts.pop() ?? '';
  const kind = parts.pop() ?? '';
  return [parts.join('/'), kind, namespace, name];
}
