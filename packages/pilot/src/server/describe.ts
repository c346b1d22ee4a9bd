// /debug/describe?proxyID=...: what applies to one connected proxy, answered from the push
// context that translated its config (the same selection code), not re-derived from raw config:
// the services that select its workload, each service's DestinationRule (and which subsets select
// the workload) and the VirtualServices that route to it (in the mesh, and at gateways whose
// routers are connected), the effective PeerAuthentication and the AuthorizationPolicies.
// `weftctl describe` prints it, in the manner of `istioctl x describe pod`.
import { hostsMatch, resolveHost, spiffeId } from '@weft/mesh';
import type { Config, HTTPRoute, TrafficPolicy } from '@weft/model';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';
import { selectsLabels } from '../registry/labels.ts';

/** A config as the answer names it. */
export interface ConfigRef {
  kind: string;
  name: string;
  namespace: string;
}

export interface DescribedDestination {
  host: string;
  subset?: string;
  port?: number;
  /** Percent of the route's traffic (Istio's weights; one destination without a weight is 100). */
  weight: number;
  /** Whether this destination can send traffic to the proxy's workload: its host is the service and its subset (if any) selects the workload. */
  reachesWorkload: boolean;
}

export interface DescribedRoute {
  name?: string;
  /** The route's `match` as written (empty: everything). */
  match: readonly Record<string, unknown>[];
  /** Destinations of this route that go to the described service. */
  destinations: readonly DescribedDestination[];
  fault?: Record<string, unknown>;
  timeout?: string;
  retries?: Record<string, unknown>;
}

export interface DescribedVirtualService extends ConfigRef {
  hosts: readonly string[];
  gateways: readonly string[];
  /** For the mesh: whether it is the VirtualService in force for the host (an older one defining the host wins, as Istio). */
  ignoredFor?: { host: string; winner: ConfigRef };
  /** HTTP routes with a destination to the described service. */
  routes: readonly DescribedRoute[];
  /** How many HTTP routes it has in all. */
  httpRoutes: number;
}

export interface DescribedService {
  hostname: string;
  namespace: string;
  origin: ConfigRef;
  /** Why it selects the workload. */
  selectedBy: { workloadSelector: Readonly<Record<string, string>> } | { address: string };
  ports: readonly { name: string; number: number; protocol: string; targetPort?: number }[];
  destinationRule?: ConfigRef & {
    host: string;
    subsets: readonly { name: string; labels: Readonly<Record<string, string>>; selectsWorkload: boolean }[];
    trafficPolicy?: TrafficPolicy;
  };
  /** VirtualServices bound to the mesh that the proxy's namespace sees and that name the service's host, in Istio's order. */
  virtualServices: readonly DescribedVirtualService[];
  /** VirtualServices of gateways (connected routers) that route to the service. */
  gateways: readonly (DescribedVirtualService & { router: string })[];
}

export interface ProxyDescription {
  /** The push context's version the answer comes from. */
  version: string;
  proxy: {
    id: string;
    type: string;
    namespace: string;
    podName: string;
    ipAddresses: readonly string[];
    labels: Readonly<Record<string, string>>;
    serviceAccount?: string;
    identity?: string;
  };
  services: readonly DescribedService[];
  peerAuthentication: {
    mode: string;
    portLevel: Readonly<Record<string, string>>;
    /** Most specific first; `scope` says why each applies. */
    sources: readonly (ConfigRef & { scope: 'workload' | 'namespace' | 'mesh'; mode?: string })[];
  };
  authorization: readonly (ConfigRef & { action: string; scope: 'workload' | 'namespace' | 'mesh'; selector?: Readonly<Record<string, string>>; rules: number })[];
}

function ref(c: Pick<Config, 'kind' | 'metadata'>): ConfigRef {
  return { kind: c.kind, name: c.metadata.name, namespace: c.metadata.namespace };
}

function scopeOf(c: Config<{ selector?: { matchLabels?: Record<string, string> } | null }>, rootNamespace: string): 'workload' | 'namespace' | 'mesh' {
  if (c.spec?.selector?.matchLabels && Object.keys(c.spec.selector.matchLabels).length > 0) return 'workload';
  return c.metadata.namespace === rootNamespace ? 'mesh' : 'namespace';
}

/** The HTTP routes of `vs` that send traffic to `hostname`, with which of their destinations reach the workload. */
function routesTo(route: readonly HTTPRoute[], vsNamespace: string, hostname: string, domainSuffix: string, subsetSelects: (subset: string) => boolean): DescribedRoute[] {
  const out: DescribedRoute[] = [];
  for (const r of route) {
    const dests = r.route ?? [];
    const total = dests.reduce((n, d) => n + (d.weight ?? (dests.length === 1 ? 100 : 0)), 0) || 100;
    const mine = dests.filter((d) => hostsMatch(resolveHost(d.destination.host, vsNamespace, domainSuffix), hostname));
    if (mine.length === 0) continue;
    const described: DescribedRoute = {
      match: (r.match ?? []) as unknown as Record<string, unknown>[],
      destinations: mine.map((d) => ({
        host: d.destination.host,
        ...(d.destination.subset ? { subset: d.destination.subset } : {}),
        ...(d.destination.port?.number ? { port: d.destination.port.number } : {}),
        weight: Math.round(((d.weight ?? (dests.length === 1 ? 100 : 0)) / total) * 100),
        reachesWorkload: !d.destination.subset || subsetSelects(d.destination.subset),
      })),
    };
    if (r.name) described.name = r.name;
    if (r.fault) described.fault = r.fault as unknown as Record<string, unknown>;
    if (r.timeout) described.timeout = r.timeout;
    if (r.retries) described.retries = r.retries as unknown as Record<string, unknown>;
    out.push(described);
  }
  return out;
}

/** What applies to `proxy` in `push`; `routers` are the connected gateway proxies (their VirtualServices show where the workload is exposed). */
export function describeProxy(push: PushContext, proxy: MeshProxy, routers: readonly MeshProxy[] = []): ProxyDescription {
  const suffix = push.mesh.domainSuffix;
  const root = push.mesh.rootNamespace;
  const workload = push.workload(proxy);
  const labels = workload?.labels ?? proxy.labels;
  const serviceAccount = proxy.serviceAccount ?? workload?.serviceAccount;

  const services = push.servicesOf(proxy).map((s): DescribedService => {
    const dr = push.destinationRule(proxy, s.hostname);
    const subsets = (dr?.spec.subsets ?? []).map((x) => {
      const subsetLabels = x.labels ?? {};
      return { name: x.name, labels: subsetLabels, selectsWorkload: selectsLabels(subsetLabels, labels) };
    });
    const subsetSelects = (name: string) => subsets.some((x) => x.name === name && x.selectsWorkload);

    // The mesh's VirtualServices for the host as this proxy's namespace sees them; the first that defines the host is in force.
    let winner: ConfigRef | undefined;
    const virtualServices: DescribedVirtualService[] = [];
    for (const vs of push.virtualServices(proxy, ['mesh'])) {
      const hosts = (vs.spec.hosts ?? []).map((h) => resolveHost(h, vs.metadata.namespace, suffix));
      if (!hosts.some((h) => hostsMatch(h, s.hostname))) continue;
      const d: DescribedVirtualService = { ...ref(vs), hosts: vs.spec.hosts ?? [], gateways: vs.spec.gateways ?? [], routes: routesTo(vs.spec.http ?? [], vs.metadata.namespace, s.hostname, suffix, subsetSelects), httpRoutes: (vs.spec.http ?? []).length };
      if (hosts.includes(s.hostname)) {
        if (winner) d.ignoredFor = { host: s.hostname, winner };
        else winner = ref(vs);
      }
      virtualServices.push(d);
    }

    const gateways: (DescribedVirtualService & { router: string })[] = [];
    const seen = new Set<string>();
    for (const router of routers) {
      const names = push.gateways(router).map((g) => `${g.metadata.namespace}/${g.metadata.name}`);
      if (names.length === 0) continue;
      for (const vs of push.virtualServices(router, names)) {
        const key = `${vs.metadata.namespace}/${vs.metadata.name}`;
        if (seen.has(key)) continue;
        const routes = routesTo(vs.spec.http ?? [], vs.metadata.namespace, s.hostname, suffix, subsetSelects);
        if (routes.length === 0) continue;
        seen.add(key);
        gateways.push({ ...ref(vs), router: router.id, hosts: vs.spec.hosts ?? [], gateways: vs.spec.gateways ?? [], routes, httpRoutes: (vs.spec.http ?? []).length });
      }
    }

    const selectedBy = s.selector && selectsLabels(s.selector, labels) ? { workloadSelector: s.selector } : { address: proxy.ipAddresses[0] ?? '' };
    const out: DescribedService = {
      hostname: s.hostname,
      namespace: s.namespace,
      origin: { kind: s.origin.kind, name: s.origin.name, namespace: s.origin.namespace },
      selectedBy,
      ports: s.ports.map((p) => ({ name: p.name, number: p.port, protocol: p.protocol, ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}) })),
      virtualServices,
      gateways,
    };
    if (dr) out.destinationRule = { ...ref(dr), host: dr.spec.host, subsets, ...(dr.spec.trafficPolicy ? { trafficPolicy: dr.spec.trafficPolicy } : {}) };
    return out;
  });

  const pa = push.peerAuthentication(proxy);
  const authz = push.authorization(proxy);
  const policies = [
    ...authz.deny.map((c) => ({ c, action: 'DENY' })),
    ...authz.allow.map((c) => ({ c, action: 'ALLOW' })),
    ...authz.audit.map((c) => ({ c, action: 'AUDIT' })),
    ...authz.custom.map((c) => ({ c, action: 'CUSTOM' })),
  ];
  return {
    version: push.version,
    proxy: {
      id: proxy.id,
      type: proxy.type,
      namespace: proxy.namespace,
      podName: proxy.podName,
      ipAddresses: proxy.ipAddresses,
      labels,
      ...(serviceAccount ? { serviceAccount, identity: spiffeId(push.mesh.trustDomain, proxy.namespace, serviceAccount) } : {}),
    },
    services,
    peerAuthentication: {
      mode: pa.mode,
      portLevel: Object.fromEntries([...pa.portLevel].map(([port, mode]) => [String(port), mode])),
      sources: pa.sources.map((c) => {
        const mode = c.spec.mtls?.mode;
        return { ...ref(c), scope: scopeOf(c, root), ...(mode && mode !== 'UNSET' ? { mode } : {}) };
      }),
    },
    authorization: policies.map(({ c, action }) => {
      const selector = c.spec.selector?.matchLabels;
      return { ...ref(c), action, scope: scopeOf(c, root), ...(selector && Object.keys(selector).length ? { selector } : {}), rules: (c.spec.rules ?? []).length };
    }),
  };
}

/** The connected proxy `id` names: its node ID, or `<pod>.<namespace>` as `weftctl proxy-status` shows it. */
export function findProxy<T extends { proxy: MeshProxy }>(connections: readonly T[], id: string): T | undefined {
  return connections.find((c) => c.proxy.id === id) ?? connections.find((c) => `${c.proxy.podName}.${c.proxy.namespace}` === id);
}
