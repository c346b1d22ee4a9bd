import type { XdsMessageName } from './messages.ts';

export const typeUrlPrefix = 'type.googleapis.com/';

/** Type URLs of the resources and typed configs Weft puts on the wire. */
export const TypeUrl = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  VirtualHost: 'type.googleapis.com/envoy.config.route.v3.VirtualHost',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  UpstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  DownstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  HttpConnectionManager: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  TcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  NetworkRbac: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  Router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  HttpFault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  HttpRbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  JwtAuthentication: 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  TypedStruct: 'type.googleapis.com/xds.type.v3.TypedStruct',
  Cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  CorsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  OriginalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  TlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  HttpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  RawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  UpstreamHttpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  PreviousHostsPredicate: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  FileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  OpenTelemetryConfig: 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
  UriTemplateMatchConfig: 'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig',
} as const satisfies Record<string, `type.googleapis.com/${XdsMessageName}`>;

export type XdsTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/**
 * Node `client_features` Weft's own clients announce. `vhds`: weft-proxy takes route
 * configurations' virtual hosts as VirtualHost resources of their own, named
 * `<route configuration>/<virtual host>` (delta xDS only; DESIGN.md, control-plane wire).
 */
export const ClientFeature = {
  vhds: 'io.weft.vhds',
} as const;

/** `type.googleapis.com/<name>` for a full message name. */
export function typeUrlOf<N extends string>(messageName: N): `type.googleapis.com/${N}` {
  return `${typeUrlPrefix}${messageName}`;
}

/** The full message name a type URL names (the part after the last `/`). */
export function messageNameOf<U extends string>(typeUrl: U): U extends `${string}/${infer N}` ? N : string {
  const slash = typeUrl.lastIndexOf('/');
  return typeUrl.slice(slash + 1) as U extends `${string}/${infer N}` ? N : string;
}
