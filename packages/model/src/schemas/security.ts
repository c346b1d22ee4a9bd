/**
 * security.istio.io: PeerAuthentication, AuthorizationPolicy, RequestAuthentication.
 *
 * Field names are protojson camelCase; object names are the istio/api proto message names.
 */
import { anyObject, arr, bool, duration, enumOf, type KindSchema, map, obj, type Schema, str } from '../schema/dsl.ts';
import { typeWorkloadSelector } from './networking.ts';

/** Both served security versions share one schema; v1 is the storage version. */
export const securityVersions = ['v1beta1', 'v1'] as const;
const securityCategories = ['istio-io', 'security-istio-io'] as const;
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since the resource was created' } as const;

const strList = (description?: string, o: Parameters<typeof arr>[2] = {}): Schema => arr(str(), description, o);

/** `istio.type.v1beta1.PolicyTargetReference`: the resource (e.g. a Gateway or Service) a policy attaches to. */
export const policyTargetReference = obj(
  'PolicyTargetReference',
  {
    group: str('API group of the target; empty for the core group.', {
      maxLength: 253,
      pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    }),
    kind: str('Kind of the target.', { minLength: 1, maxLength: 63, pattern: '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$' }),
    name: str('Name of the target.', { minLength: 1, maxLength: 253 }),
    namespace: str('Namespace of the target; must be the policy namespace.'),
  },
  { required: ['kind', 'name'] },
);

// ---------------------------------------------------------------------------------------------
// PeerAuthentication
// ---------------------------------------------------------------------------------------------

const peerAuthenticationMutualTLS = obj('PeerAuthenticationMutualTLS', {
  mode: enumOf(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'], 'Mutual TLS mode.'),
});

export const peerAuthenticationSpec = obj('PeerAuthenticationSpec', {
  selector: typeWorkloadSelector,
  mtls: peerAuthenticationMutualTLS,
  portLevelMtls: map(peerAuthenticationMutualTLS, 'Per-port mutual TLS settings, keyed by port number.'),
});

export const peerAuthenticationKind: KindSchema = {
  group: 'security.istio.io',
  kind: 'PeerAuthentication',
  versions: securityVersions,
  plural: 'peerauthentications',
  singular: 'peerauthentication',
  shortNames: ['pa'],
  categories: securityCategories,
  scope: 'Namespaced',
  crd: true,
  spec: peerAuthenticationSpec,
  status: anyObject(),
  printerColumns: [{ name: 'Mode', type: 'string', jsonPath: '.spec.mtls.mode', description: 'Mutual TLS mode' }, ageColumn],
};

// ---------------------------------------------------------------------------------------------
// AuthorizationPolicy
// ---------------------------------------------------------------------------------------------

const source = obj('Source', {
  principals: strList('Peer identities (`trust-domain/ns/namespace/sa/name`).'),
  notPrincipals: strList('Negated principals.'),
  requestPrincipals: strList('Request identities (`iss/sub`).'),
  notRequestPrincipals: strList('Negated request principals.'),
  namespaces: strList('Peer namespaces.'),
  notNamespaces: strList('Negated namespaces.'),
  serviceAccounts: arr(str(undefined, { maxLength: 320 }), 'Peer service accounts (`[ns/]name`).', { maxItems: 16 }),
  notServiceAccounts: arr(str(undefined, { maxLength: 320 }), 'Negated service accounts.', { maxItems: 16 }),
  ipBlocks: strList('Peer IPs or CIDRs.'),
  notIpBlocks: strList('Negated IP blocks.'),
  remoteIpBlocks: strList('Original client IPs or CIDRs (from X-Forwarded-For or proxy protocol).'),
  notRemoteIpBlocks: strList('Negated remote IP blocks.'),
  trustDomains: strList('Deprecated: peer trust domains.'),
  notTrustDomains: strList('Deprecated: negated trust domains.'),
});

const operation = obj('Operation', {
  hosts: strList('Request hosts.'),
  notHosts: strList('Negated hosts.'),
  ports: strList('Destination ports.'),
  notPorts: strList('Negated ports.'),
  methods: strList('HTTP methods.'),
  notMethods: strList('Negated methods.'),
  paths: strList('Request paths.'),
  notPaths: strList('Negated paths.'),
});

const ruleFrom = obj('RuleFrom', { source });
const ruleTo = obj('RuleTo', { operation });

const condition = obj(
  'Condition',
  {
    key: str('Istio attribute name, e.g. `request.headers[x-id]`.'),
    values: strList('Allowed values.'),
    notValues: strList('Negated values.'),
  },
  { required: ['key'] },
);

const rule = obj('Rule', {
  from: arr(ruleFrom, 'Request sources; any may match.', { maxItems: 512 }),
  to: arr(ruleTo, 'Request operations; any may match.'),
  when: arr(condition, 'Extra conditions; all must match.'),
});

const authorizationPolicyExtensionProvider = obj('AuthorizationPolicyExtensionProvider', {
  name: str('Name of a mesh config extension provider.'),
});

export const authorizationPolicySpec = obj(
  'AuthorizationPolicySpec',
  {
    selector: typeWorkloadSelector,
    targetRef: policyTargetReference,
    targetRefs: arr(policyTargetReference, 'Resources the policy attaches to.', { maxItems: 16 }),
    rules: arr(rule, 'Rules matched against requests.', { maxItems: 512 }),
    action: enumOf(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'], 'Action taken when a rule matches.'),
    provider: authorizationPolicyExtensionProvider,
  },
  { oneOf: [['provider']] },
);

export const authorizationPolicyKind: KindSchema = {
  group: 'security.istio.io',
  kind: 'AuthorizationPolicy',
  versions: securityVersions,
  plural: 'authorizationpolicies',
  singular: 'authorizationpolicy',
  shortNames: ['ap'],
  categories: securityCategories,
  scope: 'Namespaced',
  crd: true,
  spec: authorizationPolicySpec,
  status: anyObject(),
  printerColumns: [{ name: 'Action', type: 'string', jsonPath: '.spec.action', description: 'Action taken on a match' }, ageColumn],
};

// ---------------------------------------------------------------------------------------------
// RequestAuthentication
// ---------------------------------------------------------------------------------------------

const jwtHeader = obj(
  'JWTHeader',
  {
    name: str('Header name.', { minLength: 1 }),
    prefix: str('Prefix stripped before decoding, e.g. `Bearer `.'),
  },
  { required: ['name'] },
);

const claimToHeader = obj(
  'ClaimToHeader',
  {
    header: str('Header to create.', { minLength: 1, pattern: '^[-_A-Za-z0-9]+$' }),
    claim: str('Claim to copy.', { minLength: 1 }),
  },
  { required: ['header', 'claim'] },
);

const nonEmptyStrList = (description: string, o: Parameters<typeof arr>[2] = {}): Schema => arr(str(undefined, { minLength: 1 }), description, o);

const jwtRule = obj('JWTRule', {
  issuer: str('Expected `iss` of the token.', { minLength: 1 }),
  audiences: nonEmptyStrList('Accepted `aud` values.'),
  jwksUri: str('URL of the JSON Web Key Set.', { minLength: 1, maxLength: 2048 }),
  jwks_uri: str('Snake_case spelling of jwksUri.', { minLength: 1, maxLength: 2048 }),
  jwks: str('Inline JSON Web Key Set.'),
  fromHeaders: arr(jwtHeader, 'Headers the token is read from.'),
  fromParams: nonEmptyStrList('Query parameters the token is read from.'),
  fromCookies: nonEmptyStrList('Cookies the token is read from.'),
  outputPayloadToHeader: str('Header receiving the verified payload (base64).'),
  forwardOriginalToken: bool('Keep the token on the forwarded request.'),
  outputClaimToHeaders: arr(claimToHeader, 'Claims copied to request headers.'),
  timeout: duration('Timeout for fetching the JWKS.'),
  spaceDelimitedClaims: nonEmptyStrList('Claims whose values are space-delimited lists.', { maxItems: 64 }),
  presence: enumOf(['OPTIONAL', 'REQUIRED'], 'Whether the token must be present.'),
});

export const requestAuthenticationSpec = obj('RequestAuthenticationSpec', {
  selector: typeWorkloadSelector,
  targetRef: policyTargetReference,
  targetRefs: arr(policyTargetReference, 'Resources the policy attaches to.', { maxItems: 16 }),
  jwtRules: arr(jwtRule, 'JWT issuers and how to validate their tokens.', { maxItems: 4096 }),
});

export const requestAuthenticationKind: KindSchema = {
  group: 'security.istio.io',
  kind: 'RequestAuthentication',
  versions: securityVersions,
  plural: 'requestauthentications',
  singular: 'requestauthentication',
  shortNames: ['ra'],
  categories: securityCategories,
  scope: 'Namespaced',
  crd: true,
  spec: requestAuthenticationSpec,
  status: anyObject(),
};
