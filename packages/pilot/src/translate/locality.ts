// Locality load balancing, relative to the proxy that asks (Istio's
// pilot/pkg/networking/core/loadbalancer): a DestinationRule's `localityLbSetting` (else the mesh
// default, which Istio enables) turns one ClusterLoadAssignment into priorities or weights.
// `distribute` sets per-locality weights; otherwise, when outlier detection is configured (without
// it Envoy never sees a host fail, so it would never leave priority 0), failover: endpoints of the
// proxy's region/zone/subzone first, then zone, region, a `failover` target region, the rest; or
// `failoverPriority` labels matched against the proxy's. Priorities are compacted to 0..N.
import type { Endpoint, LoadBalancerSettings, Locality, LocalityLoadBalancerSetting, LocalityLoadBalancerSettingFailover } from '@weft/model';
import { localityOfLabels } from '@weft/mesh';
import { parseLocality } from '@weft/model';
import type { ClusterLoadAssignment } from '@weft/xds';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';

export type LocalityLbEndpoints = NonNullable<ClusterLoadAssignment['endpoints']>[number];

/** One locality's endpoints as EDS sends them, beside the endpoints they came from (failoverPriority reads labels). */
export interface LocalityGroup {
  group: LocalityLbEndpoints;
  endpoints: readonly Endpoint[];
}

/** Istio's mesh default (`localityLbSetting: {enabled: true}`): outlier detection alone turns failover on. */
export const defaultMeshLocalityLbSetting: LocalityLoadBalancerSetting = { enabled: true };

/** Node (and augmented workload) labels that carry a locality's parts; the locality label itself is @weft/mesh's. */
export const localityLabels = {
  region: 'topology.kubernetes.io/region',
  zone: 'topology.kubernetes.io/zone',
  subzone: 'topology.istio.io/subzone',
  network: 'topology.istio.io/network',
} as const;

/** Istio's GetEffectiveLbSetting for locality settings: the DestinationRule's, else the mesh's; `enabled: false` turns it off. */
export function effectiveLocalitySetting(
  lb: LoadBalancerSettings | undefined,
  mesh: LocalityLoadBalancerSetting | undefined = defaultMeshLocalityLbSetting,
): LocalityLoadBalancerSetting | undefined {
  const setting = lb?.localityLbSetting ?? mesh;
  if (!setting || setting.enabled === false) return undefined;
  return setting;
}

/** A locality from labels: `topology.istio.io/locality` or `istio-locality` (`us-east.us-east-1a.rack1`), else the topology labels (a node's). */
export function localityFromLabels(labels: Readonly<Record<string, string>>): Locality {
  const named = localityOfLabels(labels);
  if (named) return parseLocality(named);
  const out: Locality = {};
  if (labels[localityLabels.region]) out.region = labels[localityLabels.region];
  if (labels[localityLabels.zone]) out.zone = labels[localityLabels.zone];
  if (labels[localityLabels.subzone]) out.subzone = labels[localityLabels.subzone];
  return out;
}

function isEmpty(l: Locality | undefined): boolean {
  return !l || (!l.region && !l.zone && !l.subzone);
}

/**
 * Where the proxy is, as Istio decides it: the xDS node's locality (the agent sets it from the
 * `istio-locality` label or the platform), else the proxy's labels, else its workload's locality
 * (a WorkloadEntry's `locality`, a pod's node labels).
 */
export function proxyLocality(push: PushContext, proxy: MeshProxy): Locality {
  if (!isEmpty(proxy.locality)) return proxy.locality!;
  const fromLabels = localityFromLabels(proxy.labels);
  if (!isEmpty(fromLabels)) return fromLabels;
  return push.workload(proxy)?.locality ?? {};
}

/** Istio's util.LocalityMatch: `region/zone/subzone` with `*` (and a missing zone or subzone) matching anything. */
export function localityMatch(proxy: Locality, rule: string): boolean {
  const [region = '', zone = '', subzone = ''] = rule.split('/');
  return (
    (region === '*' || (proxy.region ?? '') === region) &&
    (zone === '*' || zone === '' || (proxy.zone ?? '') === zone) &&
    (subzone === '*' || subzone === '' || (proxy.subzone ?? '') === subzone)
  );
}

function envoyLocality(l: LocalityLbEndpoints['locality']): Locality {
  const out: Locality = {};
  if (l?.region) out.region = l.region;
  if (l?.zone) out.zone = l.zone;
  if (l?.sub_zone) out.subzone = l.sub_zone;
  return out;
}

/** Istio's util.LbPriority: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere. */
export function lbPriority(proxy: Locality, endpoint: Locality): number {
  if ((proxy.region ?? '') !== (endpoint.region ?? '')) return 3;
  if ((proxy.zone ?? '') !== (endpoint.zone ?? '')) return 2;
  if ((proxy.subzone ?? '') !== (endpoint.subzone ?? '')) return 1;
  return 0;
}

/** Priorities from 0 without gaps, in their order (Envoy expects no empty levels). */
function compact(groups: LocalityLbEndpoints[]): void {
  const levels = [...new Set(groups.map((g) => g.priority ?? 0))].sort((a, b) => a - b);
  const rank = new Map(levels.map((p, i) => [p, i]));
  for (const g of groups) {
    const p = rank.get(g.priority ?? 0)!;
    if (p === 0) delete g.priority;
    else g.priority = p;
  }
}

/** Istio's applyLocalityWeights: the first `distribute` rule whose `from` matches the proxy; unmatched localities get no endpoints. */
function applyLocalityWeights(proxy: Locality, groups: LocalityLbEndpoints[], distribute: NonNullable<LocalityLoadBalancerSetting['distribute']>): void {
  for (const rule of distribute) {
    if (!localityMatch(proxy, rule.from ?? '')) continue;
    const unmatched = new Set(groups.map((_, i) => i));
    for (const [to, weight] of Object.entries(rule.to ?? {})) {
      const original = new Map<number, number>();
      let total = 0;
      for (const i of unmatched) {
        if (!localityMatch(envoyLocality(groups[i]!.locality), to)) continue;
        const w = groups[i]!.load_balancing_weight?.value ?? 1;
        original.set(i, w);
        total += w;
      }
      // A wildcard matching several localities splits its weight by their own weights.
      for (const [i, w] of original) {
        unmatched.delete(i);
        const share = (w * weight) / total;
        if (share > 0) groups[i]!.load_balancing_weight = { value: Math.ceil(share) };
      }
    }
    for (const i of unmatched) groups[i]!.lb_endpoints = [];
    return;
  }
}

/** Istio's applyLocalityFailover: priority by locality match, a `failover` rule's region before the other regions. */
function applyLocalityFailover(proxy: Locality, groups: LocalityLbEndpoints[], failover: readonly LocalityLoadBalancerSettingFailover[]): void {
  for (const g of groups) {
    const loc = envoyLocality(g.locality);
    let p = lbPriority(proxy, loc);
    if (p === 3) {
      const rule = failover.find((f) => f.from === (proxy.region ?? ''));
      if (rule && loc.region !== rule.to) p = 4;
    }
    // At most five levels per earlier (failoverPriority) level: keep that order, refine within it.
    g.priority = (g.priority ?? 0) * 5 + p;
  }
  compact(groups);
}

/** A label of an endpoint, with the topology labels Istio's AugmentLabels adds read from its locality and network. */
function endpointLabel(e: Endpoint, key: string): string | undefined {
  const v = e.labels[key];
  if (v !== undefined) return v;
  switch (key) {
    case localityLabels.region:
      return e.locality.region;
    case localityLabels.zone:
      return e.locality.zone;
    case localityLabels.subzone:
      return e.locality.subzone;
    case localityLabels.network:
      return e.network;
    default:
      return undefined;
  }
}

/**
 * Istio's applyFailoverPriorities: each locality's endpoints split by how many of the ordered
 * labels (`key` or `key=value`, the value overriding the proxy's) they share with the proxy from
 * the first on; all shared is priority 0. A network mismatch (when `topology.istio.io/network` is
 * first) moves the endpoint after every other level instead of ending the comparison.
 */
function applyFailoverPriorities(groups: LocalityGroup[], proxyLabels: Readonly<Record<string, string>>, priorities: readonly string[]): LocalityLbEndpoints[] {
  const lowest = priorities.length;
  const includesNetwork = priorities[0] === localityLabels.network;
  const keys = priorities.map((p) => {
    const eq = p.indexOf('=');
    return eq < 0 ? { key: p, value: undefined } : { key: p.slice(0, eq), value: p.slice(eq + 1) };
  });
  const out: LocalityLbEndpoints[] = [];
  for (const { group, endpoints } of groups) {
    const byPriority = new Map<number, number[]>();
    endpoints.forEach((e, i) => {
      let priority = 0;
      let adjust = 0;
      for (let j = 0; j < keys.length; j++) {
        const { key, value } = keys[j]!;
        const want = value ?? proxyLabels[key];
        if (want === endpointLabel(e, key)) continue;
        if (j === 0 && includesNetwork) {
          adjust = lowest;
          continue;
        }
        priority = lowest - j;
        break;
      }
      priority += adjust;
      const list = byPriority.get(priority) ?? [];
      list.push(i);
      byPriority.set(priority, list);
    });
    for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
      const lb = byPriority.get(p)!.map((i) => group.lb_endpoints![i]!);
      const weight = lb.reduce((sum, e) => sum + (e.load_balancing_weight?.value ?? 1), 0);
      out.push({ ...group, lb_endpoints: lb, priority: p, load_balancing_weight: { value: weight } });
    }
  }
  compact(out);
  return out;
}

/**
 * Istio's ApplyLocalityLoadBalancer: the assignment's locality groups with priorities or weights
 * for this proxy. `enableFailover`: the cluster has outlier detection.
 */
export function applyLocalityLoadBalancer(
  groups: LocalityGroup[],
  proxy: Locality,
  proxyLabels: Readonly<Record<string, string>>,
  setting: LocalityLoadBalancerSetting,
  enableFailover: boolean,
): LocalityLbEndpoints[] {
  let out = groups.map((g) => g.group);
  if (setting.distribute?.length) {
    applyLocalityWeights(proxy, out, setting.distribute);
  } else if (enableFailover) {
    if (setting.failoverPriority?.length) {
      if (Object.keys(proxyLabels).length > 0) out = applyFailoverPriorities(groups, proxyLabels, setting.failoverPriority);
      if (setting.failover?.length) applyLocalityFailover(proxy, out, setting.failover);
    } else applyLocalityFailover(proxy, out, setting.failover ?? []);
  }
  return out;
}

/**
 * Istio's ApplyToCluster: Envoy weighs localities (locality_weighted_lb_config) when weights are
 * distributed, or when failover is configured explicitly and outlier detection makes it apply.
 */
export function wantsLocalityWeightedLb(setting: LocalityLoadBalancerSetting | undefined, outlierDetection: boolean): boolean {
  if (!setting) return false;
  if (setting.distribute?.length) return true;
  return outlierDetection && ((setting.failover?.length ?? 0) > 0 || (setting.failoverPriority?.length ?? 0) > 0);
}

/** The proxy's labels with the topology labels of its locality (Istio augments a proxy's labels the same way). */
export function proxyTopologyLabels(labels: Readonly<Record<string, string>>, locality: Locality): Record<string, string> {
  const out: Record<string, string> = { ...labels };
  if (locality.region && !out[localityLabels.region]) out[localityLabels.region] = locality.region;
  if (locality.zone && !out[localityLabels.zone]) out[localityLabels.zone] = locality.zone;
  if (locality.subzone && !out[localityLabels.subzone]) out[localityLabels.subzone] = locality.subzone;
  return out;
}
