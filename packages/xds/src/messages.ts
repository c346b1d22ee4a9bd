// The messages Weft encodes and decodes by name, mapped to their generated types. Adding an entry
// here (and the proto to src/protos.ts, then `npm run generate`) is all a new resource kind needs.
import type { Cluster, Cluster__Output } from './generated/envoy/config/cluster/v3/Cluster.ts';
import type { Node, Node__Output } from './generated/envoy/config/core/v3/Node.ts';
import type { ClusterLoadAssignment, ClusterLoadAssignment__Output } from './generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import type { Listener, Listener__Output } from './generated/envoy/config/listener/v3/Listener.ts';
import type { RouteConfiguration, RouteConfiguration__Output } from './generated/envoy/config/route/v3/RouteConfiguration.ts';
import type { VirtualHost, VirtualHost__Output } from './generated/envoy/config/route/v3/VirtualHost.ts';
import type { Cors, Cors__Output } from './generated/envoy/extensions/filters/http/cors/v3/Cors.ts';
import type { CorsPolicy, CorsPolicy__Output } from './generated/envoy/extensions/filters/http/cors/v3/CorsPolicy.ts';
import type { HttpInspector, HttpInspector__Output } from './generated/envoy/extensions/filters/listener/http_inspector/v3/HttpInspector.ts';
import type { OriginalDst, OriginalDst__Output } from './generated/envoy/extensions/filters/listener/original_dst/v3/OriginalDst.ts';
import type { TlsInspector, TlsInspector__Output } from './generated/envoy/extensions/filters/listener/tls_inspector/v3/TlsInspector.ts';
import type {
  PreviousHostsPredicate,
  PreviousHostsPredicate__Output,
} from './generated/envoy/extensions/retry/host/previous_hosts/v3/PreviousHostsPredicate.ts';
import type { RawBuffer, RawBuffer__Output } from './generated/envoy/extensions/transport_sockets/raw_buffer/v3/RawBuffer.ts';
import type {
  HttpProtocolOptions as UpstreamHttpProtocolOptions,
  HttpProtocolOptions__Output as UpstreamHttpProtocolOptions__Output,
} from './generated/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.ts';
import type { HTTPFault, HTTPFault__Output } from './generated/envoy/extensions/filters/http/fault/v3/HTTPFault.ts';
import type { RBAC as HttpRbac, RBAC__Output as HttpRbac__Output } from './generated/envoy/extensions/filters/http/rbac/v3/RBAC.ts';
import type { JwtAuthentication, JwtAuthentication__Output } from './generated/envoy/extensions/filters/http/jwt_authn/v3/JwtAuthentication.ts';
import type { TypedStruct, TypedStruct__Output } from './generated/xds/type/v3/TypedStruct.ts';
import type { Router, Router__Output } from './generated/envoy/extensions/filters/http/router/v3/Router.ts';
import type {
  HttpConnectionManager,
  HttpConnectionManager__Output,
} from './generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
import type { RBAC as NetworkRbac, RBAC__Output as NetworkRbac__Output } from './generated/envoy/extensions/filters/network/rbac/v3/RBAC.ts';
import type { TcpProxy, TcpProxy__Output } from './generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts';
import type { DownstreamTlsContext, DownstreamTlsContext__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.ts';
import type { Secret, Secret__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
import type { UpstreamTlsContext, UpstreamTlsContext__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts';
import type { DeltaDiscoveryRequest, DeltaDiscoveryRequest__Output } from './generated/envoy/service/discovery/v3/DeltaDiscoveryRequest.ts';
import type { DeltaDiscoveryResponse, DeltaDiscoveryResponse__Output } from './generated/envoy/service/discovery/v3/DeltaDiscoveryResponse.ts';
import type { DiscoveryRequest, DiscoveryRequest__Output } from './generated/envoy/service/discovery/v3/DiscoveryRequest.ts';
import type { DiscoveryResponse, DiscoveryResponse__Output } from './generated/envoy/service/discovery/v3/DiscoveryResponse.ts';
import type { AccessLog, AccessLog__Output } from './generated/envoy/config/accesslog/v3/AccessLog.ts';
import type { FileAccessLog, FileAccessLog__Output } from './generated/envoy/extensions/access_loggers/file/v3/FileAccessLog.ts';
import type { OpenTelemetryConfig, OpenTelemetryConfig__Output } from './generated/envoy/config/trace/v3/OpenTelemetryConfig.ts';
import type { UriTemplateMatchConfig, UriTemplateMatchConfig__Output } from './generated/envoy/extensions/path/match/uri_template/v3/UriTemplateMatchConfig.ts';

interface Pair<I, O> {
  input: I;
  output: O;
}

/** Full proto name -> the generated input (permissive) and output (decoded) types. */
export interface XdsMessageTypes {
  'envoy.config.listener.v3.Listener': Pair<Listener, Listener__Output>;
  'envoy.config.route.v3.RouteConfiguration': Pair<RouteConfiguration, RouteConfiguration__Output>;
  'envoy.config.route.v3.VirtualHost': Pair<VirtualHost, VirtualHost__Output>;
  'envoy.config.cluster.v3.Cluster': Pair<Cluster, Cluster__Output>;
  'envoy.config.endpoint.v3.ClusterLoadAssignment': Pair<ClusterLoadAssignment, ClusterLoadAssignment__Output>;
  'envoy.config.core.v3.Node': Pair<Node, Node__Output>;
  'envoy.extensions.transport_sockets.tls.v3.Secret': Pair<Secret, Secret__Output>;
  'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext': Pair<UpstreamTlsContext, UpstreamTlsContext__Output>;
  'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext': Pair<DownstreamTlsContext, DownstreamTlsContext__Output>;
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager': Pair<HttpConnectionManager, HttpConnectionManager__Output>;
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy': Pair<TcpProxy, TcpProxy__Output>;
  'envoy.extensions.filters.network.rbac.v3.RBAC': Pair<NetworkRbac, NetworkRbac__Output>;
  'envoy.extensions.filters.http.router.v3.Router': Pair<Router, Router__Output>;
  'envoy.extensions.filters.http.fault.v3.HTTPFault': Pair<HTTPFault, HTTPFault__Output>;
  'envoy.extensions.filters.http.rbac.v3.RBAC': Pair<HttpRbac, HttpRbac__Output>;
  'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication': Pair<JwtAuthentication, JwtAuthentication__Output>;
  'xds.type.v3.TypedStruct': Pair<TypedStruct, TypedStruct__Output>;
  'envoy.extensions.filters.http.cors.v3.Cors': Pair<Cors, Cors__Output>;
  'envoy.extensions.filters.http.cors.v3.CorsPolicy': Pair<CorsPolicy, CorsPolicy__Output>;
  'envoy.extensions.filters.listener.original_dst.v3.OriginalDst': Pair<OriginalDst, OriginalDst__Output>;
  'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector': Pair<TlsInspector, TlsInspector__Output>;
  'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector': Pair<HttpInspector, HttpInspector__Output>;
  'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer': Pair<RawBuffer, RawBuffer__Output>;
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': Pair<UpstreamHttpProtocolOptions, UpstreamHttpProtocolOptions__Output>;
  'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate': Pair<PreviousHostsPredicate, PreviousHostsPredicate__Output>;
  'envoy.config.accesslog.v3.AccessLog': Pair<AccessLog, AccessLog__Output>;
  'envoy.extensions.access_loggers.file.v3.FileAccessLog': Pair<FileAccessLog, FileAccessLog__Output>;
  'envoy.config.trace.v3.OpenTelemetryConfig': Pair<OpenTelemetryConfig, OpenTelemetryConfig__Output>;
  'envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig': Pair<UriTemplateMatchConfig, UriTemplateMatchConfig__Output>;
  'envoy.service.discovery.v3.DiscoveryRequest': Pair<DiscoveryRequest, DiscoveryRequest__Output>;
  'envoy.service.discovery.v3.DiscoveryResponse': Pair<DiscoveryResponse, DiscoveryResponse__Output>;
  'envoy.service.discovery.v3.DeltaDiscoveryRequest': Pair<DeltaDiscoveryRequest, DeltaDiscoveryRequest__Output>;
  'envoy.service.discovery.v3.DeltaDiscoveryResponse': Pair<DeltaDiscoveryResponse, DeltaDiscoveryResponse__Output>;
}

export type XdsMessageName = keyof XdsMessageTypes;
/** What `encodeMessage` accepts for a name: the generated type for known names, a plain object otherwise. */
export type XdsInput<N extends string> = N extends XdsMessageName ? XdsMessageTypes[N]['input'] : Record<string, unknown>;
/** What `decodeMessage` returns for a name. */
export type XdsOutput<N extends string> = N extends XdsMessageName ? XdsMessageTypes[N]['output'] : Record<string, unknown>;
