// Semantic rules for gateway.networking.k8s.io: GatewayClass, Gateway and HTTPRoute.
// They follow the CEL rules (x-kubernetes-validations) of the Gateway API CRDs and the rules the
// specification states for implementations; the structural schema (types, enums, lengths, patterns,
// ranges) is the loader's and is not repeated here.
import { parseDuration } from '@weft/mesh';
import type {
  FieldPath,
  GatewayClassSpec,
  HTTPRouteSpec,
  K8sGatewaySpec,
  K8sHTTPBackendRef,
  K8sHTTPHeaderFilter,
  K8sHTTPPathModifier,
  K8sHTTPRouteFilter,
  K8sHTTPRouteMatch,
  K8sHTTPRouteRule,
  K8sListener,
  K8sParentReference,
} from '@weft/model';
import { isIP, isString, labelKeyError, labelValueError, regexError, regexSizeWarning } from './common.ts';
import { type KindValidator, kindValidator, type ValidationContext } from './context.ts';

const gatewayGroup = 'gateway.networking.k8s.io';

function items<T>(v: readonly T[] | undefined | null): readonly T[] {
  return Array.isArray(v) ? v : [];
}
/** A present, non-list object; keeps the schema type of typed values. */
function isObject<T>(v: T | null | undefined): v is T {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const present = (v: unknown): boolean => v !== undefined && v !== null;

/**
 * What the CRD patterns for Hostname leave open: an IP address is not a hostname, and each DNS label
 * has at most 63 characters. The `*.` prefix, characters and case are checked by the pattern.
 */
function hostnameError(host: string): string | undefined {
  if (isIP(host)) return `hostname ${JSON.stringify(host)} is an IP address; hostnames must be DNS names`;
  const long = host.split('.').find((l) => l.length > 63);
  if (long) return `hostname ${JSON.stringify(host)} has a label longer than 63 characters`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// GatewayClass
// ---------------------------------------------------------------------------------------------

function validateGatewayClass(spec: GatewayClassSpec, ctx: ValidationContext): void {
  const name = spec.controllerName;
  if (!isString(name)) return;
  const slash = name.indexOf('/');
  // The pattern checks the form `domain/path`; it does not limit the length of each domain label.
  if (slash > 0 && name.slice(0, slash).split('.').some((l) => l.length > 63)) {
    ctx.error(['controllerName'], `controllerName ${JSON.stringify(name)} has a domain label longer than 63 characters`);
  }
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

const coreProtocols = ['HTTP', 'HTTPS', 'TLS', 'TCP', 'UDP'] as const;
const prefixedProtocol = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$/;

/** Route kinds each core protocol can carry (the spec's defaults for allowedRoutes.kinds). */
const routeKindsByProtocol: Record<string, readonly string[]> = {
  HTTP: ['HTTPRoute', 'GRPCRoute'],
  HTTPS: ['HTTPRoute', 'GRPCRoute'],
  TLS: ['TLSRoute', 'TCPRoute'],
  TCP: ['TCPRoute'],
  UDP: ['UDPRoute'],
};

/** Un-prefixed protocols Istio defines beyond the core ones: HBONE for waypoints and east-west gateways. */
const istioProtocols = ['HBONE'];

function protocolError(protocol: string): string | undefined {
  if ((coreProtocols as readonly string[]).includes(protocol) || istioProtocols.includes(protocol) || prefixedProtocol.test(protocol)) return undefined;
  const upper = protocol.toUpperCase();
  const hint = (coreProtocols as readonly string[]).includes(upper) ? ` (did you mean ${upper}? protocols are case-sensitive)` : '';
  return `protocol ${JSON.stringify(protocol)} is not supported: use HTTP, HTTPS, TLS, TCP or UDP, or a domain-prefixed protocol such as example.com/PROTOCOL${hint}`;
}

function validateListener(l: K8sListener, path: FieldPath, ctx: ValidationContext): void {
  const protocol = isString(l.protocol) ? l.protocol : undefined;
  if (protocol !== undefined) {
    const e = protocolError(protocol);
    // The API server accepts such a listener and the Gateway reports it (Accepted False,
    // UnsupportedProtocol): refusing the object would keep that status from being written.
    if (e) ctx.warning([...path, 'protocol'], e);
    else if (protocol === 'UDP') ctx.warning([...path, 'protocol'], 'Istio does not implement UDP listeners (UDPRoute); this listener will not be programmed');
  }
  if (isString(l.hostname) && l.hostname !== '') {
    if (protocol === 'TCP' || protocol === 'UDP') ctx.error([...path, 'hostname'], `hostname must not be specified for protocols ['TCP', 'UDP'] (this listener is ${protocol})`);
    else {
      const e = hostnameError(l.hostname);
      if (e) ctx.error([...path, 'hostname'], e);
    }
  }
  const tls = l.tls;
  if (protocol === 'HTTP' || protocol === 'TCP' || protocol === 'UDP') {
    if (present(tls)) ctx.error([...path, 'tls'], `tls must not be specified for protocols ['HTTP', 'TCP', 'UDP'] (this listener is ${protocol})`);
  } else if (protocol === 'HTTPS' || protocol === 'TLS') {
    if (!present(tls)) ctx.error([...path, 'protocol'], `protocol ${protocol} requires tls: set tls.certificateRefs${protocol === 'TLS' ? ', or tls.mode: Passthrough' : ''}`);
  }
  if (isObject(tls)) {
    const mode = tls.mode ?? 'Terminate';
    if (protocol === 'HTTPS' && mode !== 'Terminate') ctx.error([...path, 'tls', 'mode'], `tls mode must be Terminate for protocol HTTPS, found ${String(mode)} (use protocol TLS to pass TLS through)`);
    if (mode === 'Terminate') {
      const refs = Array.isArray(tls.certificateRefs) ? tls.certificateRefs.length : 0;
      const options = isObject(tls.options) ? Object.keys(tls.options).length : 0;
      if (refs === 0 && options === 0) ctx.error([...path, 'tls'], 'certificateRefs or options must be specified when mode is Terminate');
    }
    if (isObject(tls.options)) {
      for (const key of Object.keys(tls.options)) {
        const e = labelKeyError(key);
        if (e) ctx.error([...path, 'tls', 'options', key], e.replace(/^label key/, 'TLS option key'));
      }
    }
  }
  const allowed = l.allowedRoutes;
  if (isObject(allowed)) {
    const ns = allowed.namespaces;
    if (isObject(ns) && ns.from === 'Selector' && !present(ns.selector)) {
      ctx.error([...path, 'allowedRoutes', 'namespaces', 'selector'], 'selector must be specified when allowedRoutes.namespaces.from is Selector');
    }
    const expected = protocol !== undefined ? routeKindsByProtocol[protocol] : undefined;
    items(allowed.kinds).forEach((k, i) => {
      if (!isObject(k) || !isString(k.kind) || !expected) return;
      const group = k.group ?? gatewayGroup;
      if (group === gatewayGroup && !expected.includes(k.kind)) {
        // A status matter too (ResolvedRefs False, InvalidRouteKinds), as for the protocol.
        ctx.warning([...path, 'allowedRoutes', 'kinds', i, 'kind'], `route kind ${k.kind} cannot attach to a ${protocol} listener (supported: ${expected.join(', ')})`);
      }
    });
  }
}

function validateGateway(spec: K8sGatewaySpec, ctx: ValidationContext): void {
  const listeners = items(spec.listeners);
  const names = new Map<string, number>();
  const combos = new Map<string, number>();
  listeners.forEach((l, i) => {
    if (!isObject(l)) return;
    const path: FieldPath = ['listeners', i];
    validateListener(l, path, ctx);
    if (isString(l.name)) {
      const first = names.get(l.name);
      if (first !== undefined) ctx.error([...path, 'name'], `Listener name must be unique within the Gateway: ${JSON.stringify(l.name)} is also listeners[${first}]`);
      else names.set(l.name, i);
    }
    const combo = JSON.stringify([l.port, l.protocol, l.hostname ?? null]);
    const same = combos.get(combo);
    if (same !== undefined) ctx.error(path, `Combination of port, protocol and hostname must be unique for each listener: same as listeners[${same}] (${String(l.port)}/${String(l.protocol)}${l.hostname ? `/${l.hostname}` : ''})`);
    else combos.set(combo, i);
  });

  const seen = new Map<string, number>();
  items(spec.addresses).forEach((a, i) => {
    if (!isObject(a) || !isString(a.value) || a.value === '') return;
    const type = a.type ?? 'IPAddress';
    const path: FieldPath = ['addresses', i, 'value'];
    if (type === 'IPAddress' && !isIP(a.value)) ctx.error(path, `${JSON.stringify(a.value)} is not a valid IP address`);
    if (type === 'Hostname') {
      const e = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(a.value) ? hostnameError(a.value) : `${JSON.stringify(a.value)} is not a valid hostname`;
      if (e) ctx.error(path, e);
    }
    if (type === 'IPAddress' || type === 'Hostname') {
      const key = `${type}/${a.value}`;
      const first = seen.get(key);
      if (first !== undefined) ctx.error(path, `${type} values must be unique: ${JSON.stringify(a.value)} is also addresses[${first}]`);
      else seen.set(key, i);
    }
  });

  const infra = spec.infrastructure;
  if (isObject(infra)) {
    if (isObject(infra.labels)) {
      for (const [k, v] of Object.entries(infra.labels)) {
        const e = labelKeyError(k) ?? (isString(v) ? labelValueError(v) : undefined);
        if (e) ctx.error(['infrastructure', 'labels', k], e);
      }
    }
    if (isObject(infra.annotations)) {
      for (const k of Object.keys(infra.annotations)) {
        const e = labelKeyError(k);
        if (e) ctx.error(['infrastructure', 'annotations', k], e.replace(/^label key/, 'annotation key'));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTPRoute
// ---------------------------------------------------------------------------------------------

/** Parent kinds Istio attaches HTTPRoutes to. */
function parentRefError(ref: K8sParentReference): { field: 'group' | 'kind'; message: string } | undefined {
  const kind = ref.kind ?? 'Gateway';
  const group = ref.group ?? gatewayGroup;
  if (kind === 'Service') {
    if (group === '' || group === 'core') return undefined;
    return {
      field: ref.group === undefined ? 'kind' : 'group',
      message: `a Service parentRef needs group "" (the core group); ${ref.group === undefined ? `without it the group defaults to ${gatewayGroup}` : `found ${JSON.stringify(group)}`}`,
    };
  }
  if (kind === 'Gateway' || kind === 'ListenerSet' || kind === 'XListenerSet') {
    if (group === gatewayGroup || (kind === 'XListenerSet' && group === 'gateway.networking.x-k8s.io')) return undefined;
    return { field: 'group', message: `a ${kind} parentRef needs group ${gatewayGroup}, found ${JSON.stringify(group)}` };
  }
  if (kind === 'ServiceEntry' && group === 'networking.istio.io') return undefined;
  return { field: 'kind', message: `parentRef kind ${group === '' ? '' : `${group}/`}${kind} is not supported: use a Gateway (${gatewayGroup}) or a Service (group "")` };
}

function validateParentRefs(refs: readonly K8sParentReference[], ctx: ValidationContext): void {
  const byParent = new Map<string, number[]>();
  refs.forEach((ref, i) => {
    if (!isObject(ref)) return;
    const e = parentRefError(ref);
    if (e) ctx.error(['parentRefs', i, e.field], e.message);
    const key = JSON.stringify([ref.group ?? gatewayGroup, ref.kind ?? 'Gateway', ref.name, ref.namespace ?? '']);
    const list = byParent.get(key) ?? [];
    list.push(i);
    byParent.set(key, list);
  });
  for (const indices of byParent.values()) {
    if (indices.length < 2) continue;
    const section = (i: number) => refs[i]!.sectionName ?? '';
    const port = (i: number) => refs[i]!.port ?? 0;
    const seen = new Map<string, number>();
    for (const i of indices) {
      const first = indices[0]!;
      if ((section(i) === '') !== (section(first) === '') || (port(i) === 0) !== (port(first) === 0)) {
        ctx.error(['parentRefs', i], `sectionName or port must be specified when parentRefs includes 2 or more references to the same parent (see parentRefs[${first}])`);
        continue;
      }
      const key = `${section(i)}/${port(i)}`;
      const dup = seen.get(key);
      if (dup !== undefined) ctx.error(['parentRefs', i], `sectionName or port must be unique when parentRefs includes 2 or more references to the same parent: same as parentRefs[${dup}]`);
      else seen.set(key, i);
    }
  }
}

const pathChars = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;

/** The CEL rules on HTTPPathMatch for Exact and PathPrefix values. */
function pathValueError(value: string): string | undefined {
  if (!value.startsWith('/')) return `path ${JSON.stringify(value)} must be an absolute path and start with '/'`;
  for (const bad of ['//', '/./', '/../', '%2f', '%2F', '#']) {
    if (value.includes(bad)) return `path ${JSON.stringify(value)} must not contain '${bad}'`;
  }
  for (const end of ['/..', '/.']) {
    if (value.endsWith(end)) return `path ${JSON.stringify(value)} must not end with '${end}'`;
  }
  if (!pathChars.test(value)) return `path ${JSON.stringify(value)} must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$)`;
  return undefined;
}

function validateMatch(m: K8sHTTPRouteMatch, path: FieldPath, ctx: ValidationContext): void {
  const p = m.path;
  if (isObject(p)) {
    const type = p.type ?? 'PathPrefix';
    const value = p.value ?? '/';
    if (isString(value)) {
      const e = type === 'RegularExpression' ? regexError(value) : pathValueError(value);
      const at: FieldPath = [...path, 'path', p.value === undefined ? 'type' : 'value'];
      if (e) ctx.error(at, e);
      const w = type === 'RegularExpression' && !e ? regexSizeWarning(value) : undefined;
      if (w) ctx.warning(at, w);
    }
  }
  for (const field of ['headers', 'queryParams'] as const) {
    const seen = new Map<string, number>();
    items(m[field]).forEach((h, i) => {
      if (!isObject(h) || !isString(h.name)) return;
      const at: FieldPath = [...path, field, i];
      // Header names are case-insensitive; query parameter names are not.
      const key = field === 'headers' ? h.name.toLowerCase() : h.name;
      const first = seen.get(key);
      if (first !== undefined) {
        if (h.name === items(m[field])[first]?.name) ctx.error([...at, 'name'], `duplicate ${field === 'headers' ? 'header' : 'query parameter'} ${JSON.stringify(h.name)}: also ${field}[${first}]`);
        else ctx.warning([...at, 'name'], `header ${JSON.stringify(h.name)} is the same header as ${field}[${first}] (names are case-insensitive); only the first entry is used`);
      } else seen.set(key, i);
      if (h.type === 'RegularExpression' && isString(h.value)) {
        const e = regexError(h.value);
        if (e) ctx.error([...at, 'value'], e);
        const w = e ? undefined : regexSizeWarning(h.value);
        if (w) ctx.warning([...at, 'value'], w);
      }
    });
  }
}

const filterFields = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  CORS: 'cors',
  ExternalAuth: 'externalAuth',
  ExtensionRef: 'extensionRef',
} as const satisfies Record<K8sHTTPRouteFilter['type'], keyof K8sHTTPRouteFilter>;

/** Filter types that may appear at most once in a list of filters. */
const singleFilters = ['CORS', 'RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'] as const;

function validatePathModifier(mod: K8sHTTPPathModifier, path: FieldPath, ctx: ValidationContext): void {
  if (mod.type === 'ReplaceFullPath') {
    if (!present(mod.replaceFullPath)) ctx.error([...path, 'type'], "replaceFullPath must be specified when type is set to 'ReplaceFullPath'");
    if (present(mod.replacePrefixMatch)) ctx.error([...path, 'replacePrefixMatch'], "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set");
  } else if (mod.type === 'ReplacePrefixMatch') {
    if (!present(mod.replacePrefixMatch)) ctx.error([...path, 'type'], "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'");
    if (present(mod.replaceFullPath)) ctx.error([...path, 'replaceFullPath'], "type must be 'ReplaceFullPath' when replaceFullPath is set");
  }
  for (const field of ['replaceFullPath', 'replacePrefixMatch'] as const) {
    const v = mod[field];
    if (isString(v) && v !== '' && !v.startsWith('/')) ctx.error([...path, field], `${field} ${JSON.stringify(v)} must start with '/'`);
  }
}

function validateHeaderFilter(f: K8sHTTPHeaderFilter, path: FieldPath, ctx: ValidationContext): void {
  // Only one action per header name (case-insensitive) across set, add and remove.
  const seen = new Map<string, string>();
  const note = (name: string, at: FieldPath, where: string) => {
    const key = name.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) ctx.error(at, `header ${JSON.stringify(name)} already appears in ${first}: only one action per header name is allowed`);
    else seen.set(key, where);
  };
  for (const field of ['set', 'add'] as const) {
    items(f[field]).forEach((h, i) => {
      if (isObject(h) && isString(h.name)) note(h.name, [...path, field, i, 'name'], `${field}[${i}]`);
    });
  }
  items(f.remove).forEach((name, i) => {
    if (!isString(name)) return;
    if (!/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(name)) ctx.error([...path, 'remove', i], `header name ${JSON.stringify(name)} is not a valid HTTP header name`);
    note(name, [...path, 'remove', i], `remove[${i}]`);
  });
}

const corsOrigin = /^(https?):\/\/(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*)(:\d{1,5})?$/;

function backendRefPortError(ref: { group?: string; kind?: string; port?: number }): string | undefined {
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  if (group === '' && kind === 'Service' && !present(ref.port)) return 'Must have port for Service reference';
  return undefined;
}

/** Checks one list of filters (a rule's, or a backendRef's) and returns the filter types present. */
function validateFilters(filters: readonly K8sHTTPRouteFilter[], path: FieldPath, ctx: ValidationContext): Set<string> {
  const types = new Map<string, number>();
  filters.forEach((f, i) => {
    if (!isObject(f) || !isString(f.type)) return;
    const at: FieldPath = [...path, i];
    const own = filterFields[f.type];
    if (own !== undefined && !present(f[own])) ctx.error([...at, 'type'], `filter.${own} must be specified for ${f.type} filter.type`);
    for (const [type, field] of Object.entries(filterFields)) {
      if (type !== f.type && present(f[field])) ctx.error([...at, field], `filter.${field} must be nil if the filter.type is not ${type}`);
    }
    const first = types.get(f.type);
    if (first !== undefined && (singleFilters as readonly string[]).includes(f.type)) ctx.error([...at, 'type'], `${f.type} filter cannot be repeated (also at index ${first})`);
    if (first === undefined) types.set(f.type, i);

    if (f.type === 'RequestHeaderModifier' && isObject(f.requestHeaderModifier)) validateHeaderFilter(f.requestHeaderModifier, [...at, 'requestHeaderModifier'], ctx);
    if (f.type === 'ResponseHeaderModifier' && isObject(f.responseHeaderModifier)) validateHeaderFilter(f.responseHeaderModifier, [...at, 'responseHeaderModifier'], ctx);
    if (isObject(f.requestRedirect)) {
      const r = f.requestRedirect;
      if (isObject(r.path)) validatePathModifier(r.path, [...at, 'requestRedirect', 'path'], ctx);
      if (typeof r.statusCode === 'number' && ![301, 302, 303, 307, 308].includes(r.statusCode)) {
        ctx.error([...at, 'requestRedirect', 'statusCode'], `statusCode ${r.statusCode} is not a redirect status: use 301, 302, 303, 307 or 308`);
      }
      if (isString(r.hostname)) {
        const e = hostnameError(r.hostname);
        if (e) ctx.error([...at, 'requestRedirect', 'hostname'], e);
      }
    }
    if (isObject(f.urlRewrite)) {
      if (isObject(f.urlRewrite.path)) validatePathModifier(f.urlRewrite.path, [...at, 'urlRewrite', 'path'], ctx);
      if (isString(f.urlRewrite.hostname)) {
        const e = hostnameError(f.urlRewrite.hostname);
        if (e) ctx.error([...at, 'urlRewrite', 'hostname'], e);
      }
    }
    if (isObject(f.requestMirror)) {
      const m = f.requestMirror;
      if (isObject(m.backendRef)) {
        const e = backendRefPortError(m.backendRef);
        if (e) ctx.error([...at, 'requestMirror', 'backendRef'], e);
      }
      if (isObject(m.fraction) && typeof m.fraction.numerator === 'number') {
        const denominator = typeof m.fraction.denominator === 'number' ? m.fraction.denominator : 100;
        if (m.fraction.numerator > denominator) ctx.error([...at, 'requestMirror', 'fraction', 'numerator'], `numerator must be less than or equal to denominator (${m.fraction.numerator} > ${denominator})`);
      }
    }
    if (isObject(f.cors)) {
      const c = f.cors;
      for (const field of ['allowOrigins', 'allowMethods', 'allowHeaders'] as const) {
        const list = items(c[field] as readonly unknown[] | undefined);
        if (list.includes('*') && list.length > 1) ctx.error([...at, 'cors', field], `${field} cannot contain '*' alongside other values`);
      }
      items(c.allowOrigins).forEach((o, k) => {
        if (isString(o) && o !== '*' && !corsOrigin.test(o)) ctx.error([...at, 'cors', 'allowOrigins', k], `origin ${JSON.stringify(o)} must be "*" or <scheme>://<host>[:<port>] with scheme http or https`);
      });
    }
  });
  if (types.has('RequestRedirect') && types.has('URLRewrite')) {
    ctx.error([...path, types.get('URLRewrite')!, 'type'], 'May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both');
  }
  return new Set(types.keys());
}

/** A ReplacePrefixMatch path modifier needs exactly one match, of type PathPrefix. */
function usesReplacePrefix(filters: readonly K8sHTTPRouteFilter[]): K8sHTTPRouteFilter | undefined {
  return filters.find((f) => isObject(f) && [f.requestRedirect, f.urlRewrite].some((x) => isObject(x) && isObject(x.path) && x.path.type === 'ReplacePrefixMatch' && present(x.path.replacePrefixMatch)));
}

function validateBackendRef(ref: K8sHTTPBackendRef, path: FieldPath, matches: readonly K8sHTTPRouteMatch[], ctx: ValidationContext): void {
  const e = backendRefPortError(ref);
  if (e) ctx.error(path, e);
  const filters = items(ref.filters);
  validateFilters(filters, [...path, 'filters'], ctx);
  if (usesReplacePrefix(filters) && !singlePrefixMatch(matches)) {
    ctx.error([...path, 'filters'], 'Within backendRefs, when using a RequestRedirect or URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified');
  }
}

function singlePrefixMatch(matches: readonly K8sHTTPRouteMatch[]): boolean {
  return matches.length === 1 && isObject(matches[0]?.path) && (matches[0].path.type ?? 'PathPrefix') === 'PathPrefix';
}

function validateRule(rule: K8sHTTPRouteRule, path: FieldPath, ctx: ValidationContext): void {
  const matches = items(rule.matches);
  matches.forEach((m, i) => {
    if (isObject(m)) validateMatch(m, [...path, 'matches', i], ctx);
  });
  const filters = items(rule.filters);
  const types = validateFilters(filters, [...path, 'filters'], ctx);
  const backends = items(rule.backendRefs);
  if (types.has('RequestRedirect') && backends.length > 0) {
    ctx.error([...path, 'backendRefs'], 'RequestRedirect filter must not be used together with backendRefs');
  }
  if (usesReplacePrefix(filters) && !singlePrefixMatch(matches)) {
    ctx.error([...path, 'matches'], 'When using a RequestRedirect or URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified');
  }
  backends.forEach((b, i) => {
    if (isObject(b)) validateBackendRef(b, [...path, 'backendRefs', i], matches, ctx);
  });
  if (backends.length > 0 && backends.every((b) => isObject(b) && b.weight === 0)) {
    ctx.warning([...path, 'backendRefs'], 'every backendRef has weight 0: requests matching this rule get a 500 response');
  }
  const t = rule.timeouts;
  if (isObject(t) && isString(t.request) && isString(t.backendRequest)) {
    const request = parseDuration(t.request);
    const backend = parseDuration(t.backendRequest);
    if (request !== undefined && backend !== undefined && request !== 0 && backend > request) {
      ctx.error([...path, 'timeouts', 'backendRequest'], `backendRequest timeout cannot be longer than request timeout (${t.backendRequest} > ${t.request})`);
    }
  }
  const sp = rule.sessionPersistence;
  if (isObject(sp) && isObject(sp.cookieConfig)) {
    if (sp.cookieConfig.lifetimeType === 'Permanent' && !present(sp.absoluteTimeout)) {
      ctx.error([...path, 'sessionPersistence', 'cookieConfig', 'lifetimeType'], 'AbsoluteTimeout must be specified when cookie lifetimeType is Permanent');
    }
    if (sp.type === 'Header') ctx.error([...path, 'sessionPersistence', 'cookieConfig'], 'cookieConfig can only be set with type Cookie');
  }
}

function validateHTTPRoute(spec: HTTPRouteSpec, ctx: ValidationContext): void {
  validateParentRefs(items(spec.parentRefs), ctx);
  const hosts = new Map<string, number>();
  items(spec.hostnames).forEach((h, i) => {
    if (!isString(h)) return;
    const e = hostnameError(h);
    if (e) ctx.error(['hostnames', i], e);
    const first = hosts.get(h);
    if (first !== undefined) ctx.warning(['hostnames', i], `hostname ${JSON.stringify(h)} is listed twice (also hostnames[${first}])`);
    else hosts.set(h, i);
  });
  const rules = items(spec.rules);
  const names = new Map<string, number>();
  let totalMatches = 0;
  rules.forEach((rule, i) => {
    if (!isObject(rule)) return;
    validateRule(rule, ['rules', i], ctx);
    totalMatches += items(rule.matches).length;
    if (isString(rule.name)) {
      const first = names.get(rule.name);
      if (first !== undefined) ctx.error(['rules', i, 'name'], `Rule name must be unique within the route: ${JSON.stringify(rule.name)} is also rules[${first}]`);
      else names.set(rule.name, i);
    }
  });
  if (totalMatches > 128) ctx.error(['rules'], `the total number of matches across all rules must be at most 128, found ${totalMatches}`);
}

export const gatewayApiValidators: readonly KindValidator[] = [
  kindValidator('gateway.networking.k8s.io/GatewayClass', validateGatewayClass),
  kindValidator('gateway.networking.k8s.io/Gateway', validateGateway),
  kindValidator('gateway.networking.k8s.io/HTTPRoute', validateHTTPRoute),
];
