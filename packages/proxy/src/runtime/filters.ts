// The filters a proxy gets when `startProxy` is not given a registry: each capability (security,
// telemetry) registers its factories here, one line each.
import { TypeUrl } from '@weft/xds';
import { FilterRegistry } from '../core/filters.ts';
import { rbacHttpFilterFactory, rbacNetworkFilterFactory } from '../security/rbac-filter.ts';
import { xfccFilterFactory } from '../security/xfcc.ts';
import type { ProxyOptions } from './proxy.ts';

export function defaultFilterRegistry(_options: ProxyOptions): FilterRegistry {
  const registry = new FilterRegistry();
  // Authorization (AuthorizationPolicy): envoy.filters.http.rbac and envoy.filters.network.rbac.
  registry.registerHttp(TypeUrl.HttpRbac, rbacHttpFilterFactory);
  registry.registerNetwork(TypeUrl.NetworkRbac, rbacNetworkFilterFactory);
  // x-forwarded-client-cert on chains whose connection manager asks for it (sidecar inbound).
  registry.registerConnectionManager(xfccFilterFactory);
  return registry;
}
