/**
 * networking.istio.io: VirtualService, DestinationRule, Gateway, ServiceEntry, WorkloadEntry, Sidecar.
 *
 * Field names are the protojson (camelCase) names users write in YAML. Object names are the
 * istio/api proto message names (nested messages are flattened, e.g. `TrafficPolicy.PortTrafficPolicy`
 * becomes `PortTrafficPolicy`). Every field of the upstream CRD schemas is present, deprecated ones included.
 */
import { anyObject, arr, bool, double, duration, enumOf, int32, int64, type KindSchema, map, obj, type Schema, str, strMap, uint32 } from '../schema/dsl.ts';

/** All three served networking versions share one schema; v1 is the storage version. */
export const networkingVersions = ['v1alpha3', 'v1beta1', 'v1'] as const;
const networkingCategories = ['istio-io', 'networking-istio-io'] as const;
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since the resource was created' } as const;

const strList = (description?: string, o: Parameters<typeof arr>[2] = {}): Schema => arr(str(), description, o);

// ---------------------------------------------------------------------------------------------
// Shared building blocks
// ---------------------------------------------------------------------------------------------

/** A proto `oneof match_type { exact, prefix, regex }` string matcher. */
export const stringMatch = obj(
  'StringMatch',
  {
    exact: str('Exact string match.'),
    prefix: str('Prefix-based match.'),
    regex: str('RE2 regular expression match.'),
  },
  { oneOf: [['exact'], ['prefix'], ['regex']] },
);

export const portSelector = obj('PortSelector', {
  number: uint32('Port number.'),
});

export const destination = obj(
  'Destination',
  {
    host: str('Service name from the service registry (short name or FQDN).'),
    subset: str('Name of a subset defined in a DestinationRule for the host.'),
    port: portSelector,
  },
  { required: ['host'] },
);

export const percent = obj('Percent', {
  value: double('Percentage in the range 0.0 to 100.0.'),
});

/** `istio.type.v1beta1.WorkloadSelector`: selects workloads by `matchLabels` (DestinationRule, security policies). */
export const typeWorkloadSelector = obj('TypeWorkloadSelector', {
  matchLabels: map(str(undefined, { maxLength: 63 }), 'Labels a workload must carry for the configuration to apply.'),
});

/** `istio.networking.v1alpha3.WorkloadSelector`: selects workloads by `labels` (Sidecar, ServiceEntry). */
export const workloadSelector = obj('WorkloadSelector', {
  labels: map(str(undefined, { maxLength: 63 }), 'Labels a workload must carry for the configuration to apply.'),
});

// ---------------------------------------------------------------------------------------------
// VirtualService
// ---------------------------------------------------------------------------------------------

const headerOperations = obj('HeaderOperations', {
  set: strMap('Headers to overwrite.'),
  add: strMap('Headers to append.'),
  remove: strList('Header names to remove.'),
});

const headers = obj('Headers', {
  request: headerOperations,
  response: headerOperations,
});

const delegate = obj('Delegate', {
  name: str('Name of the delegate VirtualService.'),
  namespace: str('Namespace of the delegate VirtualService (defaults to the same namespace).'),
});

const httpMatchRequest = obj('HTTPMatchRequest', {
  name: str('Name of the match, appended to the route name.'),
  uri: stringMatch,
  scheme: stringMatch,
  method: stringMatch,
  authority: stringMatch,
  headers: map(stringMatch, 'Request header matchers keyed by lowercase header name.'),
  port: uint32('Port on the host being addressed.'),
  sourceLabels: strMap('Labels of the source workloads.'),
  gateways: strList('Gateways the match applies to.'),
  queryParams: map(stringMatch, 'Query parameter matchers.'),
  ignoreUriCase: bool('Match the URI case-insensitively.'),
  withoutHeaders: map(stringMatch, 'Headers that must not match.'),
  sourceNamespace: str('Namespace of the source workloads.'),
  statPrefix: str('Stat prefix for this route.'),
});

const httpRouteDestination = obj(
  'HTTPRouteDestination',
  {
    destination,
    weight: int32('Relative share of traffic.'),
    headers,
  },
  { required: ['destination'] },
);

const routeDestination = obj(
  'RouteDestination',
  {
    destination,
    weight: int32('Relative share of traffic.'),
  },
  { required: ['destination'] },
);

const httpRedirect = obj(
  'HTTPRedirect',
  {
    uri: str('Replacement path for the redirect.'),
    authority: str('Replacement authority/host for the redirect.'),
    port: uint32('Replacement port for the redirect.'),
    derivePort: enumOf(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'], 'How to derive the redirect port.'),
    scheme: str('Replacement scheme for the redirect.'),
    redirectCode: uint32('HTTP status code of the redirect (default 301).'),
    prefixRewrite: str('Replacement for the matched prefix.'),
  },
  { oneOf: [['port'], ['derivePort']] },
);

const httpBody = obj(
  'HTTPBody',
  {
    string: str('Body as text.'),
    bytes: str('Body as base64-encoded bytes.', { format: 'byte' }),
  },
  { oneOf: [['string'], ['bytes']] },
);

const httpDirectResponse = obj(
  'HTTPDirectResponse',
  {
    status: uint32('HTTP status code to return.'),
    body: httpBody,
  },
  { required: ['status'] },
);

const regexRewrite = obj('RegexRewrite', {
  match: str('RE2 regular expression to match.'),
  rewrite: str('Replacement; may use capture groups.'),
});

const httpRewrite = obj('HTTPRewrite', {
  uri: str('Replacement path or prefix.'),
  authority: str('Replacement Authority/Host header.'),
  uriRegexRewrite: regexRewrite,
});

const httpRetry = obj('HTTPRetry', {
  attempts: int32('Number of retries.'),
  perTryTimeout: duration('Timeout per attempt.'),
  retryOn: str('Comma-separated retry conditions.'),
  retryRemoteLocalities: bool('Allow retries to other localities.'),
  retryIgnorePreviousHosts: bool('Avoid hosts tried before.'),
  backoff: duration('Minimum delay between retries.'),
});

const corsPolicy = obj('CorsPolicy', {
  allowOrigin: strList('Deprecated: use allowOrigins.'),
  allowOrigins: arr(stringMatch, 'Origins allowed to make requests.'),
  allowMethods: strList('Allowed HTTP methods.'),
  allowHeaders: strList('Allowed request headers.'),
  exposeHeaders: strList('Response headers exposed to browsers.'),
  maxAge: duration('How long preflight results may be cached.'),
  allowCredentials: bool('Whether credentials are allowed.'),
  unmatchedPreflights: enumOf(['UNSPECIFIED', 'FORWARD', 'IGNORE'], 'What to do with preflights that match no origin.'),
});

const httpFaultInjectionDelay = obj(
  'HTTPFaultInjectionDelay',
  {
    percent: int32('Deprecated: use percentage.'),
    fixedDelay: duration('Fixed delay before forwarding.'),
    exponentialDelay: duration('Exponential delay (not implemented upstream).'),
    percentage: percent,
  },
  { oneOf: [['fixedDelay'], ['exponentialDelay']] },
);

const httpFaultInjectionAbort = obj(
  'HTTPFaultInjectionAbort',
  {
    httpStatus: int32('HTTP status code to return.'),
    grpcStatus: str('gRPC status to return.'),
    http2Error: str('HTTP/2 error to return.'),
    percentage: percent,
  },
  { oneOf: [['httpStatus'], ['grpcStatus'], ['http2Error']] },
);

const httpFaultInjection = obj('HTTPFaultInjection', {
  delay: httpFaultInjectionDelay,
  abort: httpFaultInjectionAbort,
});

const httpMirrorPolicy = obj(
  'HTTPMirrorPolicy',
  {
    destination,
    percentage: percent,
  },
  { required: ['destination'] },
);

export const httpRoute = obj('HTTPRoute', {
  name: str('Route name, used in logs and stats.'),
  match: arr(httpMatchRequest, 'Conditions for the rule; any one must match.'),
  route: arr(httpRouteDestination, 'Weighted destinations to forward to.'),
  redirect: httpRedirect,
  directResponse: httpDirectResponse,
  delegate,
  rewrite: httpRewrite,
  timeout: duration('Request timeout.'),
  retries: httpRetry,
  fault: httpFaultInjection,
  mirror: destination,
  mirrors: arr(httpMirrorPolicy, 'Destinations to mirror traffic to.'),
  mirrorPercent: uint32('Deprecated: use mirrorPercentage.'),
  mirror_percent: uint32('Deprecated snake_case spelling of mirrorPercent.'),
  mirrorPercentage: percent,
  corsPolicy,
  headers,
});

const l4MatchAttributes = obj('L4MatchAttributes', {
  destinationSubnets: strList('Destination IPs or CIDRs.'),
  port: uint32('Port on the host being addressed.'),
  sourceSubnet: str('Source IP or CIDR.'),
  sourceLabels: strMap('Labels of the source workloads.'),
  gateways: strList('Gateways the match applies to.'),
  sourceNamespace: str('Namespace of the source workloads.'),
});

const tlsMatchAttributes = obj(
  'TLSMatchAttributes',
  {
    sniHosts: strList('SNI values to match.'),
    destinationSubnets: strList('Destination IPs or CIDRs.'),
    port: uint32('Port on the host being addressed.'),
    sourceLabels: strMap('Labels of the source workloads.'),
    gateways: strList('Gateways the match applies to.'),
    sourceNamespace: str('Namespace of the source workloads.'),
  },
  { required: ['sniHosts'] },
);

const tcpRoute = obj('TCPRoute', {
  match: arr(l4MatchAttributes, 'Conditions for the rule.'),
  route: arr(routeDestination, 'Destinations to forward to.'),
});

const tlsRoute = obj(
  'TLSRoute',
  {
    match: arr(tlsMatchAttributes, 'Conditions for the rule.'),
    route: arr(routeDestination, 'Destinations to forward to.'),
  },
  { required: ['match'] },
);

export const virtualServiceSpec = obj('VirtualServiceSpec', {
  hosts: strList('Destination hosts these rules apply to.'),
  gateways: strList('Gateways and sidecars (`mesh`) that apply these routes.'),
  http: arr(httpRoute, 'Ordered HTTP route rules.'),
  tls: arr(tlsRoute, 'Ordered rules for unterminated TLS traffic.'),
  tcp: arr(tcpRoute, 'Ordered rules for opaque TCP traffic.'),
  exportTo: strList('Namespaces the VirtualService is visible to.'),
});

export const virtualServiceKind: KindSchema = {
  group: 'networking.istio.io',
  kind: 'VirtualService',
  versions: networkingVersions,
  plural: 'virtualservices',
  singular: 'virtualservice',
  shortNames: ['vs'],
  categories: networkingCategories,
  scope: 'Namespaced',
  crd: true,
  spec: virtualServiceSpec,
  status: anyObject(),
  printerColumns: [
    { name: 'Gateways', type: 'string', jsonPath: '.spec.gateways', description: 'Gateways that apply these routes' },
    { name: 'Hosts', type: 'string', jsonPath: '.spec.hosts', description: 'Destination hosts' },
    ageColumn,
  ],
};

// ---------------------------------------------------------------------------------------------
// DestinationRule
// ---------------------------------------------------------------------------------------------

const httpCookieAttribute = obj(
  'HTTPCookieAttribute',
  {
    name: str('Attribute name.'),
    value: str('Attribute value.'),
  },
  { required: ['name'] },
);

const httpCookie = obj(
  'HTTPCookie',
  {
    name: str('Cookie name.'),
    path: str('Cookie path.'),
    ttl: duration('Cookie lifetime.'),
    attributes: arr(httpCookieAttribute, 'Extra cookie attributes.'),
  },
  { required: ['name'] },
);

const ringHash = obj('RingHash', {
  minimumRingSize: int64('Minimum number of virtual nodes on the ring.', { minimum: 0 }),
});

const magLev = obj('MagLev', {
  tableSize: int64('Maglev lookup table size (a prime).', { minimum: 0 }),
});

const consistentHashLB = obj(
  'ConsistentHashLB',
  {
    httpHeaderName: str('Hash on this request header.'),
    httpCookie,
    useSourceIp: bool('Hash on the source IP.'),
    httpQueryParameterName: str('Hash on this query parameter.'),
    ringHash,
    maglev: magLev,
    minimumRingSize: int64('Deprecated: use ringHash.minimumRingSize.', { minimum: 0 }),
  },
  { oneOf: [['httpHeaderName'], ['httpCookie'], ['useSourceIp'], ['httpQueryParameterName']] },
);

const localityFailover = obj('LocalityLoadBalancerSettingFailover', {
  from: str('Originating region.'),
  to: str('Region to fail over to.'),
});

const localityDistribute = obj('LocalityLoadBalancerSettingDistribute', {
  from: str('Originating locality (`region/zone/subzone`, `*` wildcards allowed).'),
  to: map(uint32(), 'Weights per destination locality.'),
});

export const localityLoadBalancerSetting = obj('LocalityLoadBalancerSetting', {
  distribute: arr(localityDistribute, 'Explicit weighted traffic distribution between localities.'),
  failover: arr(localityFailover, 'Region failover order.'),
  failoverPriority: strList('Ordered labels used to prioritise endpoints.'),
  enabled: bool('Enable locality load balancing.'),
});

const zoneAwareLoadBalancerSetting = obj('ZoneAwareLoadBalancerSetting', {
  enabled: bool('Enable zone-aware load balancing.'),
  failover: arr(localityFailover, 'Region failover order.'),
  failoverPriority: strList('Ordered labels used to prioritise endpoints.'),
  minClusterSize: uint32('Minimum upstream hosts in the local zone for zone-aware routing.', { minimum: 1 }),
});

const warmupConfiguration = obj(
  'WarmupConfiguration',
  {
    duration: duration('Warmup window for new endpoints.'),
    minimumPercent: double('Starting traffic share for a new endpoint.', { minimum: 0, maximum: 100 }),
    aggression: double('How fast traffic increases during warmup.', { minimum: 0 }),
  },
  { required: ['duration'] },
);

const backendUtilization = obj('BackendUtilization', {
  weightExpirationPeriod: duration('How long reported utilization stays valid.'),
  weightStabilizationPeriod: duration('Delay before reported weights are trusted.'),
  weightUpdatePeriod: duration('How often weights are recomputed.'),
  errorUtilizationPenaltyPercent: uint32('Extra penalty for endpoints returning errors.'),
  metricNamesForComputingUtilization: strList('Custom ORCA metric names used as utilization.'),
});

export const loadBalancerSettings = obj(
  'LoadBalancerSettings',
  {
    simple: enumOf(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'], 'Simple load balancing algorithm.'),
    consistentHash: consistentHashLB,
    backendUtilization,
    localityLbSetting: localityLoadBalancerSetting,
    zoneAwareLbSetting: zoneAwareLoadBalancerSetting,
    warmupDurationSecs: duration('Deprecated: use warmup.'),
    warmup: warmupConfiguration,
  },
  { oneOf: [['simple'], ['consistentHash'], ['backendUtilization']] },
);

const tcpKeepalive = obj('TCPKeepalive', {
  probes: uint32('Unanswered probes before the connection is dropped.'),
  time: duration('Idle time before probes start.'),
  interval: duration('Interval between probes.'),
});

const tcpSettings = obj('TCPSettings', {
  maxConnections: int32('Maximum HTTP/1 or TCP connections to a host.'),
  connectTimeout: duration('TCP connect timeout.'),
  tcpKeepalive,
  maxConnectionDuration: duration('Maximum lifetime of a connection.'),
  idleTimeout: duration('Idle timeout for TCP connections.'),
});

const http2KeepAlive = obj('HTTP2KeepAlive', {
  interval: duration('Interval between HTTP/2 PINGs.'),
  timeout: duration('Time to wait for a PING response.'),
});

const httpSettings = obj('HTTPSettings', {
  http1MaxPendingRequests: int32('Maximum queued requests waiting for a connection.'),
  http2MaxRequests: int32('Maximum active requests to a destination.'),
  maxRequestsPerConnection: int32('Maximum requests per connection.'),
  maxRetries: int32('Maximum outstanding retries.'),
  idleTimeout: duration('Idle timeout for upstream connections.'),
  h2UpgradePolicy: enumOf(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'], 'Whether to upgrade HTTP/1.1 connections to HTTP/2.'),
  useClientProtocol: bool('Keep the client protocol upstream.'),
  maxConcurrentStreams: int32('Maximum concurrent HTTP/2 streams per connection.'),
  http2KeepAlive,
});

export const connectionPoolSettings = obj('ConnectionPoolSettings', {
  tcp: tcpSettings,
  http: httpSettings,
});

export const outlierDetection = obj('OutlierDetection', {
  splitExternalLocalOriginErrors: bool('Count local-origin failures separately.'),
  consecutiveLocalOriginFailures: uint32('Local-origin failures before ejection.'),
  consecutiveGatewayErrors: uint32('Gateway errors (502/503/504) before ejection.'),
  consecutive5xxErrors: uint32('5xx errors before ejection.'),
  consecutiveErrors: int32('Deprecated: use consecutive5xxErrors.'),
  interval: duration('Time between ejection sweeps.'),
  baseEjectionTime: duration('Minimum ejection duration.'),
  maxEjectionPercent: int32('Maximum percentage of hosts that may be ejected.'),
  minHealthPercent: int32('Healthy percentage below which detection is disabled.'),
  outlierDetectionHttpErrorCodes: arr(uint32(undefined, { minimum: 100, maximum: 599 }), 'HTTP status codes treated as outlier failures.'),
});

export const clientTLSSettings = obj('ClientTLSSettings', {
  mode: enumOf(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'], 'TLS mode for upstream connections.'),
  clientCertificate: str('Client certificate file path.'),
  privateKey: str('Client private key file path.'),
  caCertificates: str('CA certificate file path.'),
  credentialName: str('Secret holding client TLS credentials.'),
  subjectAltNames: strList('Allowed server certificate SANs.'),
  sni: str('SNI to present to the server.'),
  insecureSkipVerify: bool('Skip server certificate verification.'),
  caCrl: str('Certificate revocation list file path.'),
});

const portTrafficPolicy = obj('PortTrafficPolicy', {
  port: portSelector,
  loadBalancer: loadBalancerSettings,
  connectionPool: connectionPoolSettings,
  outlierDetection,
  tls: clientTLSSettings,
});

const tunnelSettings = obj(
  'TunnelSettings',
  {
    protocol: str('Tunnel protocol: CONNECT (default) or POST.'),
    targetHost: str('Host the connection is tunneled to.'),
    targetPort: uint32('Port the connection is tunneled to.'),
  },
  { required: ['targetHost', 'targetPort'] },
);

const proxyProtocol = obj('ProxyProtocol', {
  version: enumOf(['V1', 'V2'], 'PROXY protocol version.'),
});

const retryBudget = obj('RetryBudget', {
  percent: double('Allowed concurrent retries as a percentage of active requests.', { minimum: 0, maximum: 100 }),
  minRetryConcurrency: uint32('Minimum allowed concurrent retries.'),
  budgetInterval: duration('Window over which the budget is computed.'),
});

export const trafficPolicy = obj('TrafficPolicy', {
  loadBalancer: loadBalancerSettings,
  connectionPool: connectionPoolSettings,
  outlierDetection,
  tls: clientTLSSettings,
  portLevelSettings: arr(portTrafficPolicy, 'Per-port overrides.', { maxItems: 4096 }),
  tunnel: tunnelSettings,
  proxyProtocol,
  retryBudget,
});

const subset = obj(
  'Subset',
  {
    name: str('Subset name, referenced from routes.'),
    labels: strMap('Endpoint labels selecting the subset.'),
    trafficPolicy,
  },
  { required: ['name'] },
);

export const destinationRuleSpec = obj(
  'DestinationRuleSpec',
  {
    host: str('Service the rule applies to.'),
    trafficPolicy,
    subsets: arr(subset, 'Named versions of the service.'),
    exportTo: strList('Namespaces the DestinationRule is visible to.'),
    workloadSelector: typeWorkloadSelector,
  },
  { required: ['host'] },
);

export const destinationRuleKind: KindSchema = {
  group: 'networking.istio.io',
  kind: 'DestinationRule',
  versions: networkingVersions,
  plural: 'destinationrules',
  singular: 'destinationrule',
  shortNames: ['dr'],
  categories: networkingCategories,
  scope: 'Namespaced',
  crd: true,
  spec: destinationRuleSpec,
  status: anyObject(),
  printerColumns: [{ name: 'Host', type: 'string', jsonPath: '.spec.host', description: 'Service the rule applies to' }, ageColumn],
};

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

export const port = obj(
  'Port',
  {
    number: uint32('Port number.'),
    protocol: str('Protocol: HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP or TLS.'),
    name: str('Port name.'),
    targetPort: uint32('Port on the endpoint traffic is sent to.'),
  },
  { required: ['number', 'protocol', 'name'] },
);

const tlsCertificate = obj('TLSCertificate', {
  serverCertificate: str('Server certificate file path.'),
  privateKey: str('Private key file path.'),
  caCertificates: str('CA certificate file path.'),
});

const tlsProtocolVersion = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

export const serverTLSSettings = obj('ServerTLSSettings', {
  httpsRedirect: bool('Redirect plain HTTP requests to HTTPS.'),
  mode: enumOf(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'], 'TLS mode for this port.'),
  serverCertificate: str('Server certificate file path.'),
  privateKey: str('Private key file path.'),
  caCertificates: str('CA certificate file path for client verification.'),
  caCrl: str('Certificate revocation list file path.'),
  credentialName: str('Secret holding the server credentials.'),
  credentialNames: strList('Up to two secrets (e.g. RSA and ECDSA).', { minItems: 1, maxItems: 2 }),
  caCertCredentialName: str('Secret or ConfigMap holding the CA certificate.'),
  tlsCertificates: arr(tlsCertificate, 'Up to two inline certificate/key pairs.', { minItems: 1, maxItems: 2 }),
  subjectAltNames: strList('Allowed client certificate SANs.'),
  verifyCertificateSpki: strList('Allowed client SPKI hashes (base64).'),
  verifyCertificateHash: strList('Allowed client certificate hashes (hex).'),
  minProtocolVersion: enumOf(tlsProtocolVersion, 'Minimum TLS version.'),
  maxProtocolVersion: enumOf(tlsProtocolVersion, 'Maximum TLS version.'),
  cipherSuites: strList('Allowed cipher suites.'),
  ecdhCurves: strList('Allowed ECDH curves.'),
  insecureSkipVerify: bool('Skip client certificate verification.'),
});

const server = obj(
  'Server',
  {
    port,
    bind: str('IP or Unix socket the listener binds to.'),
    hosts: strList('Hosts exposed by this server (`namespace/host`).'),
    tls: serverTLSSettings,
    defaultEndpoint: str('Deprecated: endpoint traffic is forwarded to.'),
    name: str('Server name, unique within the gateway.'),
  },
  { required: ['port', 'hosts'] },
);

export const gatewaySpec = obj('GatewaySpec', {
  servers: arr(server, 'Servers (listeners) of the gateway.'),
  selector: strMap('Labels of the gateway pods this applies to.'),
});

export const gatewayKind: KindSchema = {
  group: 'networking.istio.io',
  kind: 'Gateway',
  versions: networkingVersions,
  plural: 'gateways',
  singular: 'gateway',
  shortNames: ['gw'],
  categories: networkingCategories,
  scope: 'Namespaced',
  crd: true,
  spec: gatewaySpec,
  status: anyObject(),
};

// ---------------------------------------------------------------------------------------------
// WorkloadEntry (also the element type of ServiceEntry endpoints)
// ---------------------------------------------------------------------------------------------

export const workloadEntrySpec = obj('WorkloadEntrySpec', {
  address: str('IP, hostname or Unix socket of the workload.', { maxLength: 256 }),
  ports: map(uint32(), 'Port name to port number overrides.'),
  labels: strMap('Labels of the workload.'),
  network: str('Network the workload is on.', { maxLength: 2048 }),
  locality: str('Locality (`region/zone/subzone`).', { maxLength: 2048 }),
  weight: uint32('Load balancing weight.'),
  serviceAccount: str('Service account of the workload.', { maxLength: 253 }),
});

export const workloadEntryKind: KindSchema = {
  group: 'networking.istio.io',
  kind: 'WorkloadEntry',
  versions: networkingVersions,
  plural: 'workloadentries',
  singular: 'workloadentry',
  shortNames: ['we'],
  categories: networkingCategories,
  scope: 'Namespaced',
  crd: true,
  spec: workloadEntrySpec,
  status: anyObject(),
  printerColumns: [ageColumn, { name: 'Address', type: 'string', jsonPath: '.spec.address', description: 'Address of the workload' }],
};

// ---------------------------------------------------------------------------------------------
// ServiceEntry
// ---------------------------------------------------------------------------------------------

const servicePort = obj(
  'ServicePort',
  {
    number: uint32('Port number.'),
    protocol: str('Protocol exposed on the port.', { maxLength: 256 }),
    name: str('Port name.', { maxLength: 256 }),
    targetPort: uint32('Port on the endpoints traffic is sent to.'),
  },
  { required: ['number', 'name'] },
);

export const serviceEntrySpec = obj(
  'ServiceEntrySpec',
  {
    hosts: strList('Hosts of the service.', { minItems: 1, maxItems: 256 }),
    addresses: arr(str(undefined, { maxLength: 64 }), 'Virtual IPs of the service.', { maxItems: 256 }),
    ports: arr(servicePort, 'Ports of the service.', { maxItems: 256 }),
    location: enumOf(['MESH_EXTERNAL', 'MESH_INTERNAL'], 'Whether the service is inside the mesh.'),
    resolution: enumOf(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'], 'How endpoint addresses are resolved.'),
    endpoints: arr(workloadEntrySpec, 'Static endpoints of the service.', { maxItems: 4096 }),
    workloadSelector,
    exportTo: strList('Namespaces the ServiceEntry is visible to.'),
    subjectAltNames: strList('Allowed server certificate SANs.'),
  },
  { required: ['hosts'] },
);

export const serviceEntryKind: KindSchema = {
  group: 'networking.istio.io',
  kind: 'ServiceEntry',
  versions: networkingVersions,
  plural: 'serviceentries',
  singular: 'serviceentry',
  shortNames: ['se'],
  categories: networkingCategories,
  scope: 'Namespaced',
  crd: true,
  spec: serviceEntrySpec,
  status: anyObject(),
  printerColumns: [
    { name: 'Hosts', type: 'string', jsonPath: '.spec.hosts', description: 'Hosts of the service' },
    { name: 'Location', type: 'string', jsonPath: '.spec.location', description: 'Inside or outside the mesh' },
    { name: 'Resolution', type: 'string', jsonPath: '.spec.resolution', description: 'Endpoint resolution mode' },
    ageColumn,
  ],
};

// ---------------------------------------------------------------------------------------------
// Sidecar
// ---------------------------------------------------------------------------------------------

const sidecarPort = obj('SidecarPort', {
  number: uint32('Port number.'),
  protocol: str('Protocol exposed on the port.'),
  name: str('Port name.'),
  targetPort: uint32('Port on the endpoint traffic is sent to.'),
});

const captureMode = enumOf(['DEFAULT', 'IPTABLES', 'NONE'], 'How traffic reaches the listener.');

const istioIngressListener = obj(
  'IstioIngressListener',
  {
    port: sidecarPort,
    bind: str('IP the listener binds to.'),
    captureMode,
    defaultEndpoint: str('Loopback IP endpoint or Unix socket traffic is forwarded to.'),
    tls: serverTLSSettings,
    connectionPool: connectionPoolSettings,
  },
  { required: ['port'] },
);

const istioEgressListener = obj(
  'IstioEgressListener',
  {
    port: sidecarPort,
    bind: str('IP or Unix socket the listener binds to.'),
    captureMode,
    hosts: strList('Services reachable through the listener (`namespace/dnsName`).'),
  },
  { required: ['hosts'] },
);

const outboundTrafficPolicy = obj('OutboundTrafficPolicy', {
  mode: enumOf(['REGISTRY_ONLY', 'ALLOW_ANY'], 'Handling of traffic to unknown destinations.'),
  egressProxy: destination,
});

export const sidecarSpec = obj('SidecarSpec', {
  workloadSelector,
  ingress: arr(istioIngressListener, 'Inbound listeners.'),
  egress: arr(istioEgressListener, 'Outbound listeners.'),
  inboundConnectionPool: connectionPoolSettings,
  outboundTrafficPolicy,
});

export const sidecarKind: KindSchema = {
  group: 'networking.istio.io',
  kind: 'Sidecar',
  versions: networkingVersions,
  plural: 'sidecars',
  singular: 'sidecar',
  categories: networkingCategories,
  scope: 'Namespaced',
  crd: true,
  spec: sidecarSpec,
  status: anyObject(),
};
