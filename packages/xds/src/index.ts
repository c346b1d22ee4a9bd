// @weft/xds: Envoy's xDS protos (from @grpc/grpc-js-xds), their generated types, type URLs,
// encode/decode helpers and the ADS and SDS gRPC service definitions. Shared by pilot, citadel and proxy.
export { decodeAny, decodeMessage, encodeAny, encodeMessage, messageType } from './codec.ts';
export { envoyTypeFiles, listFiles, type ProtoTypesOptions, renderProtoTypes } from './codegen.ts';
export type { Cluster, Cluster__Output } from './generated/envoy/config/cluster/v3/Cluster.ts';
export type { AccessLog, AccessLog__Output } from './generated/envoy/config/accesslog/v3/AccessLog.ts';
export type { Address, Address__Output } from './generated/envoy/config/core/v3/Address.ts';
export type { DataSource, DataSource__Output } from './generated/envoy/config/core/v3/DataSource.ts';
export type { Node, Node__Output } from './generated/envoy/config/core/v3/Node.ts';
export type { ClusterLoadAssignment, ClusterLoadAssignment__Output } from './generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
export type { Listener, Listener__Output } from './generated/envoy/config/listener/v3/Listener.ts';
export type { RBAC as RbacPolicies, RBAC__Output as RbacPolicies__Output } from './generated/envoy/config/rbac/v3/RBAC.ts';
export type { Route, Route__Output } from './generated/envoy/config/route/v3/Route.ts';
export type { RouteConfiguration, RouteConfiguration__Output } from './generated/envoy/config/route/v3/RouteConfiguration.ts';
export type { VirtualHost, VirtualHost__Output } from './generated/envoy/config/route/v3/VirtualHost.ts';
export type { FileAccessLog, FileAccessLog__Output } from './generated/envoy/extensions/access_loggers/file/v3/FileAccessLog.ts';
export type { OpenTelemetryConfig, OpenTelemetryConfig__Output } from './generated/envoy/config/trace/v3/OpenTelemetryConfig.ts';
export type { HTTPFault, HTTPFault__Output } from './generated/envoy/extensions/filters/http/fault/v3/HTTPFault.ts';
export type { RBAC as HttpRbac, RBAC__Output as HttpRbac__Output } from './generated/envoy/extensions/filters/http/rbac/v3/RBAC.ts';
export type { JwtAuthentication, JwtAuthentication__Output } from './generated/envoy/extensions/filters/http/jwt_authn/v3/JwtAuthentication.ts';
export type { JwtProvider, JwtProvider__Output } from './generated/envoy/extensions/filters/http/jwt_authn/v3/JwtProvider.ts';
export type { JwtRequirement, JwtRequirement__Output } from './generated/envoy/extensions/filters/http/jwt_authn/v3/JwtRequirement.ts';
export type { TypedStruct, TypedStruct__Output } from './generated/xds/type/v3/TypedStruct.ts';
export type { Router, Router__Output } from './generated/envoy/extensions/filters/http/router/v3/Router.ts';
export type {
  HttpConnectionManager,
  HttpConnectionManager__Output,
} from './generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
export type { RBAC as NetworkRbac, RBAC__Output as NetworkRbac__Output } from './generated/envoy/extensions/filters/network/rbac/v3/RBAC.ts';
export type { TcpProxy, TcpProxy__Output } from './generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts';
export type {
  CertificateValidationContext,
  CertificateValidationContext__Output,
} from './generated/envoy/extensions/transport_sockets/tls/v3/CertificateValidationContext.ts';
export type { CommonTlsContext, CommonTlsContext__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.ts';
export type { DownstreamTlsContext, DownstreamTlsContext__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.ts';
export type { SdsSecretConfig, SdsSecretConfig__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/SdsSecretConfig.ts';
export type { Secret, Secret__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
export type { TlsCertificate, TlsCertificate__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/TlsCertificate.ts';
export type { UpstreamTlsContext, UpstreamTlsContext__Output } from './generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts';
export type {
  AggregatedDiscoveryServiceClient,
  AggregatedDiscoveryServiceDefinition,
  AggregatedDiscoveryServiceHandlers,
} from './generated/envoy/service/discovery/v3/AggregatedDiscoveryService.ts';
export type { DeltaDiscoveryRequest, DeltaDiscoveryRequest__Output } from './generated/envoy/service/discovery/v3/DeltaDiscoveryRequest.ts';
export type { DeltaDiscoveryResponse, DeltaDiscoveryResponse__Output } from './generated/envoy/service/discovery/v3/DeltaDiscoveryResponse.ts';
export type { DiscoveryRequest, DiscoveryRequest__Output } from './generated/envoy/service/discovery/v3/DiscoveryRequest.ts';
export type { DiscoveryResponse, DiscoveryResponse__Output } from './generated/envoy/service/discovery/v3/DiscoveryResponse.ts';
export type { Resource, Resource__Output } from './generated/envoy/service/discovery/v3/Resource.ts';
export type {
  SecretDiscoveryServiceClient,
  SecretDiscoveryServiceDefinition,
  SecretDiscoveryServiceHandlers,
} from './generated/envoy/service/secret/v3/SecretDiscoveryService.ts';
export type { Any, Any__Output } from './generated/google/protobuf/Any.ts';
export type { Status, Status__Output } from './generated/google/rpc/Status.ts';
export type { XdsInput, XdsMessageName, XdsMessageTypes, XdsOutput } from './messages.ts';
export { conversionOptions, type EnvoyProtos, envoyIncludeDirs, envoyProtoDir, envoyProtoFiles, loadEnvoyProtos, loadRoot } from './protos.ts';
export {
  adsServiceDefinition,
  adsServiceName,
  createAdsClient,
  createSdsClient,
  sdsServiceDefinition,
  sdsServiceName,
} from './services.ts';
export { ClientFeature, messageNameOf, TypeUrl, typeUrlOf, typeUrlPrefix, type XdsTypeUrl } from './type-urls.ts';
export { decodeOtlpTraces, decodeOtlpTracesJson, type OtlpAttributeValue, type OtlpSpan, type OtlpSpanKind, otlpTraceResponse } from './otlp.ts';
