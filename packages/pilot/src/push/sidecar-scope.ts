// What a Sidecar resource lets a proxy see (Istio's sidecar.go: ConvertToSidecarScope,
// selectServices, and the choice of Sidecar in getSidecarScope).
import { hostSubsetOf } from '@weft/mesh';
import { compareStrings, type Config, type IstioEgressListener, type Service, type SidecarSpec, type VirtualServiceSpec } from '@weft/model';
import type { SidecarScope } from '../core/types.ts';
import { selectsLabels, stringMap } from '../registry/labels.ts';
import { selectVirtualServices, virtualServiceDestinations } from './virtual-services.ts';

/** What scope computation reads from the push context. */
export interface ScopeInputs {
  domainSuffix: string;
  defaultOutboundPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Services visible to a namespace in Istio's order (private, exported to it, public). */
  visibleServices(namespace: string): readonly Service[];
  /** A service by hostname and its own namespace. */
  serviceIn(hostname: string, namespace: string): Service | undefined;
  /** Namespaces that define `hostname`. */
  namespacesOf(hostname: string): readonly string[];
  /** Whether a service is visible from a namespace. */
  isVisible(service: Service, namespace: string): boolean;
  /** VirtualServices bound to `mesh` visible to a namespace, in Istio's order. */
  meshVirtualServices(namespace: string): readonly Config<VirtualServiceSpec>[];
}

/** A scope plus the VirtualServices its egress hosts import (for `mesh`). */
export interface ComputedScope {
  scope: SidecarScope;
  virtualServices: ReadonlySet<Config<VirtualServiceSpec>>;
}

/**
 * The Sidecar in force for a sidecar proxy: in its namespace, the first whose workloadSelector
 * matches its labels, else the first without a selector; otherwise the root namespace's Sidecar
 * without a selector. `ordered` lists a namespace's Sidecars with selectors first, each group in
 * Istio's order.
 */
export function chooseSidecar(
  ordered: readonly Config<SidecarSpec>[] | undefined,
  root: Config<SidecarSpec> | undefined,
  labels: Readonly<Record<string, string>>,
): Config<SidecarSpec> | undefined {
  for (const sc of ordered ?? []) {
    const selector = sc.spec?.workloadSelector;
    if (!selector) return sc;
    if (selectsLabels(stringMap(selector.labels), labels)) return sc;
  }
  return root;
}

/** The scope with no Sidecar: every service visible to the namespace (one per hostname), every mesh VirtualService. */
export function defaultScope(inputs: ScopeInputs, namespace: string): ComputedScope {
  const seen = new Set<string>();
  const services: Service[] = [];
  for (const s of inputs.visibleServices(namespace)) {
    if (seen.has(s.hostname)) continue;
    seen.add(s.hostname);
    services.push(s);
  }
  return {
    scope: { services, outboundTrafficPolicy: inputs.defaultOutboundPolicy },
    virtualServices: new Set(inputs.meshVirtualServices(namespace)),
  };
}

/** Egress hosts `ns/host` grouped by namespace (`.` is the namespace the scope is for; `~` matches none). */
function hostsByNamespace(listener: IstioEgressListener, namespace: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const h of listener.hosts ?? []) {
    const slash = h.indexOf('/');
    if (slash < 0) continue;
    const ns = h.slice(0, slash) === '.' ? namespace : h.slice(0, slash);
    const l = out.get(ns) ?? [];
    l.push(h.slice(slash + 1));
    out.set(ns, l);
  }
  return out;
}

/** The port an egress listener restricts its services to, if any (not for HTTP_PROXY listeners). */
function listenerPort(listener: IstioEgressListener): number | undefined {
  const n = listener.port?.number;
  if (!n) return undefined;
  if (listener.port?.protocol?.toUpperCase() === 'HTTP_PROXY') return undefined;
  return n;
}

function withPort(s: Service, port: number | undefined): Service | undefined {
  if (port === undefined) return s;
  const p = s.ports.find((x) => x.port === port);
  return p ? { ...s, ports: [p] } : undefined;
}

/** Istio's selectServices: an explicit `ns/...` import for a service's namespace takes precedence over one for every namespace (`*`). */
function selectServices(candidates: readonly Service[], namespace: string, hosts: Map<string, string[]>, port: number | undefined): Service[] {
  const wildcard = hosts.get('*');
  const imported: Service[] = [];
  for (const s of candidates) {
    const patterns = hosts.get(s.namespace) ?? wildcard;
    if (!patterns) continue;
    if (!patterns.some((p) => hostSubsetOf(s.hostname, p))) continue;
    const trimmed = withPort(s, port);
    if (trimmed) imported.push(trimmed);
  }
  // One namespace per hostname: the scope's own namespace if it has one, else the first.
  const chosen = new Map<string, string>();
  for (const s of imported) if (!chosen.has(s.hostname) || s.namespace === namespace) chosen.set(s.hostname, s.namespace);
  return imported.filter((s) => chosen.get(s.hostname) === s.namespace);
}

/** Istio's ConvertToSidecarScope, for a Sidecar applied to proxies of `namespace`. */
export function sidecarScope(inputs: ScopeInputs, config: Config<SidecarSpec>, namespace: string): ComputedScope {
  const spec = config.spec ?? {};
  const listeners: IstioEgressListener[] = spec.egress && spec.egress.length > 0 ? spec.egress : [{ hosts: ['*/*'] }];
  const services: Service[] = [];
  const byHost = new Map<string, Service>();
  const add = (s: Service | undefined) => {
    if (!s) return;
    const found = byHost.get(s.hostname);
    if (!found) {
      const copy = { ...s, ports: [...s.ports] };
      byHost.set(s.hostname, copy);
      services.push(copy);
      return;
    }
    // Listeners on different ports import parts of the same service: merge its ports.
    if (found.namespace !== s.namespace) return;
    const ports = found.ports as Service['ports'][number][];
    for (const p of s.ports) if (!ports.some((x) => x.port === p.port)) ports.push(p);
  };
  const imported = new Set<Config<VirtualServiceSpec>>();
  const meshVs = inputs.meshVirtualServices(namespace);
  for (const listener of listeners) {
    const hosts = hostsByNamespace(listener, namespace);
    const port = listenerPort(listener);
    for (const s of selectServices(inputs.visibleServices(namespace), namespace, hosts, port)) add(s);
    const vses = selectVirtualServices(meshVs, hosts, inputs.domainSuffix);
    // Destinations of imported VirtualServices are reachable too (explicit imports win on ambiguity).
    for (const vs of vses) {
      imported.add(vs);
      for (const h of virtualServiceDestinations(vs, inputs.domainSuffix)) {
        let s = inputs.serviceIn(h, namespace);
        if (!s) {
          const ns = inputs
            .namespacesOf(h)
            .filter((n) => {
              const candidate = inputs.serviceIn(h, n);
              return candidate !== undefined && inputs.isVisible(candidate, namespace);
            })
            .sort(compareStrings)[0];
          s = ns === undefined ? undefined : inputs.serviceIn(h, ns);
        }
        if (s) add(withPort(s, port));
      }
    }
  }
  return {
    scope: { config, services, outboundTrafficPolicy: spec.outboundTrafficPolicy?.mode ?? inputs.defaultOutboundPolicy },
    virtualServices: imported,
  };
}
