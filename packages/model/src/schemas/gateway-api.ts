/**
 * gateway.networking.k8s.io/v1: GatewayClass, Gateway, HTTPRoute (standard channel, plus the
 * experimental fields Istio implements: rule `retry`, `sessionPersistence`, the CORS filter and the
 * Gateway `tls`/`allowedListeners`/`defaultScope` fields).
 *
 * Type names are prefixed `K8s` wherever they could clash with an Istio message name.
 */
import { anyObject, arr, bool, duration, enumOf, int32, type KindSchema, map, obj, type Schema, str } from '../schema/dsl.ts';
import { k8sLabelSelector } from './kubernetes.ts';

const group = 'gateway.networking.k8s.io';
const categories = ['gateway-api'] as const;
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' } as const;

// Common value types of the Gateway API, with their CRD validation.
const dnsSubdomainPattern = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
const groupName = (description = 'API group of the referent; empty for the core group.'): Schema =>
  str(description, { maxLength: 253, pattern: `^$|^${dnsSubdomainPattern}$` });
const kindName = (description = 'Kind of the referent.'): Schema => str(description, { minLength: 1, maxLength: 63, pattern: '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$' });
const objectName = (description = 'Name of the referent.'): Schema => str(description, { minLength: 1, maxLength: 253 });
const namespaceName = (description = 'Namespace of the referent.'): Schema => str(description, { minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });
const sectionName = (description: string): Schema => str(description, { minLength: 1, maxLength: 253, pattern: `^${dnsSubdomainPattern}$` });
const hostname = (description: string): Schema => str(description, { minLength: 1, maxLength: 253, pattern: `^(\\*\\.)?${dnsSubdomainPattern}$` });
const preciseHostname = (description: string): Schema => str(description, { minLength: 1, maxLength: 253, pattern: `^${dnsSubdomainPattern}$` });
const portNumber = (description: string): Schema => int32(description, { minimum: 1, maximum: 65535 });
const headerName = (description: string): Schema => str(description, { minLength: 1, maxLength: 256, pattern: "^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$" });
/** Gateway API durations (GEP-2257): up to four `<number><unit>` parts, units h, m, s, ms. */
const gwDuration = (description: string): Schema => ({ ...duration(description), pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$' });

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

/** ParentReference: a Gateway (default) or, for mesh routing, a Service (`group: ""`, `kind: Service`). */
export const k8sParentReference = obj(
  'K8sParentReference',
  {
    group: groupName('API group of the parent (default gateway.networking.k8s.io; "" for a Service).'),
    kind: kindName('Kind of the parent (default Gateway).'),
    namespace: namespaceName('Namespace of the parent (default: the route namespace).'),
    name: objectName('Name of the parent.'),
    sectionName: sectionName('Listener name (Gateway) or port name (Service) to attach to.'),
    port: portNumber('Port to attach to (Gateway listener port or Service port).'),
  },
  { required: ['name'] },
);

const k8sBackendObjectReference = obj(
  'K8sBackendObjectReference',
  {
    group: groupName('API group of the backend (default "" for the core group).'),
    kind: kindName('Kind of the backend (default Service).'),
    name: objectName('Name of the backend.'),
    namespace: namespaceName('Namespace of the backend (default: the route namespace).'),
    port: portNumber('Destination port; required for a Service.'),
  },
  { required: ['name'] },
);

const k8sLocalObjectReference = obj(
  'K8sGatewayLocalObjectReference',
  {
    group: groupName(),
    kind: kindName(),
    name: objectName(),
  },
  { required: ['group', 'kind', 'name'] },
);

const k8sSecretObjectReference = obj(
  'K8sSecretObjectReference',
  {
    group: groupName('API group of the referent (default "" for the core group).'),
    kind: kindName('Kind of the referent (default Secret).'),
    name: objectName(),
    namespace: namespaceName(),
  },
  { required: ['name'] },
);

const k8sObjectReference = obj(
  'K8sObjectReference',
  {
    group: groupName(),
    kind: kindName(),
    name: objectName(),
    namespace: namespaceName(),
  },
  { required: ['group', 'kind', 'name'] },
);

// ---------------------------------------------------------------------------------------------
// GatewayClass
// ---------------------------------------------------------------------------------------------

const k8sParametersReference = obj(
  'K8sParametersReference',
  {
    group: groupName(),
    kind: kindName(),
    name: objectName(),
    namespace: namespaceName('Namespace of a namespaced parameters resource.'),
  },
  { required: ['group', 'kind', 'name'] },
);

export const gatewayClassSpec = obj(
  'GatewayClassSpec',
  {
    controllerName: str('Controller that manages Gateways of this class (`domain/path`).', {
      minLength: 1,
      maxLength: 253,
      pattern: `^${dnsSubdomainPattern}\\/[A-Za-z0-9\\/\\-._~%!$&'()*+,;=:]+$`,
    }),
    parametersRef: k8sParametersReference,
    description: str('Human-readable description of the class.', { maxLength: 64 }),
  },
  { required: ['controllerName'] },
);

export const gatewayClassKind: KindSchema = {
  group,
  kind: 'GatewayClass',
  versions: ['v1'],
  plural: 'gatewayclasses',
  singular: 'gatewayclass',
  shortNames: ['gc'],
  categories,
  scope: 'Cluster',
  crd: true,
  spec: gatewayClassSpec,
  status: anyObject(),
  printerColumns: [
    { name: 'Controller', type: 'string', jsonPath: '.spec.controllerName' },
    { name: 'Accepted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].status' },
    ageColumn,
    { name: 'Description', type: 'string', jsonPath: '.spec.description' },
  ],
};

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

const k8sListenerTLSConfig = obj('K8sListenerTLSConfig', {
  mode: enumOf(['Terminate', 'Passthrough'], 'Terminate TLS at the gateway (default) or pass it through.'),
  certificateRefs: arr(k8sSecretObjectReference, 'Certificates used to terminate TLS.', { maxItems: 64 }),
  options: map(str(undefined, { maxLength: 4096 }), 'Implementation-specific TLS options.'),
});

const k8sRouteNamespaces = obj('K8sRouteNamespaces', {
  from: enumOf(['All', 'Selector', 'Same'], 'Namespaces routes may attach from (default Same).'),
  selector: k8sLabelSelector,
});

const k8sRouteGroupKind = obj(
  'K8sRouteGroupKind',
  {
    group: groupName('API group of the route (default gateway.networking.k8s.io).'),
    kind: kindName('Kind of the route.'),
  },
  { required: ['kind'] },
);

const k8sAllowedRoutes = obj('K8sAllowedRoutes', {
  namespaces: k8sRouteNamespaces,
  kinds: arr(k8sRouteGroupKind, 'Route kinds that may attach (default: by protocol).', { maxItems: 8 }),
});

export const k8sListener = obj(
  'K8sListener',
  {
    name: sectionName('Listener name, unique within the Gateway.'),
    hostname: hostname('Hostname to match (SNI and/or Host header); wildcard prefix allowed.'),
    port: portNumber('Network port.'),
    protocol: str('Protocol: HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed custom protocol.', { minLength: 1, maxLength: 255 }),
    tls: k8sListenerTLSConfig,
    allowedRoutes: k8sAllowedRoutes,
  },
  { required: ['name', 'port', 'protocol'] },
);

const k8sGatewaySpecAddress = obj('K8sGatewaySpecAddress', {
  type: str('Address type: IPAddress (default), Hostname, NamedAddress or domain-prefixed.', { minLength: 1, maxLength: 253 }),
  value: str('The address; empty asks the implementation to assign one.', { maxLength: 253 }),
});

const k8sGatewayInfrastructure = obj('K8sGatewayInfrastructure', {
  labels: map(str(undefined, { maxLength: 63 }), 'Labels for resources created for the Gateway.'),
  annotations: map(str(undefined, { maxLength: 4096 }), 'Annotations for resources created for the Gateway.'),
  parametersRef: obj(
    'K8sLocalParametersReference',
    {
      group: groupName(),
      kind: kindName(),
      name: objectName(),
    },
    { required: ['group', 'kind', 'name'] },
  ),
});

const k8sAllowedListeners = obj('K8sAllowedListeners', {
  namespaces: obj('K8sListenerNamespaces', {
    from: enumOf(['All', 'Selector', 'Same', 'None'], 'Namespaces ListenerSets may attach from (default None).'),
    selector: k8sLabelSelector,
  }),
});

const k8sFrontendTLSValidation = obj(
  'K8sFrontendTLSValidation',
  {
    caCertificateRefs: arr(k8sObjectReference, 'CA certificates used to verify clients.', { minItems: 1, maxItems: 8 }),
    mode: enumOf(['AllowValidOnly', 'AllowInsecureFallback'], 'Whether clients without a valid certificate are accepted.'),
  },
  { required: ['caCertificateRefs'] },
);

const k8sGatewayTLSSettings = obj('K8sGatewayTLSSettings', {
  validation: k8sFrontendTLSValidation,
});

const k8sGatewayTLSConfig = obj('K8sGatewayTLSConfig', {
  backend: obj('K8sGatewayBackendTLS', {
    clientCertificateRef: k8sSecretObjectReference,
  }),
  frontend: obj(
    'K8sFrontendTLSConfig',
    {
      default: k8sGatewayTLSSettings,
      perPort: arr(
        obj(
          'K8sTLSPortConfig',
          {
            port: portNumber('Port the settings apply to.'),
            tls: k8sGatewayTLSSettings,
          },
          { required: ['port', 'tls'] },
        ),
        'Per-port overrides of the default.',
        { maxItems: 64 },
      ),
    },
    { required: ['default'] },
  ),
});

export const k8sGatewaySpec = obj(
  'K8sGatewaySpec',
  {
    gatewayClassName: objectName('GatewayClass of this Gateway.'),
    listeners: arr(k8sListener, 'Logical endpoints bound on the Gateway addresses.', { minItems: 1, maxItems: 64 }),
    addresses: arr(k8sGatewaySpecAddress, 'Requested addresses.', { maxItems: 16 }),
    infrastructure: k8sGatewayInfrastructure,
    allowedListeners: k8sAllowedListeners,
    tls: k8sGatewayTLSConfig,
    defaultScope: str('Makes this a default Gateway for routes in the given scope (experimental).'),
  },
  { required: ['gatewayClassName', 'listeners'] },
);

export const k8sGatewayKind: KindSchema = {
  group,
  kind: 'Gateway',
  versions: ['v1'],
  plural: 'gateways',
  singular: 'gateway',
  shortNames: ['gtw'],
  categories,
  scope: 'Namespaced',
  crd: true,
  spec: k8sGatewaySpec,
  status: anyObject(),
  printerColumns: [
    { name: 'Class', type: 'string', jsonPath: '.spec.gatewayClassName' },
    { name: 'Address', type: 'string', jsonPath: '.status.addresses[*].value' },
    { name: 'Programmed', type: 'string', jsonPath: '.status.conditions[?(@.type=="Programmed")].status' },
    ageColumn,
  ],
};

// ---------------------------------------------------------------------------------------------
// HTTPRoute
// ---------------------------------------------------------------------------------------------

const k8sHTTPPathMatch = obj('K8sHTTPPathMatch', {
  type: enumOf(['Exact', 'PathPrefix', 'RegularExpression'], 'How the path is matched (default PathPrefix).'),
  value: str('Path to match (default `/`).', { maxLength: 1024 }),
});

const k8sHTTPHeaderMatch = obj(
  'K8sHTTPHeaderMatch',
  {
    type: enumOf(['Exact', 'RegularExpression'], 'How the value is matched (default Exact).'),
    name: headerName('Header name (case-insensitive).'),
    value: str('Value to match.', { minLength: 1, maxLength: 4096 }),
  },
  { required: ['name', 'value'] },
);

const k8sHTTPQueryParamMatch = obj(
  'K8sHTTPQueryParamMatch',
  {
    type: enumOf(['Exact', 'RegularExpression'], 'How the value is matched (default Exact).'),
    name: headerName('Query parameter name (exact match).'),
    value: str('Value to match.', { minLength: 1, maxLength: 1024 }),
  },
  { required: ['name', 'value'] },
);

const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

export const k8sHTTPRouteMatch = obj('K8sHTTPRouteMatch', {
  path: k8sHTTPPathMatch,
  headers: arr(k8sHTTPHeaderMatch, 'Headers that must all match.', { maxItems: 16 }),
  queryParams: arr(k8sHTTPQueryParamMatch, 'Query parameters that must all match.', { maxItems: 16 }),
  method: enumOf(httpMethods, 'HTTP method to match.'),
});

const k8sHTTPHeader = obj(
  'K8sHTTPHeader',
  {
    name: headerName('Header name.'),
    value: str('Header value.', { minLength: 1, maxLength: 4096 }),
  },
  { required: ['name', 'value'] },
);

const k8sHTTPHeaderFilter = obj('K8sHTTPHeaderFilter', {
  set: arr(k8sHTTPHeader, 'Headers to overwrite.', { maxItems: 16 }),
  add: arr(k8sHTTPHeader, 'Headers to append to.', { maxItems: 16 }),
  remove: arr(str(), 'Header names to remove.', { maxItems: 16 }),
});

const k8sHTTPPathModifier = obj(
  'K8sHTTPPathModifier',
  {
    type: enumOf(['ReplaceFullPath', 'ReplacePrefixMatch'], 'Kind of path modification.'),
    replaceFullPath: str('Replacement for the whole path.', { maxLength: 1024 }),
    replacePrefixMatch: str('Replacement for the matched path prefix.', { maxLength: 1024 }),
  },
  { required: ['type'] },
);

const k8sFraction = obj(
  'K8sFraction',
  {
    numerator: int32('Numerator.', { minimum: 0 }),
    denominator: int32('Denominator (default 100).', { minimum: 1 }),
  },
  { required: ['numerator'] },
);

const k8sHTTPRequestMirrorFilter = obj(
  'K8sHTTPRequestMirrorFilter',
  {
    backendRef: k8sBackendObjectReference,
    percent: int32('Percentage of requests mirrored.', { minimum: 0, maximum: 100 }),
    fraction: k8sFraction,
  },
  { required: ['backendRef'], oneOf: [['percent'], ['fraction']] },
);

const k8sHTTPRequestRedirectFilter = obj('K8sHTTPRequestRedirectFilter', {
  scheme: enumOf(['http', 'https'], 'Scheme of the Location header.'),
  hostname: preciseHostname('Hostname of the Location header.'),
  path: k8sHTTPPathModifier,
  port: portNumber('Port of the Location header.'),
  statusCode: int32('Redirect status code: 301, 302 (default), 303, 307 or 308.', { minimum: 301, maximum: 308 }),
});

const k8sHTTPURLRewriteFilter = obj('K8sHTTPURLRewriteFilter', {
  hostname: preciseHostname('Replacement Host header.'),
  path: k8sHTTPPathModifier,
});

const k8sHTTPCORSFilter = obj('K8sHTTPCORSFilter', {
  allowOrigins: arr(str(undefined, { minLength: 1, maxLength: 253 }), 'Allowed origins (`scheme://host[:port]`, wildcards allowed).', { maxItems: 64 }),
  allowCredentials: bool('Allow credentials on cross-origin requests.'),
  allowMethods: arr(enumOf([...httpMethods, '*']), 'Allowed methods.', { maxItems: 9 }),
  allowHeaders: arr(str(undefined, { minLength: 1, maxLength: 256 }), 'Allowed request headers.', { maxItems: 64 }),
  exposeHeaders: arr(str(undefined, { minLength: 1, maxLength: 256 }), 'Response headers exposed to scripts.', { maxItems: 64 }),
  maxAge: int32('Seconds a preflight result may be cached (default 5).', { minimum: 1 }),
});

const filterTypes = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS', 'ExternalAuth'] as const;

export const k8sHTTPRouteFilter = obj(
  'K8sHTTPRouteFilter',
  {
    type: enumOf(filterTypes, 'Which filter this is; the matching field must be set.'),
    requestHeaderModifier: k8sHTTPHeaderFilter,
    responseHeaderModifier: k8sHTTPHeaderFilter,
    requestMirror: k8sHTTPRequestMirrorFilter,
    requestRedirect: k8sHTTPRequestRedirectFilter,
    urlRewrite: k8sHTTPURLRewriteFilter,
    cors: k8sHTTPCORSFilter,
    externalAuth: anyObject('External authorization settings (experimental).'),
    extensionRef: k8sLocalObjectReference,
  },
  {
    required: ['type'],
    oneOf: [['requestHeaderModifier'], ['responseHeaderModifier'], ['requestMirror'], ['requestRedirect'], ['urlRewrite'], ['cors'], ['externalAuth'], ['extensionRef']],
  },
);

export const k8sHTTPBackendRef = obj(
  'K8sHTTPBackendRef',
  {
    group: groupName('API group of the backend (default "" for the core group).'),
    kind: kindName('Kind of the backend (default Service).'),
    name: objectName('Name of the backend.'),
    namespace: namespaceName('Namespace of the backend (default: the route namespace).'),
    port: portNumber('Destination port; required for a Service.'),
    weight: int32('Relative share of traffic (default 1).', { minimum: 0, maximum: 1000000 }),
    filters: arr(k8sHTTPRouteFilter, 'Filters applied to requests sent to this backend.', { maxItems: 16 }),
  },
  { required: ['name'] },
);

const k8sHTTPRouteTimeouts = obj('K8sHTTPRouteTimeouts', {
  request: gwDuration('Timeout for the whole request; 0s disables it.'),
  backendRequest: gwDuration('Timeout for each request to a backend; 0s disables it.'),
});

const k8sHTTPRouteRetry = obj('K8sHTTPRouteRetry', {
  codes: arr(int32(undefined, { minimum: 400, maximum: 599 }), 'Response codes that trigger a retry.'),
  attempts: int32('Maximum retries.'),
  backoff: gwDuration('Minimum delay between retries.'),
});

const k8sSessionPersistence = obj('K8sSessionPersistence', {
  sessionName: str('Cookie or header name.', { maxLength: 128 }),
  absoluteTimeout: gwDuration('Session lifetime.'),
  idleTimeout: gwDuration('Idle timeout of the session.'),
  type: enumOf(['Cookie', 'Header'], 'How the session is tracked (default Cookie).'),
  cookieConfig: obj('K8sCookieConfig', {
    lifetimeType: enumOf(['Permanent', 'Session'], 'Cookie lifetime (default Session).'),
  }),
});

export const k8sHTTPRouteRule = obj('K8sHTTPRouteRule', {
  name: sectionName('Rule name, unique within the route.'),
  matches: arr(k8sHTTPRouteMatch, 'Conditions; any one must match (default: path prefix `/`).', { maxItems: 64 }),
  filters: arr(k8sHTTPRouteFilter, 'Filters applied to matching requests.', { maxItems: 16 }),
  backendRefs: arr(k8sHTTPBackendRef, 'Backends matching requests are sent to.', { maxItems: 16 }),
  timeouts: k8sHTTPRouteTimeouts,
  retry: k8sHTTPRouteRetry,
  sessionPersistence: k8sSessionPersistence,
});

export const httpRouteSpec = obj('HTTPRouteSpec', {
  parentRefs: arr(k8sParentReference, 'Gateways or Services the route attaches to.', { maxItems: 32 }),
  hostnames: arr(hostname('Hostname to match.'), 'Host header values to match.', { maxItems: 16 }),
  rules: arr(k8sHTTPRouteRule, 'Matching rules and their actions.', { maxItems: 16 }),
});

export const httpRouteKind: KindSchema = {
  group,
  kind: 'HTTPRoute',
  versions: ['v1'],
  plural: 'httproutes',
  singular: 'httproute',
  categories,
  scope: 'Namespaced',
  crd: true,
  spec: httpRouteSpec,
  status: anyObject(),
  printerColumns: [{ name: 'Hostnames', type: 'string', jsonPath: '.spec.hostnames' }, ageColumn],
};

// ---------------------------------------------------------------------------------------------
// GRPCRoute
// ---------------------------------------------------------------------------------------------

const k8sGRPCMethodMatch = obj('K8sGRPCMethodMatch', {
  type: enumOf(['Exact', 'RegularExpression'], 'How service and method are matched (default Exact).'),
  service: str('Fully qualified gRPC service name (`package.Service`); empty matches any.', { maxLength: 1024 }),
  method: str('gRPC method name; empty matches any.', { maxLength: 1024 }),
});

const k8sGRPCHeaderMatch = obj(
  'K8sGRPCHeaderMatch',
  {
    type: enumOf(['Exact', 'RegularExpression'], 'How the value is matched (default Exact).'),
    name: headerName('Header name (case-insensitive).'),
    value: str('Value to match.', { minLength: 1, maxLength: 4096 }),
  },
  { required: ['name', 'value'] },
);

export const k8sGRPCRouteMatch = obj('K8sGRPCRouteMatch', {
  method: k8sGRPCMethodMatch,
  headers: arr(k8sGRPCHeaderMatch, 'Headers that must all match.', { maxItems: 16 }),
});

const grpcFilterTypes = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef'] as const;

export const k8sGRPCRouteFilter = obj(
  'K8sGRPCRouteFilter',
  {
    type: enumOf(grpcFilterTypes, 'Which filter this is; the matching field must be set.'),
    requestHeaderModifier: k8sHTTPHeaderFilter,
    responseHeaderModifier: k8sHTTPHeaderFilter,
    requestMirror: k8sHTTPRequestMirrorFilter,
    extensionRef: k8sLocalObjectReference,
  },
  { required: ['type'], oneOf: [['requestHeaderModifier'], ['responseHeaderModifier'], ['requestMirror'], ['extensionRef']] },
);

const k8sGRPCBackendRef = obj(
  'K8sGRPCBackendRef',
  {
    group: groupName('API group of the backend (default "" for the core group).'),
    kind: kindName('Kind of the backend (default Service).'),
    name: objectName('Name of the backend.'),
    namespace: namespaceName('Namespace of the backend (default: the route namespace).'),
    port: portNumber('Destination port; required for a Service.'),
    weight: int32('Relative share of traffic (default 1).', { minimum: 0, maximum: 1000000 }),
    filters: arr(k8sGRPCRouteFilter, 'Filters applied to requests sent to this backend.', { maxItems: 16 }),
  },
  { required: ['name'] },
);

export const k8sGRPCRouteRule = obj('K8sGRPCRouteRule', {
  name: sectionName('Rule name, unique within the route.'),
  matches: arr(k8sGRPCRouteMatch, 'Conditions; any one must match (default: every call).', { maxItems: 64 }),
  filters: arr(k8sGRPCRouteFilter, 'Filters applied to matching calls.', { maxItems: 16 }),
  backendRefs: arr(k8sGRPCBackendRef, 'Backends matching calls are sent to.', { maxItems: 16 }),
  sessionPersistence: k8sSessionPersistence,
});

export const grpcRouteSpec = obj('GRPCRouteSpec', {
  parentRefs: arr(k8sParentReference, 'Gateways or Services the route attaches to.', { maxItems: 32 }),
  hostnames: arr(hostname('Hostname to match.'), 'Host (authority) values to match.', { maxItems: 16 }),
  rules: arr(k8sGRPCRouteRule, 'Matching rules and their actions.', { maxItems: 16 }),
});

export const grpcRouteKind: KindSchema = {
  group,
  kind: 'GRPCRoute',
  versions: ['v1'],
  plural: 'grpcroutes',
  singular: 'grpcroute',
  categories,
  scope: 'Namespaced',
  crd: true,
  spec: grpcRouteSpec,
  status: anyObject(),
  printerColumns: [{ name: 'Hostnames', type: 'string', jsonPath: '.spec.hostnames' }, ageColumn],
};

// ---------------------------------------------------------------------------------------------
// ReferenceGrant
// ---------------------------------------------------------------------------------------------

const k8sReferenceGrantFrom = obj(
  'K8sReferenceGrantFrom',
  {
    group: groupName('API group of the referring kind ("" for the core group).'),
    kind: kindName('Kind of the referring objects (HTTPRoute, GRPCRoute, Gateway...).'),
    namespace: namespaceName('Namespace the referring objects are in.'),
  },
  { required: ['group', 'kind', 'namespace'] },
);

const k8sReferenceGrantTo = obj(
  'K8sReferenceGrantTo',
  {
    group: groupName('API group of the referent ("" for the core group).'),
    kind: kindName('Kind of the referent (Service, Secret...).'),
    name: objectName('Name of the referent; omitted: every object of the kind in the namespace.'),
  },
  { required: ['group', 'kind'] },
);

export const referenceGrantSpec = obj(
  'ReferenceGrantSpec',
  {
    from: arr(k8sReferenceGrantFrom, 'Who may refer to objects of this namespace.', { minItems: 1, maxItems: 16 }),
    to: arr(k8sReferenceGrantTo, 'What of this namespace they may refer to.', { minItems: 1, maxItems: 16 }),
  },
  { required: ['from', 'to'] },
);

export const referenceGrantKind: KindSchema = {
  group,
  kind: 'ReferenceGrant',
  versions: ['v1beta1'],
  plural: 'referencegrants',
  singular: 'referencegrant',
  shortNames: ['refgrant'],
  categories,
  scope: 'Namespaced',
  crd: true,
  spec: referenceGrantSpec,
  printerColumns: [ageColumn],
};
