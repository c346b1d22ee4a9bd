// Trust distribution on Kubernetes, as istiod's namespace controller: ConfigMap
// `istio-ca-root-cert` (key `root-cert.pem`) in every namespace, which injected pods mount to
// verify the control plane and their peers. Two informers drive it: Namespaces (a new one gets the
// ConfigMap at once) and ConfigMaps of that name (one deleted or edited is put back). Each event
// queues its namespace; a worker compares the ConfigMap with the root and creates or patches it.
// Only the leader runs this (see leader-election.ts): replicas never fight over the ConfigMaps.
import { CoreV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject, PatchStrategy, setHeaderOptions, type V1ConfigMap, type V1Namespace, Watch } from '@kubernetes/client-node';
import { createLogger, type K8sLabelSelector, labelSelectorMatches, type Logger } from '@weft/model';
import { apiStatusOf } from './client.ts';
import { ignoredNamespaces } from './inject/selection.ts';
import { type BackoffOptions, describeError, ResourceInformer } from './informer.ts';

/** Istio's names: the ConfigMap, its key, and the label istiod puts on it. */
export const rootCertConfigMapName = 'istio-ca-root-cert';
export const rootCertConfigMapKey = 'root-cert.pem';
const configMapLabels = { 'istio.io/config': 'true' };

/** Namespaces that never get the ConfigMap: istiod's, those never injected except kube-system (where node agents run). */
export const rootCertIgnoredNamespaces: readonly string[] = ignoredNamespaces.filter((ns) => ns !== 'kube-system');

export interface RootCertPublisherOptions {
  kubeConfig: KubeConfig;
  /** The trusted roots, PEM (the CA's root-cert.pem). */
  rootCertPem: string;
  logger?: Logger;
  ignoredNamespaces?: readonly string[];
  /** MeshConfig's discoverySelectors: only namespaces whose labels match one of these get the ConfigMap; empty: every namespace (as istiod). */
  discoverySelectors?: readonly K8sLabelSelector[];
  /** Retries of a namespace whose write failed: first after `initialMs` (default 100), doubling to `maxMs` (default 30 s). Also the informers'. */
  backoff?: BackoffOptions;
}

export interface RootCertPublisherStatus {
  namespaces: number;
  /** Namespaces whose ConfigMap holds the current root, as last seen. */
  current: number;
  /** Namespaces queued or waiting to retry. */
  pending: string[];
  /** Creates and patches done since start. */
  writes: number;
  /** Last failure per namespace still failing. */
  failing: Record<string, string>;
}

export class RootCertPublisher {
  readonly #api: CoreV1Api;
  readonly #log: Logger;
  readonly #ignored: ReadonlySet<string>;
  readonly #selectors: readonly K8sLabelSelector[];
  readonly #backoff: Required<BackoffOptions>;
  readonly #namespaces: ResourceInformer<V1Namespace>;
  readonly #configMaps: ResourceInformer<V1ConfigMap>;
  /** Namespace name -> terminating. */
  readonly #nsState = new Map<string, boolean>();
  /** Namespace -> the root-cert.pem of its ConfigMap as last seen (null: the ConfigMap has no such key). */
  readonly #published = new Map<string, string | null>();
  readonly #queue = new Set<string>();
  readonly #retries = new Map<string, { attempts: number; timer?: NodeJS.Timeout }>();
  readonly #failing = new Map<string, string>();
  #root: string;
  #running = false;
  #working = false;
  #writes = 0;
  #idle: (() => void)[] = [];

  constructor(options: RootCertPublisherOptions) {
    this.#api = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#log = options.logger ?? createLogger({ scope: 'kube' });
    this.#root = options.rootCertPem;
    this.#ignored = new Set(options.ignoredNamespaces ?? rootCertIgnoredNamespaces);
    this.#selectors = options.discoverySelectors ?? [];
    this.#backoff = { initialMs: options.backoff?.initialMs ?? 100, maxMs: options.backoff?.maxMs ?? 30_000 };
    const common = { watch: new Watch(options.kubeConfig), logger: this.#log, ...(options.backoff ? { backoff: options.backoff } : {}) };
    this.#namespaces = new ResourceInformer<V1Namespace>(
      { ...common, name: 'namespaces/v1', path: '/api/v1/namespaces', list: () => this.#api.listNamespace() },
      {
        add: (ns) => this.#namespaceSeen(ns),
        update: (ns) => this.#namespaceSeen(ns),
        delete: (ns) => {
          const name = ns.metadata?.name ?? '';
          this.#nsState.delete(name);
          this.#published.delete(name);
          this.#forget(name);
        },
      },
    );
    const selector = `metadata.name=${rootCertConfigMapName}`;
    this.#configMaps = new ResourceInformer<V1ConfigMap>(
      {
        ...common,
        name: `configmaps/v1 ${rootCertConfigMapName}`,
        path: `/api/v1/configmaps?fieldSelector=${encodeURIComponent(selector)}`,
        list: () => this.#api.listConfigMapForAllNamespaces({ fieldSelector: selector }) as Promise<KubernetesListObject<V1ConfigMap>>,
      },
      {
        add: (cm) => this.#configMapSeen(cm),
        update: (cm) => this.#configMapSeen(cm),
        delete: (cm) => {
          const ns = cm.metadata?.namespace ?? '';
          this.#published.delete(ns);
          this.#enqueue(ns);
        },
      },
    );
  }

  /** The root being published. */
  get rootCertPem(): string {
    return this.#root;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#configMaps.start();
    this.#namespaces.start();
  }

  /** Resolves once both informers have listed (and the namespaces they named are queued). */
  async synced(): Promise<void> {
    await Promise.all([this.#namespaces.synced, this.#configMaps.synced]);
  }

  /** Resolves when nothing is queued or being written (retries may still be scheduled). */
  idle(): Promise<void> {
    if (!this.#working && this.#queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const r of this.#retries.values()) clearTimeout(r.timer);
    this.#retries.clear();
    this.#queue.clear();
    await Promise.all([this.#namespaces.stop(), this.#configMaps.stop()]);
  }

  /** A new root (the CA's keys changed): every namespace's ConfigMap is brought to it. */
  setRoot(rootCertPem: string): void {
    if (rootCertPem === this.#root) return;
    this.#root = rootCertPem;
    this.#log.info('root certificate changed; updating every namespace', { configMap: rootCertConfigMapName, namespaces: this.#nsState.size });
    for (const ns of this.#nsState.keys()) this.#enqueue(ns);
  }

  status(): RootCertPublisherStatus {
    let current = 0;
    for (const ns of this.#nsState.keys()) if (this.#published.get(ns) === this.#root) current++;
    return {
      namespaces: this.#nsState.size,
      current,
      pending: [...new Set([...this.#queue, ...this.#retries.keys()])].sort(),
      writes: this.#writes,
      failing: Object.fromEntries(this.#failing),
    };
  }

  #namespaceSeen(ns: V1Namespace): void {
    const name = ns.metadata?.name;
    if (!name || this.#ignored.has(name)) return;
    const labels = ns.metadata?.labels ?? {};
    if (this.#selectors.length > 0 && !this.#selectors.some((s) => labelSelectorMatches(s, labels))) {
      // Outside the mesh's namespaces (or relabelled out of them): left alone.
      this.#nsState.delete(name);
      this.#forget(name);
      return;
    }
    const terminating = ns.status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp !== undefined;
    this.#nsState.set(name, terminating);
    if (terminating) this.#forget(name);
    else this.#enqueue(name);
  }

  #configMapSeen(cm: KubernetesObject & { data?: Record<string, string> }): void {
    const ns = cm.metadata?.namespace ?? '';
    this.#published.set(ns, cm.data?.[rootCertConfigMapKey] ?? null);
    if (cm.data?.[rootCertConfigMapKey] !== this.#root) this.#enqueue(ns);
  }

  #forget(ns: string): void {
    this.#queue.delete(ns);
    clearTimeout(this.#retries.get(ns)?.timer);
    this.#retries.delete(ns);
    this.#failing.delete(ns);
  }

  #enqueue(ns: string): void {
    if (!this.#running || !ns || this.#ignored.has(ns)) return;
    const retry = this.#retries.get(ns);
    // A namespace waiting out a backoff is retried then; an event does not cut the wait short.
    if (retry?.timer) return;
    this.#queue.add(ns);
    if (!this.#working) void this.#work();
  }

  async #work(): Promise<void> {
    this.#working = true;
    try {
      while (this.#running && this.#queue.size > 0) {
        const ns = this.#queue.values().next().value as string;
        this.#queue.delete(ns);
        try {
          await this.#reconcile(ns);
          this.#retries.delete(ns);
          if (this.#failing.delete(ns)) this.#log.info('root certificate ConfigMap written after failures', { namespace: ns });
        } catch (err) {
          this.#scheduleRetry(ns, err);
        }
      }
    } finally {
      this.#working = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  #scheduleRetry(ns: string, err: unknown): void {
    if (!this.#running) return;
    const r = this.#retries.get(ns) ?? { attempts: 0 };
    const delay = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** r.attempts);
    r.attempts++;
    const error = describeError(err);
    if (!this.#failing.has(ns)) this.#log.warn('cannot write the root certificate ConfigMap; retrying', { namespace: ns, error, retryInMs: delay });
    this.#failing.set(ns, error);
    r.timer = setTimeout(() => {
      r.timer = undefined;
      this.#enqueue(ns);
    }, delay);
    this.#retries.set(ns, r);
  }

  /** Brings one namespace's ConfigMap to the current root. */
  async #reconcile(ns: string): Promise<void> {
    const terminating = this.#nsState.get(ns);
    // Gone or going: a ConfigMap cannot be created in it (Istio skips these too).
    if (terminating === undefined || terminating) return;
    const published = this.#published.get(ns);
    const root = this.#root;
    if (published === root) return;
    try {
      if (published === undefined) {
        await this.#api.createNamespacedConfigMap({
          namespace: ns,
          body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: rootCertConfigMapName, namespace: ns, labels: configMapLabels }, data: { [rootCertConfigMapKey]: root } },
        });
        this.#log.info('published the root certificate', { namespace: ns, configMap: rootCertConfigMapName });
      } else {
        await this.#patch(ns, root);
        this.#log.info('restored the root certificate ConfigMap', { namespace: ns, configMap: rootCertConfigMapName, was: published === null ? 'without root-cert.pem' : 'another certificate' });
      }
      this.#writes++;
    } catch (err) {
      const status = apiStatusOf(err);
      // Created meanwhile (our cache lags): bring that one to the root instead.
      if (status === 409) {
        await this.#patch(ns, root);
        this.#writes++;
        return;
      }
      // The namespace went away or is terminating between the event and the write: nothing to do.
      if (status === 404 || (status === 403 && /being terminated|NamespaceTerminating/i.test(describeError(err)))) return;
      throw err;
    }
    // Until the informer reports the write, assume it holds (a later event corrects this).
    this.#published.set(ns, root);
  }

  async #patch(ns: string, root: string): Promise<void> {
    // A merge patch of the one key: other keys a user added stay, as istiod's InsertDataToConfigMap.
    await this.#api.patchNamespacedConfigMap(
      { name: rootCertConfigMapName, namespace: ns, body: { data: { [rootCertConfigMapKey]: root } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
