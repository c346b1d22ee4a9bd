// The registry of ServiceEntries and WorkloadEntries: the mesh's services in local mode, and
// services outside Kubernetes later. Istio's serviceentry controller, as Weft needs it.
import { defaultDomainSuffix, exportScope, localityOfLabels, resolveHost, spiffeId } from '@weft/mesh';
import { isDeepStrictEqual } from 'node:util';
import {
  compareStrings,
  type Config,
  type ConfigEvent,
  configOrder,
  type ConfigStore,
  creationTime,
  type Endpoint,
  groupKindOf,
  type Locality,
  parseLocality,
  protocolOf,
  type Resolution,
  type Service,
  type ServiceEntrySpec,
  type ServicePort,
  type WorkloadEntrySpec,
  type WorkloadInstance,
} from '@weft/model';
import type { RegistryChange, ServiceRegistry } from '../core/types.ts';
import { isEmptyLabels, selectsLabels, stringMap } from './labels.ts';

export const serviceEntryKind = 'networking.istio.io/ServiceEntry';
export const workloadEntryKind = 'networking.istio.io/WorkloadEntry';
/** The label that says a workload runs a sidecar (`istio`) or not (`disabled`). */
export const tlsModeLabel = 'security.istio.io/tlsMode';

export interface ServiceEntryRegistryOptions {
  /** Registry name in logs and debug output: `ServiceEntry`. */
  name?: string;
  /** Suffix of short MESH_INTERNAL hosts: `reviews` in `default` is `reviews.default.svc.<suffix>`. */
  domainSuffix?: string;
  /** Trust domain of the SPIFFE identities derived from workload service accounts. */
  trustDomain?: string;
  /** Called when a change listener throws; the default logs a JSON line. */
  onListenerError?: (error: unknown) => void;
  /** MeshConfig's defaultServiceExportTo: the exportTo of entries that give none (default `*`). */
  defaultExportTo?: readonly string[];
}

interface Instance extends WorkloadInstance {
  healthy: boolean;
}

/** What one ServiceEntry contributes, derived from it and the WorkloadEntries it selects. */
interface Derived {
  config: Config<ServiceEntrySpec>;
  created: number;
  selector: Record<string, string> | undefined;
  /** One per host, in the order of `hosts`. */
  services: Service[];
  /** hostname -> service port number -> endpoints. */
  endpoints: Map<string, Map<number, Endpoint[]>>;
  /** The workload instances behind it (selected WorkloadEntries by name, or its inline endpoints). */
  instances: Instance[];
  /** Inline endpoints, as workload instances. */
  inline: Instance[];
}

interface Views {
  services: Service[];
  endpoints: Map<string, Map<number, Endpoint[]>>;
  workloads: WorkloadInstance[];
}

const noEndpoints: readonly Endpoint[] = Object.freeze([]);

/**
 * Services from ServiceEntries, endpoints from their inline `endpoints` or from the
 * WorkloadEntries their `workloadSelector` picks (same namespace), watched in a config store.
 *
 * Change events are precise, because the push path depends on them: a change that alters any
 * service definition (hosts, ports, addresses, exportTo, identities...) is `{services: true}`;
 * a change that only moves endpoints (a WorkloadEntry added, relabelled or removed, inline
 * endpoints edited) is `{services: false, endpoints: <those hosts>}`; a change that alters
 * only a workload instance no ServiceEntry selects is `{services: false, endpoints: <none>,
 * workloads: <its addresses>}` (the proxy there reads its own workload from the registry).
 *
 * Single-threaded (Node): the store's events arrive synchronously, one at a time, and
 * listeners run before the write that caused them returns. Arrays handed out are never
 * mutated afterwards: a change builds new ones, so a push context may keep them.
 */
export class ServiceEntryRegistry implements ServiceRegistry {
  readonly name: string;
  readonly #domainSuffix: string;
  readonly #trustDomain: string;
  readonly #defaultExportTo: readonly string[] | undefined;
  readonly #onListenerError: (error: unknown) => void;
  readonly #listeners = new Set<(change: RegistryChange) => void>();
  /** namespace -> ServiceEntry name -> derived. */
  readonly #entries = new Map<string, Map<string, Derived>>();
  /** `namespace k=v` -> ServiceEntries whose selector has that label (its first, in key order). */
  readonly #bySelectorLabel = new Map<string, Set<Derived>>();
  /** namespace -> WorkloadEntry name -> instance. */
  readonly #workloadEntries = new Map<string, Map<string, Instance>>();
  readonly #unwatch: () => void;
  #views: Views | undefined;

  constructor(store: ConfigStore, opts: ServiceEntryRegistryOptions = {}) {
    this.name = opts.name ?? 'ServiceEntry';
    this.#domainSuffix = opts.domainSuffix ?? defaultDomainSuffix;
    this.#trustDomain = opts.trustDomain ?? 'cluster.local';
    this.#defaultExportTo = opts.defaultExportTo;
    this.#onListenerError =
      opts.onListenerError ?? ((e) => console.error(JSON.stringify({ level: 'error', msg: 'registry listener failed', registry: this.name, error: String(e) })));
    for (const c of store.list(workloadEntryKind)) this.#putWorkloadEntry(c as Config<WorkloadEntrySpec>);
    for (const c of store.list(serviceEntryKind)) this.#putEntry(this.#derive(c as Config<ServiceEntrySpec>));
    this.#unwatch = store.watch((e) => this.#onEvent(e));
  }

  /** Stops watching the store. */
  close(): void {
    this.#unwatch();
    this.#listeners.clear();
  }

  services(): readonly Service[] {
    return this.#view().services;
  }

  endpoints(hostname: string, namespace: string, port: number): readonly Endpoint[] {
    return this.#view().endpoints.get(hostKey(namespace, hostname))?.get(port) ?? noEndpoints;
  }

  workloads(): readonly WorkloadInstance[] {
    return this.#view().workloads;
  }

  onChange(listener: (change: RegistryChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ------------------------------------------------------------ events

  #onEvent(e: ConfigEvent): void {
    const gk = groupKindOf(e.config);
    if (gk === serviceEntryKind) this.#serviceEntryChanged(e);
    else if (gk === workloadEntryKind) this.#workloadEntryChanged(e);
  }

  #serviceEntryChanged(e: ConfigEvent): void {
    const { namespace, name } = e.config.metadata;
    const before = this.#entries.get(namespace)?.get(name);
    let after: Derived | undefined;
    if (before) this.#removeEntry(before);
    if (e.type !== 'delete') {
      after = this.#derive(e.config as Config<ServiceEntrySpec>);
      this.#putEntry(after);
    }
    this.#views = undefined;
    this.#emit(diff([before], [after]));
  }

  #workloadEntryChanged(e: ConfigEvent): void {
    const { namespace, name } = e.config.metadata;
    const previous = this.#workloadEntries.get(namespace)?.get(name);
    let current: Instance | undefined;
    if (e.type === 'delete') this.#workloadEntries.get(namespace)?.delete(name);
    else current = this.#putWorkloadEntry(e.config as Config<WorkloadEntrySpec>);
    // Only ServiceEntries whose selector picked the entry before or picks it now can change.
    const candidates = new Set<Derived>();
    for (const labels of [previous?.labels, current?.labels]) {
      for (const [k, v] of Object.entries(labels ?? {})) for (const d of this.#bySelectorLabel.get(`${namespace} ${k}=${v}`) ?? []) candidates.add(d);
    }
    const affected = [...candidates].filter((d) => {
      const sel = d.selector!;
      return (previous && selectsLabels(sel, previous.labels)) || (current && selectsLabels(sel, current.labels));
    });
    // Update the selection incrementally: rescanning the namespace per event is quadratic on bulk loads.
    const after = affected.map((d) => {
      const sel = d.selector!;
      const instances = d.instances.filter((i) => i.name !== name);
      if (current?.address && selectsLabels(sel, current.labels)) {
        const at = instances.findIndex((i) => compareStrings(i.name, name) > 0);
        instances.splice(at < 0 ? instances.length : at, 0, current);
      }
      return this.#derive(d.config, instances);
    });
    for (const d of affected) this.#removeEntry(d);
    for (const d of after) this.#putEntry(d);
    this.#views = undefined;
    // Selected by none: still a workload instance (Istio's), whose proxy reads its own labels,
    // identity and locality from it.
    if (affected.length === 0 && !isDeepStrictEqual(previous, current)) {
      const addresses = new Set([previous?.address, current?.address].filter((a): a is string => !!a));
      if (addresses.size > 0) this.#emit({ services: false, endpoints: new Set(), workloads: addresses });
      return;
    }
    this.#emit(diff(affected, after));
  }

  #emit(change: RegistryChange | undefined): void {
    if (!change) return;
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (e) {
        this.#onListenerError(e);
      }
    }
  }

  // ------------------------------------------------------------ state

  #putEntry(d: Derived): void {
    const ns = d.config.metadata.namespace;
    const m = this.#entries.get(ns) ?? new Map<string, Derived>();
    this.#entries.set(ns, m);
    m.set(d.config.metadata.name, d);
    const key = selectorKey(d);
    if (key) {
      const set = this.#bySelectorLabel.get(key) ?? new Set<Derived>();
      this.#bySelectorLabel.set(key, set);
      set.add(d);
    }
  }

  #removeEntry(d: Derived): void {
    this.#entries.get(d.config.metadata.namespace)?.delete(d.config.metadata.name);
    const key = selectorKey(d);
    if (key) this.#bySelectorLabel.get(key)?.delete(d);
  }

  #putWorkloadEntry(c: Config<WorkloadEntrySpec>): Instance {
    const ns = c.metadata.namespace;
    const spec = (c.spec ?? {}) as WorkloadEntrySpec;
    // Istio merges metadata labels over spec labels (ConvertWorkloadEntry).
    const labels = { ...stringMap(spec.labels), ...stringMap(c.metadata.labels) };
    const inst = toInstance(spec, c.metadata.name, ns, labels, isHealthy(c.status));
    const m = this.#workloadEntries.get(ns) ?? new Map<string, Instance>();
    this.#workloadEntries.set(ns, m);
    m.set(c.metadata.name, inst);
    return inst;
  }

  #derive(config: Config<ServiceEntrySpec>, selected?: Instance[]): Derived {
    const spec = (config.spec ?? {}) as Partial<ServiceEntrySpec>;
    const ns = config.metadata.namespace;
    const location = spec.location === 'MESH_INTERNAL' ? 'MESH_INTERNAL' : 'MESH_EXTERNAL';
    const resolution: Resolution = spec.resolution === 'DYNAMIC_DNS' ? 'DNS' : (spec.resolution ?? 'NONE');
    const ports: ServicePort[] = (spec.ports ?? []).map((p) => {
      const port: ServicePort = { name: p.name, port: p.number, protocol: protocolOf({ protocol: p.protocol, name: p.name }) };
      if (p.targetPort) port.targetPort = p.targetPort;
      return port;
    });
    const selector = selectorOf(spec);
    const inline: Instance[] = [];
    let instances: Instance[];
    if (selector) {
      instances =
        selected ??
        [...(this.#workloadEntries.get(ns)?.values() ?? [])].filter((w) => w.address && selectsLabels(selector, w.labels)).sort((a, b) => compareStrings(a.name, b.name));
    } else {
      for (const e of spec.endpoints ?? []) {
        if (!e?.address) continue;
        inline.push(toInstance(e, config.metadata.name, ns, stringMap(e.labels), true));
      }
      instances = inline;
    }
    const identities = new Set<string>(spec.subjectAltNames ?? []);
    for (const i of instances) if (i.serviceAccount) identities.add(spiffeId(this.#trustDomain, ns, i.serviceAccount));
    const serviceAccounts = [...identities].sort(compareStrings);
    const exportTo = exportScope(spec.exportTo, ns, this.#defaultExportTo);
    const labels = stringMap(config.metadata.labels);
    const services: Service[] = [];
    const endpoints = new Map<string, Map<number, Endpoint[]>>();
    for (const host of spec.hosts ?? []) {
      if (!host) continue;
      const hostname = location === 'MESH_INTERNAL' ? resolveHost(host, ns, this.#domainSuffix) : host;
      const svc: Service = {
        hostname,
        namespace: ns,
        origin: { kind: 'ServiceEntry', namespace: ns, name: config.metadata.name },
        ports,
        addresses: [...(spec.addresses ?? [])],
        resolution,
        location,
        exportTo,
        serviceAccounts,
        labels,
      };
      if (selector) svc.selector = selector;
      services.push(svc);
      const byPort = new Map<number, Endpoint[]>();
      // A DNS ServiceEntry without endpoints resolves its own host (Istio does the same).
      const dnsSelf = instances.length === 0 && !selector && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !hostname.startsWith('*');
      for (const port of ports) {
        if (dnsSelf) byPort.set(port.port, [selfEndpoint(hostname, ns, port)]);
        else byPort.set(
          port.port,
          instances.map((i) => toEndpoint(i, port, hostname, ns)),
        );
      }
      endpoints.set(hostname, byPort);
    }
    return { config, created: creationTime(config), selector, services, endpoints, instances, inline };
  }

  #view(): Views {
    if (this.#views) return this.#views;
    const derived = [...this.#entries.values()].flatMap((m) => [...m.values()]);
    // Istio's service order: oldest ServiceEntry first, then hostname, then namespace.
    const all = derived.flatMap((d) => d.services.map((s) => ({ s, created: d.created })));
    all.sort((a, b) => a.created - b.created || compareStrings(a.s.hostname, b.s.hostname) || compareStrings(a.s.namespace, b.s.namespace));
    const seen = new Set<string>();
    const services: Service[] = [];
    for (const { s } of all) {
      const key = hostKey(s.namespace, s.hostname);
      // The oldest definition of a hostname in a namespace wins; the others add endpoints only.
      if (seen.has(key)) continue;
      seen.add(key);
      services.push(s);
    }
    derived.sort((a, b) => configOrder(a.config, b.config));
    const endpoints = new Map<string, Map<number, Endpoint[]>>();
    for (const d of derived) {
      for (const [hostname, byPort] of d.endpoints) {
        const key = hostKey(d.config.metadata.namespace, hostname);
        const merged = endpoints.get(key);
        if (!merged) {
          endpoints.set(key, byPort);
          continue;
        }
        const copy = new Map(merged);
        for (const [port, eps] of byPort) copy.set(port, [...(copy.get(port) ?? []), ...eps]);
        endpoints.set(key, copy);
      }
    }
    const workloads: WorkloadInstance[] = [];
    const namespaces = [...this.#workloadEntries.keys()].sort(compareStrings);
    for (const ns of namespaces) {
      const m = this.#workloadEntries.get(ns)!;
      for (const name of [...m.keys()].sort(compareStrings)) workloads.push(publicInstance(m.get(name)!));
    }
    for (const d of derived) for (const i of d.inline) workloads.push(publicInstance(i));
    this.#views = { services, endpoints, workloads };
    return this.#views;
  }
}

/** What changed between the derived states of the same ServiceEntries, or undefined when nothing did. */
function diff(before: readonly (Derived | undefined)[], after: readonly (Derived | undefined)[]): RegistryChange | undefined {
  const services = !isDeepStrictEqual(
    before.map((d) => d?.services ?? []),
    after.map((d) => d?.services ?? []),
  );
  const hosts = new Set<string>();
  const n = Math.max(before.length, after.length);
  for (let i = 0; i < n; i++) {
    const b = before[i]?.endpoints ?? new Map<string, Map<number, Endpoint[]>>();
    const a = after[i]?.endpoints ?? new Map<string, Map<number, Endpoint[]>>();
    for (const h of new Set([...b.keys(), ...a.keys()])) {
      if (!isDeepStrictEqual(b.get(h), a.get(h))) hosts.add(h);
    }
  }
  if (!services && hosts.size === 0) return undefined;
  if (!services) return { services, endpoints: hosts };
  // Which hostnames' definitions changed: push scoping pushes only the proxies that see one.
  const byHost = (ds: readonly (Derived | undefined)[]) => new Map(ds.flatMap((d) => d?.services ?? []).map((s) => [`${s.namespace}/${s.hostname}`, s]));
  const b = byHost(before);
  const a = byHost(after);
  const changed = new Set<string>();
  for (const k of new Set([...b.keys(), ...a.keys()])) if (!isDeepStrictEqual(b.get(k), a.get(k))) changed.add((b.get(k) ?? a.get(k))!.hostname);
  return changed.size > 0 ? { services, endpoints: hosts, hosts: changed } : { services, endpoints: hosts };
}

/** The index key of a selecting ServiceEntry: its namespace and the first label of its selector. */
function selectorKey(d: Derived): string | undefined {
  if (!d.selector) return undefined;
  const k = Object.keys(d.selector).sort(compareStrings)[0]!;
  return `${d.config.metadata.namespace} ${k}=${d.selector[k]}`;
}

function hostKey(namespace: string, hostname: string): string {
  return `${namespace}/${hostname}`;
}

function selectorOf(spec: Partial<ServiceEntrySpec> | undefined): Record<string, string> | undefined {
  if (!spec?.workloadSelector) return undefined;
  const labels = stringMap(spec.workloadSelector.labels);
  return isEmptyLabels(labels) ? undefined : labels;
}

/**
 * Istio's rule (getTLSModeFromWorkloadEntry): the `security.istio.io/tlsMode` label decides;
 * without it, a workload that names a service account is taken to have a sidecar.
 */
function tlsModeOf(labels: Readonly<Record<string, string>>, serviceAccount: string | undefined): 'istio' | 'disabled' {
  const label = labels[tlsModeLabel];
  if (label !== undefined) return label === 'istio' ? 'istio' : 'disabled';
  return serviceAccount ? 'istio' : 'disabled';
}

/** A WorkloadEntry is unhealthy only when its status carries a `Healthy` condition that is `False`. */
function isHealthy(status: unknown): boolean {
  const conditions = (status as { conditions?: unknown } | undefined)?.conditions;
  if (!Array.isArray(conditions)) return true;
  return !conditions.some((c) => c && typeof c === 'object' && c.type === 'Healthy' && c.status === 'False');
}

function toInstance(spec: WorkloadEntrySpec, name: string, namespace: string, labels: Record<string, string>, healthy: boolean): Instance {
  // Istio: the entry's locality, else its locality label.
  const locality: Locality = parseLocality(spec.locality || localityOfLabels(labels));
  const inst: Instance = {
    name,
    namespace,
    address: spec.address ?? '',
    labels,
    ports: { ...(spec.ports ?? {}) },
    locality,
    weight: spec.weight && spec.weight > 0 ? spec.weight : 1,
    tlsMode: tlsModeOf(labels, spec.serviceAccount),
    healthy,
  };
  if (spec.serviceAccount) inst.serviceAccount = spec.serviceAccount;
  if (spec.network) inst.network = spec.network;
  return inst;
}

function publicInstance(i: Instance): WorkloadInstance {
  const { healthy: _healthy, ...rest } = i;
  return rest;
}

/** Istio's port rule: unix sockets have none; else the entry's port of that name, the target port, the service port. */
function toEndpoint(i: Instance, port: ServicePort, hostname: string, namespace: string): Endpoint {
  const unix = i.address.startsWith('unix://');
  const ep: Endpoint = {
    address: i.address,
    port: unix ? 0 : (i.ports[port.name] || port.targetPort || port.port),
    servicePort: port,
    hostname,
    namespace,
    labels: i.labels,
    locality: i.locality,
    weight: i.weight,
    healthy: i.healthy,
    tlsMode: i.tlsMode,
    workloadName: i.name,
  };
  if (i.serviceAccount) ep.serviceAccount = i.serviceAccount;
  if (i.network) ep.network = i.network;
  return ep;
}

function selfEndpoint(hostname: string, namespace: string, port: ServicePort): Endpoint {
  return {
    address: hostname,
    port: port.targetPort || port.port,
    servicePort: port,
    hostname,
    namespace,
    labels: {},
    locality: {},
    weight: 1,
    healthy: true,
    tlsMode: 'disabled',
  };
}
