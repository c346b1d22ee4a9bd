// Semantic rules for security.istio.io: PeerAuthentication, AuthorizationPolicy, RequestAuthentication.
// They follow Istio's webhook validation (pkg/config/validation) and the CEL rules of Istio's CRDs;
// structural checks (types, enums, required fields, lengths, patterns) are the loader's.
import { parseDuration } from '@weft/mesh';
import type { AuthorizationPolicySpec, FieldPath, JWTRule, Operation, PeerAuthenticationSpec, PolicyTargetReference, RequestAuthenticationSpec, Source, TypeWorkloadSelector } from '@weft/model';
import { cidrError, isString, labelKeyError, labelValueError } from './common.ts';
import { type KindValidator, kindValidator, type ValidationContext } from './context.ts';

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the three kinds
// ---------------------------------------------------------------------------------------------

/** The items of a list field, or none when the field is absent or not a list (the loader reports that). */
function items<T>(v: readonly T[] | undefined | null): readonly T[] {
  return Array.isArray(v) ? v : [];
}

/** A present, non-list object; keeps the schema type of typed values. */
function isObject<T>(v: T | null | undefined): v is T {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const present = (v: unknown): boolean => v !== undefined && v !== null;
const filled = (v: readonly unknown[] | undefined | null): boolean => Array.isArray(v) && v.length > 0;

/** RFC 7230 `token`: what an HTTP header (or cookie) name may contain. */
const httpToken = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Istio's strict header names for headers it creates (outputClaimToHeaders). */
const strictHeaderName = /^[-A-Za-z0-9]+$/;

/**
 * `matchLabels` of a policy selector: Istio refuses empty keys and wildcards, and warns when the
 * selector has no labels (it then selects every workload in the namespace).
 */
function validateSelector(selector: TypeWorkloadSelector | undefined, ctx: ValidationContext): void {
  if (!isObject(selector)) return;
  const labels = selector.matchLabels;
  if (!isObject(labels) || Object.keys(labels).length === 0) {
    ctx.warning(['selector'], 'workload selector specified without labels: the policy applies to every workload in the namespace');
    return;
  }
  for (const [key, value] of Object.entries(labels)) {
    const path: FieldPath = ['selector', 'matchLabels', key];
    if (key === '') {
      ctx.error(path, `empty key is not supported in selector: "=${String(value)}"`);
      continue;
    }
    const wildcard = key.includes('*') || (isString(value) && value.includes('*'));
    if (wildcard) {
      ctx.error(path, `wildcard is not supported in selector: "${key}=${String(value)}" (labels are matched exactly)`);
      continue;
    }
    // Istio accepts these, but no Kubernetes workload can carry such a label, so the selector never matches.
    const keyProblem = labelKeyError(key);
    if (keyProblem) ctx.warning(path, `${keyProblem}: no workload can carry this label, so the selector matches nothing`);
    else if (isString(value)) {
      const valueProblem = labelValueError(value);
      if (valueProblem) ctx.warning(path, `${valueProblem}: no workload can carry this label, so the selector matches nothing`);
    }
  }
}

/** Kinds a policy `targetRef` may name (Istio's allowedTargetRefs), by canonical group. */
const allowedTargetKinds: ReadonlyArray<{ group: string; kind: string }> = [
  { group: 'core', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
];
const allowedTargetText = allowedTargetKinds.map((k) => `${k.group === 'core' ? '' : `${k.group}/`}${k.kind}`).join(', ');

function validateTargetRef(ref: PolicyTargetReference | undefined, path: FieldPath, ctx: ValidationContext): void {
  if (!isObject(ref)) return;
  if (isString(ref.namespace) && ref.namespace !== '') {
    ctx.error([...path, 'namespace'], 'targetRef namespace must not be set: cross namespace referencing is not supported');
  }
  if (!isString(ref.kind) || ref.kind === '') return; // required: the loader reports it
  const group = isString(ref.group) && ref.group !== '' ? ref.group : 'core';
  if (!allowedTargetKinds.some((k) => k.group === group && k.kind === ref.kind)) {
    // Point at the group when the kind is supported but in another group (`kind: Gateway` without its group).
    const sameKind = allowedTargetKinds.find((k) => k.kind === ref.kind);
    const hint = sameKind ? ` (a ${ref.kind} needs group: ${sameKind.group === 'core' ? '""' : sameKind.group})` : '';
    const field = sameKind && present(ref.group) ? 'group' : 'kind';
    ctx.error([...path, field], `targetRef must be to one of ${allowedTargetText} but was ${ref.group ?? ''}/${ref.kind}${hint}`);
  }
}

/** `selector`, `targetRef` and `targetRefs` are exclusive; each ref must name a supported kind. */
function validatePolicyAttachment(spec: { selector?: TypeWorkloadSelector; targetRef?: PolicyTargetReference; targetRefs?: PolicyTargetReference[] }, ctx: ValidationContext): void {
  const set = (['selector', 'targetRef', 'targetRefs'] as const).filter((f) => present(spec[f]));
  if (set.length > 1) ctx.error([set[1]!], `only one of targetRefs or selector can be set (found ${set.join(' and ')})`);
  validateSelector(spec.selector, ctx);
  validateTargetRef(spec.targetRef, ['targetRef'], ctx);
  items(spec.targetRefs).forEach((r, i) => {
    validateTargetRef(r, ['targetRefs', i], ctx);
  });
}

// ---------------------------------------------------------------------------------------------
// PeerAuthentication
// ---------------------------------------------------------------------------------------------

function validatePeerAuthentication(spec: PeerAuthenticationSpec, ctx: ValidationContext): void {
  validateSelector(spec.selector, ctx);
  const ports = spec.portLevelMtls;
  if (!isObject(ports)) return;
  const labels = isObject(spec.selector) ? spec.selector.matchLabels : undefined;
  const keys = Object.keys(ports);
  if (keys.length === 0) {
    ctx.error(['portLevelMtls'], 'port level mTLS, if defined, must have at least one element');
    return;
  }
  if (!isObject(labels) || Object.keys(labels).length === 0) {
    ctx.error(['portLevelMtls'], 'portLevelMtls requires a selector with labels: a mesh or namespace wide PeerAuthentication cannot have port level mTLS');
  }
  for (const key of keys) {
    if (!/^\d+$/.test(key) || Number(key) < 1 || Number(key) > 65535) {
      ctx.error(['portLevelMtls', key], /^\d+$/.test(key) ? `port ${key} must be between 1-65535` : `port ${JSON.stringify(key)} is not a port number (must be between 1-65535)`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// AuthorizationPolicy
// ---------------------------------------------------------------------------------------------

/** `abc`, `abc*`, `*abc` and `*` are Istio's string matches; a `*` anywhere else is matched literally. */
function literalStarWarning(value: string, path: FieldPath, ctx: ValidationContext): void {
  if (value === '*' || !value.includes('*')) return;
  const inner = value.slice(1, -1);
  const literal = inner.includes('*') || (value.startsWith('*') && value.endsWith('*'));
  if (literal) {
    ctx.warning(path, `${JSON.stringify(value)}: "*" is a wildcard only as the whole value, a prefix or a suffix; here it is matched literally`);
  }
}

const sourceLists = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'trustDomains',
  'notTrustDomains',
] as const satisfies readonly (keyof Source)[];

const operationLists = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const satisfies readonly (keyof Operation)[];

/** Istio's CheckServiceAccount: `name` or `namespace/name`, no wildcards, at most 320 characters. */
function serviceAccountError(value: string): string | undefined {
  if (value === '') return 'empty value not allowed';
  if (value.includes('*')) return `${JSON.stringify(value)}: wildcards are not allowed in service accounts`;
  const parts = value.split('/');
  if (parts.length > 2) return `${JSON.stringify(value)}: expected format 'serviceAccount' or 'namespace/serviceAccount'`;
  if (parts.length === 2 && parts[0] === '') return `${JSON.stringify(value)}: expected format 'serviceAccount' or 'namespace/serviceAccount', found empty namespace`;
  if (parts.at(-1) === '') return `${JSON.stringify(value)}: expected format 'serviceAccount' or 'namespace/serviceAccount', found empty serviceAccount`;
  if (value.length > 320) return `${JSON.stringify(value.slice(0, 30))}… is longer than 320 characters`;
  return undefined;
}

/** Istio's ValidateIPs: an address, or a CIDR prefix (host bits may be set). */
function ipError(value: string): string | undefined {
  if (value.includes('/')) return cidrError(value) ? `bad CIDR range (${value})` : undefined;
  return cidrError(value) ? `bad IP address (${value})` : undefined;
}

/** Istio's ValidatePorts: a decimal number 0..65535. */
function portStringError(value: string): string | undefined {
  if (!/^\d+$/.test(value) || Number(value) > 65535) return `bad port (${value}): must be a number between 0 and 65535`;
  return undefined;
}

const pathTemplateLiteral = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/** Istio's CheckValidPathTemplate: `{*}` matches one segment, `{**}` the rest and must come last. */
function pathTemplateError(path: string): string | undefined {
  const isTemplate = path.includes('{*}') || path.includes('{**}');
  let sawMatchAny = false;
  const segments = path.replace(/^\/+|\/+$/g, '').split('/');
  for (const seg of segments) {
    if ((seg === '{*}' || seg === '{**}') && sawMatchAny) return `invalid path template ${JSON.stringify(path)}: {**} must be the last operator`;
    if (seg === '{*}') continue;
    if (seg === '{**}') {
      sawMatchAny = true;
      continue;
    }
    if (seg.includes('{') || seg.includes('}')) return `invalid path ${JSON.stringify(path)}: '{' and '}' are only allowed in the path templates {*} and {**} as whole segments`;
    if (isTemplate && !pathTemplateLiteral.test(seg)) return `invalid path template ${JSON.stringify(path)}: segment ${JSON.stringify(seg)} is not a valid literal (a "*" wildcard cannot be combined with {*} or {**})`;
  }
  return undefined;
}

/** `a[b]` with a non-empty `b`, as Istio requires of map-like attributes. */
function mapKeyOk(key: string): boolean {
  const open = key.indexOf('[');
  return key.endsWith(']') && open > 0 && open < key.length - 2;
}

type AttributeCheck = { keyError?: string; value?: (v: string) => string | undefined };

/** The `when` keys Istio knows, and how their values are checked (security.ValidateAttribute). */
function attribute(key: string): AttributeCheck {
  const mapKey = (): AttributeCheck => (mapKeyOk(key) ? {} : { keyError: `bad key (${key}): should have format a[b]` });
  if (key.startsWith('request.headers')) return mapKey();
  if (key.startsWith('request.experimental.inline.headers')) return mapKey();
  if (key.startsWith('request.auth.claims')) return mapKey();
  if (key.startsWith('experimental.envoy.filters.')) return mapKey();
  switch (key) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return { value: ipError };
    case 'destination.port':
      return { value: portStringError };
    case 'source.serviceAccount':
      return { value: serviceAccountError };
    case 'source.namespace':
    case 'source.principal':
    case 'source.trustDomain':
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
    case 'connection.sni':
      return {};
    case 'destination.namespace':
      return { keyError: `attribute ${key} is replaced by the metadata.namespace` };
    case 'destination.name':
    case 'destination.user':
      return { keyError: `deprecated attribute ${key}: only supported in v1alpha1` };
    default:
      if (key.startsWith('destination.labels')) return { keyError: `attribute ${key} is replaced by the workload selector` };
      return { keyError: `unknown attribute: ${key}` };
  }
}

function validateSource(src: Source, path: FieldPath, ruleIndex: number, custom: boolean, ctx: ValidationContext): { tcp: boolean } {
  const has = (f: (typeof sourceLists)[number]): boolean => filled(src[f]);
  if (!sourceLists.some(has)) {
    ctx.error(path, `\`from.source\` must not be empty, found at rule ${ruleIndex}`);
  }
  if ((has('serviceAccounts') || has('notServiceAccounts')) && (has('principals') || has('notPrincipals') || has('namespaces') || has('notNamespaces'))) {
    ctx.error([...path, has('serviceAccounts') ? 'serviceAccounts' : 'notServiceAccounts'], 'cannot set serviceAccounts with namespaces or principals');
  }
  for (const field of sourceLists) {
    items(src[field]).forEach((v, i) => {
      const at: FieldPath = [...path, field, i];
      if (!isString(v)) return;
      if (v === '') {
        ctx.error(at, `empty value not allowed, found in ${field}`);
        return;
      }
      if (field === 'serviceAccounts' || field === 'notServiceAccounts') {
        const e = serviceAccountError(v);
        if (e) ctx.error(at, e);
      } else if (field.endsWith('pBlocks')) {
        const e = ipError(v);
        if (e) ctx.error(at, e);
      } else literalStarWarning(v, at, ctx);
    });
  }
  if (custom) {
    for (const field of ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals'] as const) {
      if (has(field)) ctx.error([...path, field], `from.source.${field} is currently not supported with CUSTOM action`);
    }
  }
  const tcp = (['principals', 'notPrincipals', 'ipBlocks', 'notIpBlocks', 'namespaces', 'notNamespaces', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'] as const).some((f) => present(src[f]));
  return { tcp };
}

function validateOperation(op: Operation, path: FieldPath, ruleIndex: number, ctx: ValidationContext): { tcp: boolean } {
  if (!operationLists.some((f) => filled(op[f]))) {
    ctx.error(path, `\`to.operation\` must not be empty, found at rule ${ruleIndex}`);
  }
  for (const field of operationLists) {
    items(op[field]).forEach((v, i) => {
      const at: FieldPath = [...path, field, i];
      if (!isString(v)) return;
      if (v === '') {
        ctx.error(at, `empty value not allowed, found in ${field}`);
        return;
      }
      switch (field) {
        case 'ports':
        case 'notPorts': {
          const e = portStringError(v);
          if (e) ctx.error(at, e);
          return;
        }
        case 'paths':
        case 'notPaths': {
          const e = pathTemplateError(v);
          if (e) ctx.error(at, e);
          else if (!v.includes('{*}') && !v.includes('{**}')) literalStarWarning(v, at, ctx);
          return;
        }
        case 'methods':
        case 'notMethods':
          if (v !== '*' && v !== v.toUpperCase()) ctx.warning(at, `method ${JSON.stringify(v)} is matched case-sensitively; HTTP methods are upper case (${v.toUpperCase()})`);
          else literalStarWarning(v, at, ctx);
          return;
        default:
          literalStarWarning(v, at, ctx);
      }
    });
  }
  return { tcp: present(op.ports) || present(op.notPorts) };
}

function validateAuthorizationPolicy(spec: AuthorizationPolicySpec, ctx: ValidationContext): void {
  validatePolicyAttachment(spec, ctx);
  const action = spec.action ?? 'ALLOW';
  const rules = spec.rules;
  const noRules = !Array.isArray(rules) || rules.length === 0;

  if (action === 'CUSTOM') {
    if (noRules) {
      ctx.error(['action'], 'CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
    } else if (!isObject(spec.provider)) {
      ctx.error(['action'], 'CUSTOM action requires `provider.name`: the name of an extension provider in the mesh config');
    } else if (!isString(spec.provider.name) || spec.provider.name === '') {
      ctx.error(isString(spec.provider.name) ? ['provider', 'name'] : ['provider'], '`provider.name` must not be empty');
    } else {
      // Weft has no ext_authz: it does what Istio does for an unknown provider (fail closed).
      ctx.warning(
        ['action'],
        `CUSTOM action is not supported by Weft (no external authorization, provider ${JSON.stringify(spec.provider.name)} is never called): requests this policy's rules match are denied with 403, as Istio does when the extension provider is unknown`,
      );
    }
  } else if (present(spec.provider)) {
    ctx.error(['provider'], `\`provider\` must not be with non CUSTOM action, found ${action}`);
  }
  if (action === 'DENY' && noRules) {
    ctx.error(rules === undefined || rules === null ? ['action'] : ['rules'], 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request');
  }

  let tcpWarned = false;
  items(rules).forEach((rule, i) => {
    const rulePath: FieldPath = ['rules', i];
    if (!isObject(rule)) {
      if (rule === null) ctx.error(rulePath, `\`rule\` must not be nil, found at rule ${i}`);
      return;
    }
    let fromExists = false;
    let toExists = false;
    let tcpInFrom = false;
    let tcpInTo = false;
    if (Array.isArray(rule.from) && rule.from.length === 0) ctx.error([...rulePath, 'from'], `\`from\` must not be empty, found at rule ${i}`);
    items(rule.from).forEach((from, j) => {
      const fromPath: FieldPath = [...rulePath, 'from', j];
      if (!isObject(from)) {
        if (from === null) ctx.error(fromPath, `\`from\` must not be nil, found at rule ${i}`);
        return;
      }
      if (!isObject(from.source)) {
        if (!present(from.source)) ctx.error(fromPath, `\`from.source\` must not be nil, found at rule ${i}`);
        return;
      }
      fromExists = true;
      if (validateSource(from.source, [...fromPath, 'source'], i, action === 'CUSTOM', ctx).tcp) tcpInFrom = true;
    });
    if (Array.isArray(rule.to) && rule.to.length === 0) ctx.error([...rulePath, 'to'], `\`to\` must not be empty, found at rule ${i}`);
    items(rule.to).forEach((to, j) => {
      const toPath: FieldPath = [...rulePath, 'to', j];
      if (!isObject(to)) {
        if (to === null) ctx.error(toPath, `\`to\` must not be nil, found at rule ${i}`);
        return;
      }
      if (!isObject(to.operation)) {
        if (!present(to.operation)) ctx.error(toPath, `\`to.operation\` must not be nil, found at rule ${i}`);
        return;
      }
      toExists = true;
      if (validateOperation(to.operation, [...toPath, 'operation'], i, ctx).tcp) tcpInTo = true;
    });
    items(rule.when).forEach((cond, j) => {
      const condPath: FieldPath = [...rulePath, 'when', j];
      if (!isObject(cond)) {
        if (cond === null) ctx.error(condPath, 'when field cannot be nil');
        return;
      }
      const key = cond.key;
      if (!isString(key)) return; // required: the loader reports it
      if (key === '') {
        ctx.error([...condPath, 'key'], '`key` must not be empty');
        return;
      }
      if (action === 'CUSTOM' && (key === 'source.namespace' || key === 'source.serviceAccount' || key === 'source.principal' || key.startsWith('request.auth.'))) {
        ctx.error([...condPath, 'key'], `${key} is currently not supported with CUSTOM action`);
      }
      if (!filled(cond.values) && !filled(cond.notValues)) {
        ctx.error(condPath, `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
        return;
      }
      const check = attribute(key);
      if (check.keyError) ctx.error([...condPath, 'key'], check.keyError);
      for (const field of ['values', 'notValues'] as const) {
        items(cond[field]).forEach((v, k) => {
          if (!isString(v)) return;
          const at: FieldPath = [...condPath, field, k];
          if (v === '') {
            ctx.error(at, `invalid \`${field === 'values' ? 'value' : 'notValue'}\` for \`key\` ${key}: empty value not allowed`);
            return;
          }
          const e = check.value?.(v);
          if (e) ctx.error(at, `invalid \`${field === 'values' ? 'value' : 'notValue'}\` for \`key\` ${key}: ${e}`);
          else if (!check.value && !check.keyError) literalStarWarning(v, at, ctx);
        });
      }
    });
    if (action === 'DENY' && !tcpWarned && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
      tcpWarned = true;
      ctx.warning(
        rulePath,
        'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port',
      );
    }
  });
}

// ---------------------------------------------------------------------------------------------
// RequestAuthentication
// ---------------------------------------------------------------------------------------------

/** Go's url.Parse as Istio's ParseJwksURI uses it: scheme http or https, a numeric port; we also require a host. */
function jwksUriError(uri: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(uri)) return `jwksUri ${JSON.stringify(uri)} contains a control character`;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase() ?? '';
  if (scheme !== 'http' && scheme !== 'https') return `jwksUri ${JSON.stringify(uri)}: URI scheme ${JSON.stringify(scheme)} is not supported (the URL must start with http:// or https://)`;
  const authority = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(uri)?.[1];
  if (authority === undefined || authority === '') return `jwksUri ${JSON.stringify(uri)} has no host`;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const port = hostPort.startsWith('[') ? /\]:(.*)$/.exec(hostPort)?.[1] : hostPort.includes(':') ? hostPort.slice(hostPort.lastIndexOf(':') + 1) : undefined;
  if (port !== undefined && port !== '' && !/^\d+$/.test(port)) return `jwksUri ${JSON.stringify(uri)} has an invalid port ${JSON.stringify(port)}`;
  const host = port !== undefined ? hostPort.slice(0, hostPort.length - port.length - 1) : hostPort;
  if (host === '' || host === '[]') return `jwksUri ${JSON.stringify(uri)} has no host`;
  try {
    new URL(uri);
  } catch {
    return `jwksUri ${JSON.stringify(uri)} is not a valid URL`;
  }
  return undefined;
}

const knownKeyTypes = new Set(['RSA', 'EC', 'oct', 'OKP']);
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

/** An inline JWKS must parse as a JSON Web Key Set (or a single key); private key material is a warning. */
function validateJwks(jwks: string, path: FieldPath, ctx: ValidationContext): void {
  let doc: unknown;
  try {
    doc = JSON.parse(jwks);
  } catch (e) {
    ctx.error(path, `jwks parse error: not JSON (${(e as Error).message})`);
    return;
  }
  if (!isRecord(doc)) {
    ctx.error(path, 'jwks parse error: expected a JSON object with a "keys" list');
    return;
  }
  const keys: unknown[] = 'keys' in doc ? (Array.isArray(doc.keys) ? doc.keys : []) : [doc];
  if ('keys' in doc && !Array.isArray(doc.keys)) {
    ctx.error(path, 'jwks parse error: "keys" must be a list of keys');
    return;
  }
  if (keys.length === 0) {
    ctx.warning(path, 'jwks has no keys: no token can be verified');
    return;
  }
  keys.forEach((k, i) => {
    if (!isRecord(k)) {
      ctx.error(path, `jwks parse error: key ${i} is not a JSON object`);
      return;
    }
    if (!isString(k.kty) || !knownKeyTypes.has(k.kty)) {
      ctx.error(path, `jwks parse error: key ${i} has ${isString(k.kty) ? `unsupported key type ${JSON.stringify(k.kty)}` : 'no "kty"'} (RSA, EC, oct or OKP)`);
      return;
    }
    if (k.kty === 'RSA' && (!isString(k.n) || !isString(k.e))) ctx.error(path, `jwks parse error: RSA key ${i} needs "n" and "e"`);
    if (privateMembers.some((m) => m in k)) {
      ctx.warning(path, `jwks key ${i}${isString(k.kid) ? ` (kid ${JSON.stringify(k.kid)})` : ''} contains private key material; publish only public keys`);
    }
  });
}

function validateJwtRule(rule: JWTRule, path: FieldPath, ctx: ValidationContext): void {
  const uriField = present(rule.jwksUri) ? 'jwksUri' : present(rule.jwks_uri) ? 'jwks_uri' : undefined;
  const uri = uriField ? rule[uriField] : undefined;
  const issuer = rule.issuer;
  if ((!isString(issuer) || issuer === '') && (!isString(uri) || uri === '')) {
    ctx.error(isString(issuer) ? [...path, 'issuer'] : path, 'issuer or jwksUri must be set');
  }
  const keySources = (['jwksUri', 'jwks_uri', 'jwks'] as const).filter((f) => present(rule[f]));
  if (keySources.length > 1) ctx.error([...path, keySources[1]!], `only one of jwks or jwksUri can be set (found ${keySources.join(' and ')})`);
  if (uriField && isString(uri) && uri !== '') {
    const e = jwksUriError(uri);
    if (e) ctx.error([...path, uriField], e);
  }
  if (isString(rule.jwks) && rule.jwks !== '') validateJwks(rule.jwks, [...path, 'jwks'], ctx);

  items(rule.fromHeaders).forEach((h, i) => {
    if (!isObject(h)) {
      if (h === null) ctx.error([...path, 'fromHeaders', i], 'location header must not be null');
      return;
    }
    if (isString(h.name) && h.name !== '' && !httpToken.test(h.name)) {
      ctx.error([...path, 'fromHeaders', i, 'name'], `header name ${JSON.stringify(h.name)} is not a valid HTTP header name`);
    }
  });
  items(rule.fromCookies).forEach((c, i) => {
    if (isString(c) && c !== '' && !httpToken.test(c)) ctx.error([...path, 'fromCookies', i], `cookie name ${JSON.stringify(c)} is not a valid cookie name`);
  });
  items(rule.fromParams).forEach((p, i) => {
    if (isString(p) && /[\s&=#]/.test(p)) ctx.error([...path, 'fromParams', i], `query parameter name ${JSON.stringify(p)} cannot contain whitespace, '&', '=' or '#'`);
  });
  if (isString(rule.outputPayloadToHeader) && rule.outputPayloadToHeader !== '' && !httpToken.test(rule.outputPayloadToHeader)) {
    ctx.error([...path, 'outputPayloadToHeader'], `header name ${JSON.stringify(rule.outputPayloadToHeader)} is not a valid HTTP header name`);
  }
  const claimHeaders = new Map<string, number>();
  items(rule.outputClaimToHeaders).forEach((c, i) => {
    const at: FieldPath = [...path, 'outputClaimToHeaders', i];
    if (!isObject(c)) {
      if (c === null) ctx.error(at, 'outputClaimToHeaders must not be null');
      return;
    }
    if (!isString(c.header) || c.header === '' || !isString(c.claim) || c.claim === '') return; // required, non-empty: the loader reports it
    if (!strictHeaderName.test(c.header)) {
      // The CRD allows '_', Istio's webhook does not: only letters, digits and '-'.
      if (/^[-_A-Za-z0-9]+$/.test(c.header)) ctx.error([...at, 'header'], `header name ${c.header} is not a valid header name (letters, digits and '-' only)`);
      return;
    }
    const lower = c.header.toLowerCase();
    const first = claimHeaders.get(lower);
    if (first !== undefined) ctx.warning([...at, 'header'], `header ${c.header} is also written by outputClaimToHeaders[${first}]; only one claim reaches the request`);
    else claimHeaders.set(lower, i);
  });
  if (isString(rule.timeout)) {
    const seconds = parseDuration(rule.timeout);
    if (seconds !== undefined) {
      if (seconds < 0.001) ctx.error([...path, 'timeout'], `timeout ${rule.timeout} must be a valid duration greater than 1ms`);
      else if (Math.abs(Math.round(seconds * 1000) - seconds * 1000) > 1e-6) ctx.error([...path, 'timeout'], `timeout ${rule.timeout}: only durations to ms precision are supported`);
    }
  }
}

function validateRequestAuthentication(spec: RequestAuthenticationSpec, ctx: ValidationContext): void {
  validatePolicyAttachment(spec, ctx);
  const issuers = new Map<string, number>();
  items(spec.jwtRules).forEach((rule, i) => {
    const path: FieldPath = ['jwtRules', i];
    if (!isObject(rule)) {
      if (rule === null) ctx.error(path, 'jwt rule must be an object, not null');
      return;
    }
    validateJwtRule(rule, path, ctx);
    if (isString(rule.issuer) && rule.issuer !== '') {
      const first = issuers.get(rule.issuer);
      if (first !== undefined) ctx.warning([...path, 'issuer'], `issuer ${JSON.stringify(rule.issuer)} is also configured by jwtRules[${first}]`);
      else issuers.set(rule.issuer, i);
    }
  });
}

export const securityValidators: readonly KindValidator[] = [
  kindValidator('security.istio.io/PeerAuthentication', validatePeerAuthentication),
  kindValidator('security.istio.io/AuthorizationPolicy', validateAuthorizationPolicy),
  kindValidator('security.istio.io/RequestAuthentication', validateRequestAuthentication),
];
