// Translation: per proxy, listeners, routes, clusters and endpoints as pure functions of the push
// context. The ADS server picks `grpcGenerators` for proxyless gRPC clients, `envoyGenerators` otherwise.
import { TypeUrl } from '@weft/xds';
import type { Generator } from '../core/types.ts';
import { withAccessLogs } from './accesslog.ts';
import { envoyCds, envoyClusters } from './cds.ts';
import { edsGenerator } from './eds.ts';
import { gatewayLds, gatewayRds } from './gateway.ts';
import { grpcCds, grpcEds, grpcLds, grpcRds } from './grpc.ts';
import { sidecarLds } from './lds.ts';
import { sidecarRds } from './rds.ts';
import { vhdsGenerator, withVhds } from './vhds.ts';

// MeshConfig's access log goes on every connection manager and tcp_proxy of sidecars and gateways.
const envoyLds: Generator = (push, proxy, request) => withAccessLogs((proxy.type === 'router' ? gatewayLds : sidecarLds)(push, proxy, request), push.mesh);
const wholeRds: Generator = (push, proxy, request) => (proxy.type === 'router' ? gatewayRds : sidecarRds)(push, proxy, request);
// weft-proxy takes virtual hosts as resources of their own (vhds.ts); other clients whole route configurations.
const envoyRds = withVhds(wholeRds);
const envoyVhds = vhdsGenerator(wholeRds);
const envoyEds: Generator = edsGenerator((push, proxy) =>
  envoyClusters(push, proxy)
    .filter((c) => c.type === 'EDS')
    .map((c) => c.name!),
);

/** Generators for Envoy-style proxies (sidecars and gateways), keyed by type URL. */
export const envoyGenerators: Readonly<Record<string, Generator>> = Object.freeze({
  [TypeUrl.Listener]: envoyLds,
  [TypeUrl.RouteConfiguration]: envoyRds,
  [TypeUrl.VirtualHost]: envoyVhds,
  [TypeUrl.Cluster]: envoyCds,
  [TypeUrl.ClusterLoadAssignment]: envoyEds,
});

/** Generators for proxyless gRPC clients (node metadata `GENERATOR=grpc`), keyed by type URL. */
export const grpcGenerators: Readonly<Record<string, Generator>> = Object.freeze({
  [TypeUrl.Listener]: grpcLds,
  [TypeUrl.RouteConfiguration]: grpcRds,
  [TypeUrl.Cluster]: grpcCds,
  [TypeUrl.ClusterLoadAssignment]: grpcEds,
});

export { effectivePolicy, serviceIdentities } from './cds.ts';
export { clusterLoadAssignment } from './eds.ts';
export { gatewayListeners, gatewayRouteConfig, gatewayRouteNames } from './gateway.ts';
export { grpcListener, grpcRouteConfig, parseTarget } from './grpc.ts';
export { outboundListeners, sidecarListeners, virtualInboundListener, virtualOutboundListener } from './lds.ts';
export { sidecarOutboundRouteConfig, virtualHostDomains } from './rds.ts';
