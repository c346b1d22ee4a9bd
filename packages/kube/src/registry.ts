// The Kubernetes service registry: Services, their EndpointSlices, Pods and Namespaces as pilot's
// Services, Endpoints and WorkloadInstances (Istio's kube controller, as Weft needs it). Fed object
// by object (registry-watch.ts connects it to informers; unit tests feed plain objects).
import { localityOfLabels, spiffeId } from '@weft/mesh';
import { isDeepStrictEqual } from 'node:util';
import { compareStrings, type Endpoint, type K8sLabelSelector, labelSelectorMatches, type Locality, type Service, type WorkloadInstance } from '@weft/model';
import { localityFromLabels, type RegistryChange, type ServiceRegistry, selectsLabels } from '@weft/pilot';
import {
  type ConvertedService,
  convertPod,
  convertService,
  creationTimeOf,
  endpointHealth,
  externalNameEndpoint,
  type KubeEndpointSlice,
  type KubeNamespace,
  type KubeNode,
  type KubePod,
  type KubeService,
  networkLabel,
  type PodInfo,
  podKey,
  podWorkload,
  portEndpoints,
  sliceServiceName,
} from './registry-convert.ts';

export interface KubeServiceRegistryOptions {
  /** Registry name in logs and debug output: `Kubernetes`. */
  name?: string;
  /** `reviews` in `default` is `reviews.default.svc.<domainSuffix>`. */
  domainSuffix?: string;
  /** Trust domain of the SPIFFE identities of pods' service accounts. */
  trustDomain?: string;
  /** The cluster's id, as a label on every endpoint and workload (Istio's `topology.istio.io/cluster`; default `Kubernetes`). */
  clusterId?: string;
  /**
   * MeshConfig's discoverySelectors: only Services, EndpointSlices and Pods of namespaces whose
   * labels match one of these exist for the mesh (Istio's discovery namespaces filter); empty:
   * every namespace. A namespace relabelled in or out brings its objects in or takes them out.
   */
  discoverySelectors?: readonly K8sLabelSelector[];
  /** Called when a change listener throws; the default logs a JSON line. */
  onListenerError?: (error: unknown) => void;
  /** MeshConfig's defaultServiceExportTo: the exportTo of Services without the annotation. */
  defaultExportTo?: readonly string[];
}

/** What one Service contributes: its model Service and its endpoints per service port. */
interface Derived {
  key: string;
  created: number;
  service: Service;
  /** service port number -> endpoints. */
  endpoints: Map<number, Endpoint[]>;
}

const noEndpoints: readonly Endpoint[] = Object.freeze([]);

function objectKey(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/**
 * Services from the cluster with Istio's semantics: `<name>.<namespace>.svc.<domainSuffix>`,
 * ClusterIP (EDS), headless (passthrough) and ExternalName (DNS) Services; endpoints from every
 * EndpointSlice of the Service (merged, deduplicated by address), with ready/serving/terminating
 * as Istio's EDS treats them; endpoint and workload metadata (labels, service account, node,
 * locality, network, sidecar) from the pod.
 *
 * Change events are precise, because the push path depends on them: a Service added, removed or
 * redefined, or a new set of endpoint identities, is `{services: true}`; endpoints that moved
 * (a slice scaled, a condition flipped, a pod relabelled) are `{services: false, endpoints:
 * <hosts>}`; a pod that no Service selects changes `workloads()` and announces nothing.
 *
 * Single-threaded (Node): each call handles one object and runs the listeners before it returns.
 * Arrays handed out are never mutated afterwards, so a push context may keep them.
 */
export class KubeServiceRegistry implements ServiceRegistry {
  readonly name: string;
  readonly #domainSuffix: string;
  readonly #trustDomain: string;
  readonly #clusterId: string;
  readonly #defaultExportTo: readonly string[] | undefined;
  readonly #onListenerError: (error: unknown) => void;
  readonly #selectors: readonly K8sLabelSelector[];
  readonly #listeners = new Set<(change: RegistryChange) => void>();

  /** `namespace/name` -> the Service as converted. */
  readonly #services = new Map<string, ConvertedService>();
  /** namespace -> keys of its Services. */
  readonly #servicesIn = new Map<string, Set<string>>();
  /** Service creation times, for Istio's service order. */
  readonly #created = new Map<string, number>();
  /** `namespace/slice name` -> slice. */
  readonly #slices = new Map<string, KubeEndpointSlice>();
  /** `namespace/service name` -> keys of its slices. */
  readonly #slicesOf = new Map<string, Set<string>>();
  /** `namespace/pod name` -> pod. */
  readonly #pods = new Map<string, PodInfo>();
  /** IP -> keys of the ready pods there (Istio's podsByIP: how an endpoint without a targetRef finds its pod). */
  readonly #readyPodsByIp = new Map<string, Set<string>>();
  /** namespace -> labels. */
  readonly #namespaces = new Map<string, Record<string, string>>();
  /** node name -> its locality (topology labels), for pods without an `istio-locality` label. */
  readonly #nodeLocality = new Map<string, Locality>();
  /** Which Services read a pod (by key) or the ready pod at an IP (`ip:<address>`): recomputed when it changes. */
  readonly #readers = new Map<string, Set<string>>();
  /** What each Service read last time it was derived (to keep `#readers` exact). */
  readonly #reads = new Map<string, string[]>();
  /** `namespace/name` -> derived, for Services that exist. */
  readonly #derived = new Map<string, Derived>();
  /** `namespace/hostname` -> derived. */
  readonly #byHost = new Map<string, Derived>();
  #servicesView: readonly Service[] | undefined;
  #workloadsView: readonly WorkloadInstance[] | undefined;

  constructor(opts: KubeServiceRegistryOptions = {}) {
    this.name = opts.name ?? 'Kubernetes';
    this.#domainSuffix = opts.domainSuffix ?? 'cluster.local';
    this.#trustDomain = opts.trustDomain ?? 'cluster.local';
    this.#clusterId = opts.clusterId ?? 'Kubernetes';
    this.#defaultExportTo = opts.defaultExportTo;
    this.#selectors = opts.discoverySelectors ?? [];
    this.#onListenerError =
      opts.onListenerError ?? ((e) => console.error(JSON.stringify({ level: 'error', msg: 'registry listener failed', registry: this.name, error: String(e) })));
  }

  // ------------------------------------------------------------ ServiceRegistry

  services(): readonly Service[] {
    if (this.#servicesView) return this.#servicesView;
    // Istio's order: oldest Service first, then hostname.
    const all = [...this.#derived.values()].sort((a, b) => a.created - b.created || compareStrings(a.service.hostname, b.service.hostname));
    this.#servicesView = Object.freeze(all.map((d) => d.service));
    return this.#servicesView;
  }

  endpoints(hostname: string, namespace: string, port: number): readonly Endpoint[] {
    return this.#byHost.get(`${namespace}/${hostname}`)?.endpoints.get(port) ?? noEndpoints;
  }

  workloads(): readonly WorkloadInstance[] {
    if (this.#workloadsView) return this.#workloadsView;
    const pods = [...this.#pods.values()].filter((p) => p.live && this.#selected(p.namespace)).sort((a, b) => compareStrings(a.key, b.key));
    this.#workloadsView = Object.freeze(pods.map((p) => podWorkload(p, this.#clusterId, this.#namespaceNetwork(p.namespace))));
    return this.#workloadsView;
  }

  onChange(listener: (change: RegistryChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ------------------------------------------------------------ inputs

  /** A Service added or updated. */
  putService(svc: KubeService): void {
    const key = objectKey(svc);
    const converted = convertService(svc, {
      domainSuffix: this.#domainSuffix,
      trustDomain: this.#trustDomain,
      ...(this.#defaultExportTo ? { defaultExportTo: this.#defaultExportTo } : {}),
    });
    this.#services.set(key, converted);
    this.#created.set(key, creationTimeOf(svc));
    const inNs = this.#servicesIn.get(converted.service.namespace) ?? new Set<string>();
    this.#servicesIn.set(converted.service.namespace, inNs);
    inNs.add(key);
    // A new selector may take in pods (or let go of some): the Service's own derivation reads them.
    this.#recompute([key]);
  }

  deleteService(svc: KubeService): void {
    const key = objectKey(svc);
    const namespace = svc.metadata?.namespace ?? '';
    this.#services.delete(key);
    this.#created.delete(key);
    this.#servicesIn.get(namespace)?.delete(key);
    if (this.#servicesIn.get(namespace)?.size === 0) this.#servicesIn.delete(namespace);
    this.#recompute([key]);
  }

  /** An EndpointSlice added or updated. */
  putEndpointSlice(slice: KubeEndpointSlice): void {
    const key = objectKey(slice);
    const before = this.#slices.get(key);
    const owners = new Set<string>();
    if (before) {
      const owner = this.#unindexSlice(key, before);
      if (owner) owners.add(owner);
    }
    const svcName = sliceServiceName(slice);
    if (svcName) {
      this.#slices.set(key, slice);
      const owner = `${slice.metadata?.namespace ?? ''}/${svcName}`;
      const set = this.#slicesOf.get(owner) ?? new Set<string>();
      this.#slicesOf.set(owner, set);
      set.add(key);
      owners.add(owner);
    }
    this.#recompute([...owners]);
  }

  deleteEndpointSlice(slice: KubeEndpointSlice): void {
    const key = objectKey(slice);
    const before = this.#slices.get(key);
    if (!before) return;
    const owner = this.#unindexSlice(key, before);
    this.#recompute(owner ? [owner] : []);
  }

  /** A Pod added or updated. */
  putPod(pod: KubePod): void {
    this.#podChanged(this.#located(convertPod(pod)));
  }

  /**
   * A Node added or updated: its topology labels (`topology.kubernetes.io/region`, `zone`,
   * `topology.istio.io/subzone`) are the locality of its pods that carry no `istio-locality` label.
   */
  putNode(node: KubeNode): void {
    const name = node.metadata?.name ?? '';
    const locality = localityFromLabels(node.metadata?.labels ?? {});
    if (isDeepStrictEqual(this.#nodeLocality.get(name) ?? {}, locality)) return;
    this.#nodeLocality.set(name, locality);
    this.#nodeChanged(name);
  }

  deleteNode(node: KubeNode): void {
    const name = node.metadata?.name ?? '';
    if (!this.#nodeLocality.delete(name)) return;
    this.#nodeChanged(name);
  }

  #nodeChanged(name: string): void {
    for (const pod of [...this.#pods.values()]) if (pod.nodeName === name && !localityOfLabels(pod.labels)) this.#podChanged(this.#located(pod));
  }

  /** The pod with its node's locality when no label gives one. */
  #located(pod: PodInfo): PodInfo {
    if (localityOfLabels(pod.labels) || !pod.nodeName) return pod;
    const locality = this.#nodeLocality.get(pod.nodeName) ?? {};
    return isDeepStrictEqual(pod.locality, locality) ? pod : { ...pod, locality };
  }

  deletePod(pod: KubePod): void {
    this.#podChanged(undefined, convertPod(pod).key);
  }

  /** A Namespace added or updated: its labels decide whether the mesh sees it, and its network. */
  putNamespace(ns: KubeNamespace): void {
    const name = ns.metadata?.name ?? '';
    const before = this.#namespaces.get(name);
    const wasSelected = this.#selected(name);
    this.#namespaces.set(name, { ...(ns.metadata?.labels ?? {}) });
    if (wasSelected !== this.#selected(name) || before?.[networkLabel] !== this.#namespaces.get(name)?.[networkLabel]) this.#namespaceChanged(name);
  }

  deleteNamespace(ns: KubeNamespace): void {
    const name = ns.metadata?.name ?? '';
    const before = this.#namespaces.get(name);
    if (!before) return;
    const wasSelected = this.#selected(name);
    this.#namespaces.delete(name);
    if (wasSelected !== this.#selected(name) || before[networkLabel] !== undefined) this.#namespaceChanged(name);
  }

  /** Labels of a namespace, as last seen (undefined: unknown namespace). */
  namespaceLabels(name: string): Readonly<Record<string, string>> | undefined {
    return this.#namespaces.get(name);
  }

  // ------------------------------------------------------------ state

  #unindexSlice(key: string, slice: KubeEndpointSlice): string | undefined {
    this.#slices.delete(key);
    const svcName = sliceServiceName(slice);
    if (!svcName) return undefined;
    const owner = `${slice.metadata?.namespace ?? ''}/${svcName}`;
    const set = this.#slicesOf.get(owner);
    set?.delete(key);
    if (set?.size === 0) this.#slicesOf.delete(owner);
    return owner;
  }

  #podChanged(after: PodInfo | undefined, key = after?.key ?? ''): void {
    const before = this.#pods.get(key);
    if (after) this.#pods.set(key, after);
    else this.#pods.delete(key);
    if (before?.readyForIp) this.#readyPodsByIp.get(before.ip)?.delete(key);
    if (before?.readyForIp && this.#readyPodsByIp.get(before.ip)?.size === 0) this.#readyPodsByIp.delete(before.ip);
    if (after?.readyForIp) {
      const set = this.#readyPodsByIp.get(after.ip) ?? new Set<string>();
      this.#readyPodsByIp.set(after.ip, set);
      set.add(key);
    }
    const workloadBefore = before?.live ? podWorkload(before, this.#clusterId, this.#namespaceNetwork(before.namespace)) : undefined;
    const workloadAfter = after?.live ? podWorkload(after, this.#clusterId, this.#namespaceNetwork(after.namespace)) : undefined;
    if (!isDeepStrictEqual(workloadBefore, workloadAfter)) this.#workloadsView = undefined;
    // Services whose endpoints name this pod (or the ready pod at its IP), and Services that select
    // it: Istio recomputes those when a pod's labels change, so that subsets and the pod's own
    // inbound config follow.
    const affected = new Set<string>();
    for (const reader of [key, ...(before ? [`ip:${before.ip}`] : []), ...(after ? [`ip:${after.ip}`] : [])]) for (const s of this.#readers.get(reader) ?? []) affected.add(s);
    const ns = after?.namespace ?? before?.namespace ?? '';
    const selected = !isDeepStrictEqual(workloadBefore, workloadAfter) ? this.#selecting(ns, [before?.labels, after?.labels]) : [];
    this.#recompute([...affected], selected);
  }

  /** Services of `namespace` whose selector matches any of the label sets. */
  #selecting(namespace: string, labelSets: readonly (Readonly<Record<string, string>> | undefined)[]): string[] {
    const out: string[] = [];
    for (const key of this.#servicesIn.get(namespace) ?? []) {
      const c = this.#services.get(key)!;
      if (!c.service.selector) continue;
      if (labelSets.some((l) => l && selectsLabels(c.service.selector, l))) out.push(key);
    }
    return out;
  }

  #namespaceNetwork(namespace: string): string {
    return this.#namespaces.get(namespace)?.[networkLabel] ?? '';
  }

  /** Whether the mesh sees a namespace (discoverySelectors; none: all of them). */
  #selected(namespace: string): boolean {
    if (this.#selectors.length === 0) return true;
    const labels = this.#namespaces.get(namespace);
    return labels !== undefined && this.#selectors.some((sel) => labelSelectorMatches(sel, labels));
  }

  /** A pod as the mesh sees it: none in namespaces outside discoverySelectors. */
  #visiblePod(key: string): PodInfo | undefined {
    const pod = this.#pods.get(key);
    return pod && this.#selected(pod.namespace) ? pod : undefined;
  }

  /** A namespace's selection or network changed: its Services, its pods' workloads and the endpoints naming them. */
  #namespaceChanged(namespace: string): void {
    this.#workloadsView = undefined;
    const keys = [...(this.#servicesIn.get(namespace) ?? [])];
    // Endpoints name pods of other namespaces rarely, but a slice may point anywhere.
    for (const [key, reads] of this.#reads) if (reads.some((r) => r.startsWith(`${namespace}/`))) keys.push(key);
    this.#recompute(keys);
  }

  /**
   * Derives the given Services again and announces what changed. `touched` are Services whose
   * pods changed without their endpoints having to: their hosts are announced even when the
   * endpoints compare equal, so that pilot builds a new push context with the new workload (the
   * EDS push then finds nothing to send).
   */
  #recompute(keys: readonly string[], touched: readonly string[] = []): void {
    let services = false;
    const hosts = new Set<string>();
    for (const key of new Set([...keys, ...touched])) {
      const before = this.#derived.get(key);
      const after = this.#derive(key);
      if (before) this.#byHost.delete(`${before.service.namespace}/${before.service.hostname}`);
      if (after) {
        this.#derived.set(key, after);
        this.#byHost.set(`${after.service.namespace}/${after.service.hostname}`, after);
      } else this.#derived.delete(key);
      if (!isDeepStrictEqual(before?.service, after?.service) || before?.created !== after?.created) {
        services = true;
        this.#servicesView = undefined;
      }
      const host = after?.service.hostname ?? before?.service.hostname;
      if (!host) continue;
      if (!isDeepStrictEqual(before?.endpoints, after?.endpoints)) hosts.add(host);
      else if (touched.includes(key) && after) hosts.add(host);
    }
    if (!services && hosts.size === 0) return;
    this.#emit({ services, endpoints: hosts });
  }

  #derive(key: string): Derived | undefined {
    const converted = this.#services.get(key);
    const reads: string[] = [];
    try {
      if (!converted || !this.#selected(converted.service.namespace)) return undefined;
      const svc = converted.service;
      const endpoints = new Map<number, Endpoint[]>();
      const identities = new Set(converted.declaredServiceAccounts);
      if (converted.externalName) {
        for (const p of svc.ports) endpoints.set(p.port, [externalNameEndpoint(converted, p)]);
      } else {
        // slice port name -> addresses with their port, in slice name order (the first of an address wins).
        const byPortName = new Map<string, { address: string; port: number; pod: PodInfo | undefined; health: 'healthy' | 'unhealthy' }[]>();
        const sliceKeys = [...(this.#slicesOf.get(key) ?? [])].sort(compareStrings);
        for (const sk of sliceKeys) {
          const slice = this.#slices.get(sk)!;
          const sliceNs = slice.metadata?.namespace ?? '';
          for (const e of slice.endpoints ?? []) {
            const health = endpointHealth(e.conditions);
            for (const address of e.addresses ?? []) {
              let pod: PodInfo | undefined;
              if (e.targetRef?.kind === 'Pod') {
                // Istio waits for a pod it expects: the endpoint appears once the pod is known.
                const pk = podKey(e.targetRef.namespace || sliceNs, e.targetRef.name ?? '');
                reads.push(pk);
                pod = this.#visiblePod(pk);
                if (!pod) continue;
              } else {
                reads.push(`ip:${address}`);
                pod = [...(this.#readyPodsByIp.get(address) ?? [])].map((k) => this.#visiblePod(k)).find((p) => p?.namespace === sliceNs);
              }
              // Identities count every endpoint the cache holds, terminating ones too (as Istio's shards do).
              if (pod?.serviceAccount) identities.add(spiffeId(this.#trustDomain, pod.namespace, pod.serviceAccount));
              if (health === 'terminating') continue;
              for (const p of slice.ports ?? []) {
                if (p.port === undefined || p.port === null) continue;
                const name = p.name ?? '';
                const list = byPortName.get(name) ?? [];
                byPortName.set(name, list);
                list.push({ address, port: p.port, pod, health });
              }
            }
          }
        }
        for (const p of svc.ports) {
          const eps = portEndpoints(converted, p, byPortName.get(p.name) ?? [], this.#clusterId, (ns) => this.#namespaceNetwork(ns));
          endpoints.set(p.port, eps);
        }
      }
      const serviceAccounts = [...identities].sort(compareStrings);
      const service = isDeepStrictEqual(serviceAccounts, svc.serviceAccounts) ? svc : { ...svc, serviceAccounts };
      return { key, created: this.#created.get(key) ?? 0, service, endpoints };
    } finally {
      this.#setReads(key, reads);
    }
  }

  #setReads(key: string, reads: readonly string[]): void {
    for (const r of this.#reads.get(key) ?? []) {
      const set = this.#readers.get(r);
      set?.delete(key);
      if (set?.size === 0) this.#readers.delete(r);
    }
    if (reads.length === 0) {
      this.#reads.delete(key);
      return;
    }
    const unique = [...new Set(reads)];
    this.#reads.set(key, unique);
    for (const r of unique) {
      const set = this.#readers.get(r) ?? new Set<string>();
      this.#readers.set(r, set);
      set.add(key);
    }
  }

  #emit(change: RegistryChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (e) {
        this.#onListenerError(e);
      }
    }
  }
}
