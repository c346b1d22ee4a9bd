// @weft/pilot: registries -> push context -> generators -> ADS server.
export * from './core/types.ts';
export { nodeMetadata, parseNodeId, proxyFromNode, type StructLike, type XdsNode } from './proxy/node.ts';
export { MeshConfigError, parseMeshConfig } from './mesh/mesh-config.ts';
export { buildPushContext } from './push/context.ts';
export { localityFromLabels } from './translate/locality.ts';
export {
  convertGatewayApi,
  type GatewayApiInput,
  type GatewayApiOutput,
  type GatewayDeployment,
  gatewayControllers,
  gatewayNameLabel,
  listenerGatewayName,
} from './gateway-api/convert.ts';
export type { Condition as GatewayApiCondition, ObjectStatus as GatewayApiObjectStatus } from './gateway-api/status.ts';
export { defaultJwksRefreshIntervalMs, JwksResolver, type JwksResolverOptions, type JwksStatus } from './push/jwks.ts';
export { fakeJwks, istioAuthnConfigType, JwtFilterNames } from './translate/jwt.ts';
export { resolveGatewayName } from './push/virtual-services.ts';
export { AggregateRegistry } from './registry/aggregate.ts';
export { selectsLabels } from './registry/labels.ts';
export { ServiceEntryRegistry, type ServiceEntryRegistryOptions, tlsModeLabel } from './registry/service-entry.ts';
export { checkProxyIdentity, type IdentityCheck, type XdsAuthentication, type XdsAuthenticator, type XdsCall } from './server/authentication.ts';
export { Connection, type PendingConvergence, WatchedType, type XdsMode } from './server/connection.ts';
export {
  type CacheKeyFn,
  DiscoveryServer,
  type DiscoveryEvent,
  type DiscoveryServerOptions,
  type ProxyNeedsPush,
  type ProxyParser,
  type ProxySyncStatus,
  type PushContextBuilder,
  type PushError,
  type PushStatus,
  type TypeSyncStatus,
} from './server/discovery.ts';
export { PilotMetrics } from './server/metrics.ts';
export { proxyNeedsPush } from './server/push-scope.ts';
export { configJson, DebugRequestError, MonitoringServer, type MonitoringOptions } from './server/monitoring.ts';
export type { ConfigRef, DescribedDestination, DescribedRoute, DescribedService, DescribedVirtualService, ProxyDescription } from './server/describe.ts';
export { type DebounceOptions, Debouncer, defaultDebounce, PushRequest, type TriggerReason } from './server/push-request.ts';
export { clusterHost, type Generators, type GeneratorSet, isWildcardType, orderTypes, pushOrder, shortTypeName, typesAffectedBy } from './server/types.ts';
export {
  clusterLoadAssignment,
  effectivePolicy,
  envoyGenerators,
  gatewayListeners,
  gatewayRouteConfig,
  gatewayRouteNames,
  grpcGenerators,
  grpcListener,
  grpcRouteConfig,
  outboundListeners,
  parseTarget,
  serviceIdentities,
  sidecarListeners,
  sidecarOutboundRouteConfig,
  virtualHostDomains,
  virtualInboundListener,
  virtualOutboundListener,
} from './translate/index.ts';
