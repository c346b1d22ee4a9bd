// VirtualServices indexed as Istio indexes them (push_context.go initVirtualServices): by the
// gateways they bind to and by who may see them.
import { exportScope, hostsMatch, resolveHost } from '@weft/mesh';
import type { Config, VirtualServiceSpec } from '@weft/model';

/** The gateway name sidecars bind to. */
export const meshGateway = 'mesh';

/**
 * A gateway reference of a VirtualService in `namespace`, as Istio resolves it: `mesh` stays;
 * `gw` -> `namespace/gw`; `./gw` -> `namespace/gw`; `ns/gw` stays; the legacy
 * `gw.ns.svc.cluster.local` -> `ns/gw`.
 */
export function resolveGatewayName(name: string, namespace: string): string {
  if (name === meshGateway) return name;
  const slash = name.indexOf('/');
  if (slash >= 0) return name.slice(0, slash) === '.' ? `${namespace}/${name.slice(slash + 1)}` : name;
  const dot = name.indexOf('.');
  if (dot < 0) return `${namespace}/${name}`;
  const rest = name.slice(dot + 1);
  const next = rest.indexOf('.');
  return `${next < 0 ? rest : rest.slice(0, next)}/${name.slice(0, dot)}`;
}

/** The gateways a VirtualService binds to, resolved; `mesh` when it names none. */
export function gatewaysOf(vs: Config<VirtualServiceSpec>): string[] {
  const gws = vs.spec?.gateways ?? [];
  if (gws.length === 0) return [meshGateway];
  return [...new Set(gws.map((g) => resolveGatewayName(g, vs.metadata.namespace)))];
}

/** Hosts of a VirtualService, resolved in its namespace. */
export function virtualServiceHosts(vs: Config<VirtualServiceSpec>, domainSuffix: string): string[] {
  return (vs.spec?.hosts ?? []).map((h) => resolveHost(h, vs.metadata.namespace, domainSuffix));
}

/** Every destination host a VirtualService routes or mirrors to, resolved in its namespace. */
export function virtualServiceDestinations(vs: Config<VirtualServiceSpec>, domainSuffix: string): string[] {
  const out = new Set<string>();
  const add = (h: string | undefined) => {
    if (h) out.add(resolveHost(h, vs.metadata.namespace, domainSuffix));
  };
  for (const r of vs.spec?.http ?? []) {
    for (const d of r.route ?? []) add(d.destination?.host);
    add(r.mirror?.host);
    for (const m of r.mirrors ?? []) add(m.destination?.host);
  }
  for (const r of vs.spec?.tcp ?? []) for (const d of r.route ?? []) add(d.destination?.host);
  for (const r of vs.spec?.tls ?? []) for (const d of r.route ?? []) add(d.destination?.host);
  return [...out];
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

/**
 * Root VirtualServices (those with hosts) by gateway and visibility; delegates (no hosts) by
 * namespace/name. Input must already be in Istio's order; each list keeps it.
 */
export class VirtualServiceIndex {
  /** exportTo `.` or the own namespace: key `namespace gateway`. */
  readonly #private = new Map<string, Config<VirtualServiceSpec>[]>();
  /** exportTo naming another namespace: key `namespace gateway`. */
  readonly #exported = new Map<string, Config<VirtualServiceSpec>[]>();
  /** exportTo `*` (and the default): key gateway. */
  readonly #public = new Map<string, Config<VirtualServiceSpec>[]>();
  readonly #delegates = new Map<string, Config<VirtualServiceSpec>>();

  /** `defaultExportTo`: MeshConfig's defaultVirtualServiceExportTo, for VirtualServices that give none. */
  constructor(ordered: readonly Config<VirtualServiceSpec>[], defaultExportTo: readonly string[] = []) {
    for (const vs of ordered) {
      const ns = vs.metadata.namespace;
      if ((vs.spec?.hosts ?? []).length === 0) {
        this.#delegates.set(`${ns}/${vs.metadata.name}`, vs);
        continue;
      }
      const gws = gatewaysOf(vs);
      const scope = exportScope(vs.spec?.exportTo, ns, defaultExportTo);
      if (scope.has('*')) {
        for (const gw of gws) push(this.#public, gw, vs);
        continue;
      }
      for (const target of scope) {
        for (const gw of gws) push(target === ns ? this.#private : this.#exported, `${target} ${gw}`, vs);
      }
    }
  }

  /**
   * Istio's VirtualServicesForGateway: those private to `namespace`, then those exported to it
   * by name, then the public ones, each group in Istio's order.
   */
  forGateway(namespace: string, gateway: string): Config<VirtualServiceSpec>[] {
    const key = `${namespace} ${gateway}`;
    return [...(this.#private.get(key) ?? []), ...(this.#exported.get(key) ?? []), ...(this.#public.get(gateway) ?? [])];
  }

  delegate(namespace: string, name: string): Config<VirtualServiceSpec> | undefined {
    return this.#delegates.get(`${namespace}/${name}`);
  }
}

/**
 * Istio's SelectVirtualServices: the VirtualServices whose hosts overlap a Sidecar's egress hosts
 * listed for their namespace (`ns/host`) or for every namespace (namespace `*`).
 */
export function selectVirtualServices(
  candidates: readonly Config<VirtualServiceSpec>[],
  hostsByNamespace: ReadonlyMap<string, readonly string[]>,
  domainSuffix: string,
): Config<VirtualServiceSpec>[] {
  const wildcard = hostsByNamespace.get('*');
  return candidates.filter((vs) => {
    const own = hostsByNamespace.get(vs.metadata.namespace);
    const hosts = virtualServiceHosts(vs, domainSuffix);
    const matches = (imported: readonly string[] | undefined) => !!imported && hosts.some((h) => imported.some((i) => hostsMatch(i, h)));
    return matches(own) || matches(wildcard);
  });
}
