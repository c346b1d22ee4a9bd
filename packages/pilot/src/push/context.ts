// The push context: one immutable snapshot of configs, services and endpoints, built once per
// (debounced) change and read by translation for every proxy.
import { isExportedTo } from '@weft/mesh';
import type {
  AuthorizationPolicySpec,
  Config,
  ConfigStore,
  DestinationRuleSpec,
  Endpoint,
  GatewaySpec,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
  Service,
  SidecarSpec,
  VirtualServiceSpec,
  WorkloadInstance,
} from '@weft/model';
import { configOrder } from '@weft/model';
import {
  defaultMeshConfig,
  type EffectiveAuthorization,
  type EffectivePeerAuthentication,
  type JwksSource,
  type MeshConfig,
  type Proxy as MeshProxy,
  type PushContext,
  type ServiceRegistry,
  type SidecarScope,
} from '../core/types.ts';
import { isEmptyLabels, labelsKey, selectsLabels, stringMap } from '../registry/labels.ts';
import { DestinationRuleIndex, destinationRuleOrder } from './destination-rules.ts';
import { composePeerAuthentication, selectAuthorization, selectRequestAuthentications } from './security.ts';
import { type ComputedScope, chooseSidecar, defaultScope, type ScopeInputs, sidecarScope } from './sidecar-scope.ts';
import { meshGateway, VirtualServiceIndex } from './virtual-services.ts';
import { convertGatewayApi, type GatewayApiOutput, type GatewayDeployment, gatewayNamespaceAnnotation } from '../gateway-api/convert.ts';

export interface PushContextInput {
  store: ConfigStore;
  registry: ServiceRegistry;
  mesh?: MeshConfig;
  /** Names this snapshot in xDS responses and debug output. */
  version: string;
  /** The keys behind RequestAuthentications' jwksUris (weftd: pilot's JWKS resolver); without it such rules get no keys. */
  jwks?: JwksSource;
  /**
   * Gateway API: who serves a Gateway (weftd: `managed` on Kubernetes, `shared` by the ingress
   * gateway in local mode; default `managed`) and namespace labels for allowedRoutes selectors.
   */
  gatewayApi?: { deployment: GatewayDeployment; namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined };
}

const kinds = {
  virtualService: 'networking.istio.io/VirtualService',
  destinationRule: 'networking.istio.io/DestinationRule',
  gateway: 'networking.istio.io/Gateway',
  sidecar: 'networking.istio.io/Sidecar',
  peerAuthentication: 'security.istio.io/PeerAuthentication',
  authorizationPolicy: 'security.istio.io/AuthorizationPolicy',
  requestAuthentication: 'security.istio.io/RequestAuthentication',
} as const;

/**
 * Builds a push context: reads the store and the registry once, now, and never again. Everything
 * per proxy is computed on first use and cached inside the snapshot, keyed by what it depends on.
 */
export function buildPushContext(input: PushContextInput): PushContext {
  return new Snapshot(input);
}

const noEndpoints: readonly Endpoint[] = Object.freeze([]);

function byNamespace<T extends Config>(configs: readonly T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const c of configs) {
    const l = m.get(c.metadata.namespace);
    if (l) l.push(c);
    else m.set(c.metadata.namespace, [c]);
  }
  return m;
}

function list<S>(store: ConfigStore, gk: string): Config<S>[] {
  return (store.list(gk) as Config<S>[]).slice().sort(configOrder);
}

class Snapshot implements PushContext {
  readonly version: string;
  readonly mesh: MeshConfig;
  readonly services: readonly Service[];
  /** The Gateway API conversion of this snapshot: generated configs and the statuses the spec defines. */
  readonly gatewayApi: GatewayApiOutput;

  /** `namespace/hostname` -> port -> endpoints. */
  readonly #endpoints = new Map<string, Map<number, readonly Endpoint[]>>();
  readonly #workloads: readonly WorkloadInstance[];
  /** `namespace address` -> workloads. */
  readonly #workloadsByAddress = new Map<string, WorkloadInstance[]>();
  /** address -> services with an endpoint there. */
  readonly #servicesByAddress = new Map<string, Service[]>();
  /** hostname -> namespace -> service. */
  readonly #byHost = new Map<string, Map<string, Service>>();
  readonly #private = new Map<string, Service[]>();
  readonly #exportedTo = new Map<string, Service[]>();
  readonly #public: Service[] = [];

  readonly #virtualServices: VirtualServiceIndex;
  readonly #destinationRules: DestinationRuleIndex;
  /** namespace -> Sidecars, those with a workloadSelector first. */
  readonly #sidecars: Map<string, Config<SidecarSpec>[]>;
  readonly #rootSidecar: Config<SidecarSpec> | undefined;
  readonly #gateways: readonly Config<GatewaySpec>[];
  readonly #peerAuthentications: Map<string, Config<PeerAuthenticationSpec>[]>;
  readonly #authorizationPolicies: Map<string, Config<AuthorizationPolicySpec>[]>;
  readonly #requestAuthentications: Map<string, Config<RequestAuthenticationSpec>[]>;
  readonly #jwksSource: JwksSource | undefined;
  /** jwksUri -> the JWKS this snapshot uses (asked once, so every proxy of a push gets the same keys). */
  readonly #jwks = new Map<string, string | undefined>();
  readonly #scopeInputs: ScopeInputs;

  // Caches. Keys list every input of the cached value.
  readonly #visible = new Map<string, readonly Service[]>();
  readonly #visibleByHost = new Map<string, Map<string, Service>>();
  readonly #subsetEndpoints = new Map<string, readonly Endpoint[]>();
  readonly #meshVirtualServices = new Map<string, readonly Config<VirtualServiceSpec>[]>();
  /** `sidecar namespace/name|proxy namespace` (or `|namespace` for the default) -> scope. */
  readonly #scopes = new Map<string, ComputedScope>();
  readonly #proxyScopes = new Map<string, ComputedScope>();
  readonly #proxyVirtualServices = new Map<string, readonly Config<VirtualServiceSpec>[]>();
  readonly #proxyDestinationRules = new Map<string, Config<DestinationRuleSpec> | null>();
  readonly #proxyGateways = new Map<string, readonly Config<GatewaySpec>[]>();
  readonly #proxyPeerAuthentication = new Map<string, EffectivePeerAuthentication>();
  readonly #proxyAuthorization = new Map<string, EffectiveAuthorization>();
  readonly #proxyRequestAuthentications = new Map<string, readonly Config<RequestAuthenticationSpec>[]>();
  readonly #proxyWorkload = new Map<string, WorkloadInstance | null>();
  readonly #proxyServices = new Map<string, readonly Service[]>();
  readonly #proxyLabels = new Map<string, Readonly<Record<string, string>>>();
  readonly #proxyPolicyKeys = new WeakMap<MeshProxy, string>();

  constructor(input: PushContextInput) {
    this.version = input.version;
    this.mesh = input.mesh ?? defaultMeshConfig;
    const { store, registry } = input;

    // Services: the first definition of a hostname in a namespace wins (the registry's order).
    const services: Service[] = [];
    for (const s of registry.services()) {
      const byNs = this.#byHost.get(s.hostname) ?? new Map<string, Service>();
      this.#byHost.set(s.hostname, byNs);
      if (byNs.has(s.namespace)) continue;
      byNs.set(s.namespace, s);
      services.push(s);
      this.#indexVisibility(s);
    }
    this.services = Object.freeze(services);

    for (const s of services) {
      const byPort = new Map<number, readonly Endpoint[]>();
      for (const p of s.ports) {
        const eps = registry.endpoints(s.hostname, s.namespace, p.port);
        byPort.set(p.port, eps);
        for (const e of eps) {
          const l = this.#servicesByAddress.get(e.address) ?? [];
          if (!l.includes(s)) l.push(s);
          this.#servicesByAddress.set(e.address, l);
        }
      }
      this.#endpoints.set(`${s.namespace}/${s.hostname}`, byPort);
    }
    this.#workloads = Object.freeze([...registry.workloads()]);
    for (const w of this.#workloads) {
      const key = `${w.namespace} ${w.address}`;
      const l = this.#workloadsByAddress.get(key);
      if (l) l.push(w);
      else this.#workloadsByAddress.set(key, [w]);
    }

    // Gateway API objects become Istio Gateways and VirtualServices (Istio's conversion), served like the others.
    this.gatewayApi = convertGatewayApi({
      store,
      domainSuffix: this.mesh.domainSuffix,
      service: (hostname, namespace) => this.#byHost.get(hostname)?.get(namespace),
      deployment: input.gatewayApi?.deployment ?? { mode: 'managed' },
      ...(input.gatewayApi?.namespaceLabels ? { namespaceLabels: input.gatewayApi.namespaceLabels } : {}),
    });
    this.#virtualServices = new VirtualServiceIndex(
      [...list<VirtualServiceSpec>(store, kinds.virtualService), ...this.gatewayApi.virtualServices].sort(configOrder),
      this.mesh.defaultVirtualServiceExportTo,
    );
    const drs = list<DestinationRuleSpec>(store, kinds.destinationRule).sort(destinationRuleOrder(configOrder));
    this.#destinationRules = new DestinationRuleIndex(drs, this.mesh.rootNamespace, this.mesh.domainSuffix, this.mesh.defaultDestinationRuleExportTo);
    const sidecars = list<SidecarSpec>(store, kinds.sidecar);
    const withSelector = sidecars.filter((s) => s.spec?.workloadSelector);
    const withoutSelector = sidecars.filter((s) => !s.spec?.workloadSelector);
    this.#sidecars = byNamespace([...withSelector, ...withoutSelector]);
    this.#rootSidecar = withoutSelector.find((s) => s.metadata.namespace === this.mesh.rootNamespace);
    this.#gateways = Object.freeze([...list<GatewaySpec>(store, kinds.gateway), ...this.gatewayApi.gateways].sort(configOrder));
    this.#peerAuthentications = byNamespace(list<PeerAuthenticationSpec>(store, kinds.peerAuthentication));
    this.#authorizationPolicies = byNamespace(list<AuthorizationPolicySpec>(store, kinds.authorizationPolicy));
    this.#requestAuthentications = byNamespace(list<RequestAuthenticationSpec>(store, kinds.requestAuthentication));
    this.#jwksSource = input.jwks;

    this.#scopeInputs = {
      domainSuffix: this.mesh.domainSuffix,
      defaultOutboundPolicy: this.mesh.outboundTrafficPolicy,
      visibleServices: (ns) => this.#visibleServices(ns),
      serviceIn: (h, ns) => this.#byHost.get(h)?.get(ns),
      namespacesOf: (h) => [...(this.#byHost.get(h)?.keys() ?? [])],
      isVisible: (s, ns) => isExportedTo(s.exportTo, ns),
      meshVirtualServices: (ns) => this.#meshVirtualServicesFor(ns),
    };
  }

  #indexVisibility(s: Service): void {
    if (s.exportTo.has('*')) {
      this.#public.push(s);
      return;
    }
    for (const ns of s.exportTo) {
      const m = ns === s.namespace ? this.#private : this.#exportedTo;
      const l = m.get(ns) ?? [];
      l.push(s);
      m.set(ns, l);
    }
  }

  /** Istio's servicesExportedToNamespace: private to it, exported to it by name, then public. */
  #visibleServices(namespace: string): readonly Service[] {
    let v = this.#visible.get(namespace);
    if (!v) {
      v = Object.freeze([...(this.#private.get(namespace) ?? []), ...(this.#exportedTo.get(namespace) ?? []), ...this.#public]);
      this.#visible.set(namespace, v);
    }
    return v;
  }

  #meshVirtualServicesFor(namespace: string): readonly Config<VirtualServiceSpec>[] {
    let v = this.#meshVirtualServices.get(namespace);
    if (!v) {
      v = Object.freeze(this.#virtualServices.forGateway(namespace, meshGateway));
      this.#meshVirtualServices.set(namespace, v);
    }
    return v;
  }

  service(hostname: string, namespace: string): Service | undefined {
    let m = this.#visibleByHost.get(namespace);
    if (!m) {
      m = new Map();
      for (const s of this.#visibleServices(namespace)) if (!m.has(s.hostname)) m.set(s.hostname, s);
      this.#visibleByHost.set(namespace, m);
    }
    return m.get(hostname);
  }

  endpoints(service: Service, port: number, subsetLabels?: Readonly<Record<string, string>>): readonly Endpoint[] {
    const all = this.#endpoints.get(`${service.namespace}/${service.hostname}`)?.get(port) ?? noEndpoints;
    if (isEmptyLabels(subsetLabels)) return all;
    const key = `${service.namespace}/${service.hostname}|${port}|${labelsKey(subsetLabels)}`;
    let out = this.#subsetEndpoints.get(key);
    if (!out) {
      out = Object.freeze(all.filter((e) => selectsLabels(subsetLabels, e.labels)));
      this.#subsetEndpoints.set(key, out);
    }
    return out;
  }

  // ------------------------------------------------------------ per proxy

  /** What identifies the workload behind a proxy: namespace, IPs and pod name. */
  #workloadKey(proxy: MeshProxy): string {
    return `${proxy.namespace}|${proxy.ipAddresses.join(',')}|${proxy.podName}|${labelsKey(proxy.labels)}`;
  }

  /**
   * The labels policies select on: the registry's workload labels (as Istio prefers the pod's),
   * with the proxy's own metadata labels on top.
   */
  #labels(proxy: MeshProxy): Readonly<Record<string, string>> {
    const key = this.#workloadKey(proxy);
    let l = this.#proxyLabels.get(key);
    if (!l) {
      const w = this.workload(proxy);
      l = Object.freeze({ ...(w?.labels ?? {}), ...proxy.labels });
      this.#proxyLabels.set(key, l);
    }
    return l;
  }

  /**
   * Everything scope and policy answers depend on: proxy type, namespace and effective labels.
   * Replicas of a workload share it, so they share the answers.
   */
  #policyKey(proxy: MeshProxy): string {
    // Asked per destination of every route while translating: keep it per proxy object (a proxy's fields do not change).
    let key = this.#proxyPolicyKeys.get(proxy);
    if (key === undefined) {
      key = `${proxy.type}|${proxy.namespace}|${labelsKey(this.#labels(proxy))}`;
      this.#proxyPolicyKeys.set(proxy, key);
    }
    return key;
  }

  #scope(proxy: MeshProxy): ComputedScope {
    const key = this.#policyKey(proxy);
    let s = this.#proxyScopes.get(key);
    if (s) return s;
    // Gateways always see everything exported to their namespace; Sidecar resources are for sidecars.
    const config = proxy.type === 'sidecar' ? chooseSidecar(this.#sidecars.get(proxy.namespace), this.#rootSidecar, this.#labels(proxy)) : undefined;
    const scopeKey = `${config ? `${config.metadata.namespace}/${config.metadata.name}` : ''}|${proxy.namespace}`;
    s = this.#scopes.get(scopeKey);
    if (!s) {
      s = config ? sidecarScope(this.#scopeInputs, config, proxy.namespace) : defaultScope(this.#scopeInputs, proxy.namespace);
      Object.freeze(s.scope.services);
      this.#scopes.set(scopeKey, s);
    }
    this.#proxyScopes.set(key, s);
    return s;
  }

  sidecarScope(proxy: MeshProxy): SidecarScope {
    return this.#scope(proxy).scope;
  }

  virtualServices(proxy: MeshProxy, gateways: readonly string[]): readonly Config<VirtualServiceSpec>[] {
    const key = `${this.#policyKey(proxy)}|${gateways.join(',')}`;
    let out = this.#proxyVirtualServices.get(key);
    if (out) return out;
    const seen = new Set<Config<VirtualServiceSpec>>();
    const result: Config<VirtualServiceSpec>[] = [];
    for (const gw of gateways) {
      let candidates = this.#virtualServices.forGateway(proxy.namespace, gw);
      // A sidecar sees only the mesh VirtualServices its Sidecar's egress hosts import.
      if (gw === meshGateway && proxy.type === 'sidecar') {
        const imported = this.#scope(proxy).virtualServices;
        candidates = candidates.filter((vs) => imported.has(vs));
      }
      for (const vs of candidates) {
        if (seen.has(vs)) continue;
        seen.add(vs);
        result.push(vs);
      }
    }
    out = Object.freeze(result);
    this.#proxyVirtualServices.set(key, out);
    return out;
  }

  delegate(namespace: string, name: string): Config<VirtualServiceSpec> | undefined {
    return this.#virtualServices.delegate(namespace, name);
  }

  destinationRule(proxy: MeshProxy, hostname: string): Config<DestinationRuleSpec> | undefined {
    const key = `${this.#policyKey(proxy)}|${hostname}`;
    const cached = this.#proxyDestinationRules.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const svc = this.service(hostname, proxy.namespace) ?? this.#byHost.get(hostname)?.values().next().value;
    const dr = this.#destinationRules.lookup(proxy.namespace, this.#labels(proxy), hostname, svc?.namespace);
    this.#proxyDestinationRules.set(key, dr ?? null);
    return dr;
  }

  gateways(proxy: MeshProxy): readonly Config<GatewaySpec>[] {
    if (proxy.type !== 'router') return [];
    const key = this.#policyKey(proxy);
    let out = this.#proxyGateways.get(key);
    if (!out) {
      const labels = this.#labels(proxy);
      // PILOT_SCOPE_GATEWAY_TO_NAMESPACE is off: a Gateway's selector matches proxies in any namespace.
      // A managed Gateway API gateway is served by its own deployment, in its namespace only.
      const inReach = (g: Config<GatewaySpec>) => g.metadata.annotations?.[gatewayNamespaceAnnotation] === undefined || g.metadata.namespace === proxy.namespace;
      out = Object.freeze(this.#gateways.filter((g) => inReach(g) && selectsLabels(stringMap(g.spec?.selector), labels)));
      this.#proxyGateways.set(key, out);
    }
    return out;
  }

  peerAuthentication(proxy: MeshProxy): EffectivePeerAuthentication {
    const key = this.#policyKey(proxy);
    let out = this.#proxyPeerAuthentication.get(key);
    if (!out) {
      const root = this.mesh.rootNamespace;
      const candidates = [...(this.#peerAuthentications.get(root) ?? []), ...(proxy.namespace === root ? [] : (this.#peerAuthentications.get(proxy.namespace) ?? []))];
      out = composePeerAuthentication(candidates, root, proxy.namespace, this.#labels(proxy));
      this.#proxyPeerAuthentication.set(key, out);
    }
    return out;
  }

  workloadPeerAuthentication(namespace: string, labels: Readonly<Record<string, string>>): EffectivePeerAuthentication {
    const key = `sidecar|${namespace}|${labelsKey(labels)}`;
    let out = this.#proxyPeerAuthentication.get(key);
    if (!out) {
      const root = this.mesh.rootNamespace;
      const candidates = [...(this.#peerAuthentications.get(root) ?? []), ...(namespace === root ? [] : (this.#peerAuthentications.get(namespace) ?? []))];
      out = composePeerAuthentication(candidates, root, namespace, labels);
      this.#proxyPeerAuthentication.set(key, out);
    }
    return out;
  }

  authorization(proxy: MeshProxy): EffectiveAuthorization {
    const key = this.#policyKey(proxy);
    let out = this.#proxyAuthorization.get(key);
    if (!out) {
      const gateways = this.gateways(proxy).map((g) => `${g.metadata.namespace}/${g.metadata.name}`);
      out = selectAuthorization(this.#authorizationPolicies, this.mesh.rootNamespace, { namespace: proxy.namespace, labels: this.#labels(proxy), gateways });
      this.#proxyAuthorization.set(key, out);
    }
    return out;
  }

  requestAuthentications(proxy: MeshProxy): readonly Config<RequestAuthenticationSpec>[] {
    const key = this.#policyKey(proxy);
    let out = this.#proxyRequestAuthentications.get(key);
    if (!out) {
      const gateways = this.gateways(proxy).map((g) => `${g.metadata.namespace}/${g.metadata.name}`);
      out = Object.freeze(selectRequestAuthentications(this.#requestAuthentications, this.mesh.rootNamespace, { namespace: proxy.namespace, labels: this.#labels(proxy), gateways }));
      this.#proxyRequestAuthentications.set(key, out);
    }
    return out;
  }

  jwks(uri: string, timeoutMs: number): string | undefined {
    if (this.#jwks.has(uri)) return this.#jwks.get(uri);
    const keys = this.#jwksSource?.get(uri, timeoutMs);
    this.#jwks.set(uri, keys);
    return keys;
  }

  workload(proxy: MeshProxy): WorkloadInstance | undefined {
    const key = this.#workloadKey(proxy);
    const cached = this.#proxyWorkload.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const found = proxy.ipAddresses.flatMap((ip) => this.#workloadsByAddress.get(`${proxy.namespace} ${ip}`) ?? []);
    const w = found.find((x) => x.name === proxy.podName) ?? found[0];
    this.#proxyWorkload.set(key, w ?? null);
    return w;
  }

  servicesOf(proxy: MeshProxy): readonly Service[] {
    const key = this.#workloadKey(proxy);
    let out = this.#proxyServices.get(key);
    if (out) return out;
    const found = new Set<Service>();
    // Services do not cross namespaces: only the proxy's own namespace counts (as in Istio).
    for (const ip of proxy.ipAddresses) for (const s of this.#servicesByAddress.get(ip) ?? []) if (s.namespace === proxy.namespace) found.add(s);
    const w = this.workload(proxy);
    if (w) {
      for (const s of this.services) if (s.namespace === proxy.namespace && s.selector && selectsLabels(s.selector, w.labels)) found.add(s);
    }
    out = Object.freeze(this.services.filter((s) => found.has(s)));
    this.#proxyServices.set(key, out);
    return out;
  }
}
