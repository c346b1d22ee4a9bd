// Push scoping (Istio's DefaultProxyNeedsPush and SidecarScope.DependsOnConfig): a config change
// regenerates a proxy's config only when the proxy can see the changed config, judged in the push
// context before the change and the one after (so a VirtualService created, deleted or moved out
// of reach all count). What is judged: VirtualServices (the proxy's mesh VirtualServices: exportTo,
// namespaces and Sidecar egress hosts applied); Sidecars (the proxy's namespace, or the root
// namespace); DestinationRules, ServiceEntries and the services a registry says changed (a host
// exported to the proxy's namespace or in its Sidecar scope, or one its own workload serves); a
// workload instance at the proxy's address.
// Anything else, a registry change that names no hosts, a gateway or a proxyless client: every
// proxy. Conservative where unsure: a proxy pushed in vain is sent nothing (only changed resources
// go out); one skipped in error would keep stale config.
import { hostSubsetOf, resolveHost } from '@weft/mesh';
import { type Config, groupKindOf } from '@weft/model';
import type { Proxy as MeshProxy, PushContext, SidecarScope } from '../core/types.ts';
import type { ProxyNeedsPush } from './api.ts';

export type { PushScope } from './api.ts';

const VirtualService = 'networking.istio.io/VirtualService';
const DestinationRule = 'networking.istio.io/DestinationRule';
const Sidecar = 'networking.istio.io/Sidecar';
const ServiceEntry = 'networking.istio.io/ServiceEntry';

/** Kinds whose changes are judged proxy by proxy; any other kind pushes to every proxy. */
export function isScopedKind(groupKind: string): boolean {
  return groupKind === VirtualService || groupKind === DestinationRule || groupKind === Sidecar || groupKind === ServiceEntry;
}

const keysOfList = new WeakMap<readonly Config[], Set<string>>();

function keyOf(c: Config): string {
  return `${c.metadata.namespace}/${c.metadata.name}`;
}

function keys(list: readonly Config[]): Set<string> {
  let s = keysOfList.get(list);
  if (!s) {
    s = new Set(list.map(keyOf));
    keysOfList.set(list, s);
  }
  return s;
}

const hostsOfScope = new WeakMap<SidecarScope, Set<string>>();

function seesHost(scope: SidecarScope, pattern: string): boolean {
  if (pattern.startsWith('*')) return scope.services.some((s) => hostSubsetOf(s.hostname, pattern));
  let hosts = hostsOfScope.get(scope);
  if (!hosts) {
    hosts = new Set(scope.services.map((s) => s.hostname));
    hostsOfScope.set(scope, hosts);
  }
  return hosts.has(pattern);
}

/**
 * The proxy sees the host (its Sidecar scope, or exportTo alone: a VirtualService it sees may route
 * to a host its Sidecar leaves out, and the route names the service's port), or its workload
 * serves it (inbound).
 */
function dependsOnHost(push: PushContext, proxy: MeshProxy, host: string): boolean {
  if (!host.startsWith('*') && push.service(host, proxy.namespace)) return true;
  return seesHost(push.sidecarScope(proxy), host) || push.servicesOf(proxy).some((s) => hostSubsetOf(s.hostname, host));
}

function dependsOn(push: PushContext, proxy: MeshProxy, config: Config): boolean {
  const gk = groupKindOf(config);
  if (gk === VirtualService) return keys(push.virtualServices(proxy, ['mesh'])).has(keyOf(config));
  if (gk === DestinationRule) {
    const host = (config.spec as { host?: string }).host;
    if (!host) return true;
    return dependsOnHost(push, proxy, resolveHost(host, config.metadata.namespace, push.mesh.domainSuffix));
  }
  if (gk === Sidecar) return config.metadata.namespace === proxy.namespace || config.metadata.namespace === push.mesh.rootNamespace;
  if (gk === ServiceEntry) {
    const hosts = (config.spec as { hosts?: string[] }).hosts ?? [];
    return hosts.length === 0 || hosts.some((h) => dependsOnHost(push, proxy, resolveHost(h, config.metadata.namespace, push.mesh.domainSuffix)));
  }
  return true;
}

/**
 * Whether a full push for `changed` configs must regenerate this proxy's config. `previous` is the
 * push context before the change (undefined: push). For generators that read config only through
 * the push context, as Weft's do (DiscoveryServerOptions.proxyNeedsPush).
 */
export const proxyNeedsPush: ProxyNeedsPush = (proxy, changed, previous, push) => {
  if (proxy.type !== 'sidecar' || proxy.generator !== 'envoy' || !previous) return true;
  for (const c of changed.configs) {
    if (dependsOn(push, proxy, c) || dependsOn(previous, proxy, c)) return true;
  }
  for (const h of changed.hosts) {
    if (dependsOnHost(push, proxy, h) || dependsOnHost(previous, proxy, h)) return true;
  }
  // Its own workload instance changed (a WorkloadEntry at its address).
  for (const a of changed.workloads ?? []) if (proxy.ipAddresses.includes(a)) return true;
  return false;
};
