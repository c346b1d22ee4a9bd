// Rules shared by the networking.istio.io kinds, following Istio's pkg/config/validation (and its
// agent package): host names, ports, protocols, labels, exportTo, gateway references, header
// manipulation, string matches, TLS settings, connection pools and destinations.
import { parseDurationNanos } from '@weft/mesh';
import type { ConnectionPoolSettings, Destination, FieldPath, ServerTLSSettings, StringMatch, TypeWorkloadSelector, WorkloadSelector } from '@weft/model';
import { routingClaim } from '@weft/model';
import { isIP, isIPv4, isIPv6, isIstioDns1123Label, istioDurationError, regexError, regexSizeWarning } from '../common.ts';
import type { ValidationContext } from '../context.ts';

// ---------------------------------------------------------------------------------------------
// Tolerant accessors: the loader reports wrong types; validators skip what they cannot read.
// ---------------------------------------------------------------------------------------------

/** The items of a list field, or none when absent or not a list. */
export function items<T>(v: readonly T[] | undefined | null): readonly T[] {
  return Array.isArray(v) ? v : [];
}

/** A map (not a list, not null). Keeps the declared type of typed fields. */
export function isObject<T extends object>(v: T | null | undefined): v is T;
export function isObject(v: unknown): v is Record<string, unknown>;
export function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Entries of a map field, or none when absent or not a map. */
export function entries<T>(m: Record<string, T> | undefined | null): [string, T][] {
  return isObject(m) ? (Object.entries(m) as [string, T][]) : [];
}

export const present = (v: unknown): boolean => v !== undefined && v !== null;
export const filled = (v: readonly unknown[] | undefined | null): boolean => Array.isArray(v) && v.length > 0;
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
/** A number field, with Go's zero value for unset; int64 fields may be written as strings. */
export const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : 0);

/** Go's `%q` for the strings that appear in Istio's messages. */
export const q = (s: string): string => JSON.stringify(s);

// ---------------------------------------------------------------------------------------------
// Host names
// ---------------------------------------------------------------------------------------------

const wildcardLabel = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

function dnsPreconditionError(name: string): string | undefined {
  if (name.length > 255) return `domain name ${q(name)} too long (max 255)`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

/**
 * Istio's ValidateDNS1123Labels: each label a DNS-1123 label, one trailing dot allowed, TLD not all
 * digits. Messages name `whole`, the full host (Istio names only the part after a wildcard label).
 */
function dnsLabelsError(domain: string, whole = domain): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1]!;
  if (/^[+-]?\d{1,18}$/.test(tld)) return `domain name ${q(whole)} invalid (top level domain ${q(tld)} cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isIstioDns1123Label(label)) return `domain name ${q(whole)} invalid (label ${q(label)} invalid)`;
  }
  return undefined;
}

/** A fully qualified domain name, no wildcards (Istio's ValidateFQDN). */
export function fqdnError(fqdn: string): string | undefined {
  return dnsPreconditionError(fqdn) ?? dnsLabelsError(fqdn);
}

/** A domain that may have a wildcard first label: `*`, `*.example.com`, `*-foo.example.com`, `*foo.com` (Istio's ValidateWildcardDomain). */
export function wildcardDomainError(domain: string): string | undefined {
  const pre = dnsPreconditionError(domain);
  if (pre) return pre;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (first.length > 63 || !wildcardLabel.test(first)) return `domain name ${q(domain)} invalid (label ${q(first)} invalid)`;
  if (dot >= 0) return dnsLabelsError(domain.slice(dot + 1), domain);
  return undefined;
}

/**
 * Hosts of a VirtualService bound to a gateway: also accepts the SNI names Istio generates for
 * AUTO_PASSTHROUGH (`outbound_.<port>_._.<hostname>`) when the service has TLS routes with SNI hosts.
 */
export function gatewayBoundDomainError(sni: boolean, domain: string): string | undefined {
  const pre = dnsPreconditionError(domain);
  if (pre) return pre;
  if (sni && domain.startsWith('outbound_')) {
    const parts = domain.split('_');
    if (parts.length < 4) return `domain name ${domain} invalid, should follow 'outbound_.<PORT>_._.<HOSTNAME>' format`;
    const port = trimDots(parts[1]!);
    const hostname = trimDots(parts[3]!);
    if (!/[0-9]/.test(port)) return `domain name ${q(domain)} invalid (label ${q(port)} invalid). should follow outbound_.<PORT>_._.<HOSTNAME> format`;
    if (!/[a-zA-Z]/.test(hostname)) return `domain name ${q(domain)} invalid (label ${q(hostname)} invalid). should follow outbound_.<PORT>_._.<HOSTNAME> format`;
    return undefined;
  }
  return wildcardDomainError(domain);
}

const trimDots = (s: string): string => s.replace(/^\.+|\.+$/g, '');

/** `*.foo.com` style: contains a wildcard that is not the whole host or a leading `*.` label. */
export function partialWildcardError(host: string): string | undefined {
  if (host.includes('*') && host.length !== 1 && !host.startsWith('*.')) return `partial wildcard ${q(host)} not allowed`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Addresses, ports, protocols
// ---------------------------------------------------------------------------------------------

/** Go's netip.ParseAddr: IPv4, IPv6, or IPv6 with a zone (`fe80::1%eth0`). */
export function isIPAddress(s: string): boolean {
  if (isIP(s)) return true;
  const pct = s.indexOf('%');
  return pct > 0 && pct < s.length - 1 && isIPv6(s.slice(0, pct));
}

export function ipAddressError(addr: string): string | undefined {
  return isIPAddress(addr) ? undefined : `${addr} is not a valid IP`;
}

/** An IP address, or a CIDR block when the text has one `/` (Istio's ValidateIPSubnet). */
export function ipSubnetError(subnet: string): string | undefined {
  if (subnet.split('/').length === 2) {
    const [ip, bits] = subnet.split('/') as [string, string];
    const max = isIPv4(ip) ? 32 : 128;
    if (!isIP(ip) || !/^(?:0|[1-9]\d{0,2})$/.test(bits) || Number(bits) > max) return `${subnet} is not a valid CIDR block`;
    return undefined;
  }
  return ipAddressError(subnet);
}

export function portError(port: number): string | undefined {
  if (Number.isInteger(port) && port >= 1 && port <= 65535) return undefined;
  return `port number ${port} must be in the range 1..65535`;
}

export function portNameError(name: string): string | undefined {
  return isIstioDns1123Label(name) ? undefined : `invalid port name: ${name}`;
}

export type Protocol = 'GRPC' | 'GRPC-Web' | 'HTTP' | 'HTTP_PROXY' | 'HTTP2' | 'HTTPS' | 'TCP' | 'TLS' | 'UDP' | 'Mongo' | 'Redis' | 'MySQL' | 'Unsupported';

const protocols: Record<string, Protocol> = {
  tcp: 'TCP',
  udp: 'UDP',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  http: 'HTTP',
  http_proxy: 'HTTP_PROXY',
  http2: 'HTTP2',
  https: 'HTTPS',
  tls: 'TLS',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

/** Istio's protocol.Parse: case-insensitive, anything else is Unsupported. */
export function parseProtocol(p: string | undefined): Protocol {
  return protocols[str(p).toLowerCase()] ?? 'Unsupported';
}
export const isHTTPProtocol = (p: Protocol): boolean => p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-Web';
export const isTLSProtocol = (p: Protocol): boolean => p === 'HTTPS' || p === 'TLS';
export const isTCPProtocol = (p: Protocol): boolean => p === 'TCP' || p === 'HTTPS' || p === 'TLS' || p === 'Mongo' || p === 'Redis' || p === 'MySQL';

/** A service port protocol: empty means sniffed, otherwise one Istio knows. */
export function protocolError(p: string | undefined): string | undefined {
  if (!p) return undefined;
  return parseProtocol(p) === 'Unsupported' ? `unsupported protocol: ${p}` : undefined;
}

/** Istio's ValidateUnixAddress, for the part after `unix://`. */
export function unixAddressError(addr: string): string | undefined {
  if (addr === '') return 'unix address must not be empty';
  if (addr.startsWith('@')) return undefined;
  if (!addr.startsWith('/') || addr.endsWith('/')) return `${addr} is not an absolute path to a file`;
  return undefined;
}

export const unixPrefix = 'unix://';

// ---------------------------------------------------------------------------------------------
// Durations, percentages, labels, selectors
// ---------------------------------------------------------------------------------------------

/** Reports Istio's ValidateDuration problem (>= 1ms, whole milliseconds) at `path` when `value` is set. */
export function checkDuration(ctx: ValidationContext, path: FieldPath, value: unknown): void {
  if (typeof value !== 'string') return;
  const err = istioDurationError(value);
  if (err) ctx.error(path, err);
}

/** Istio's ValidatePercent for integer percentages. */
export function checkPercent(ctx: ValidationContext, path: FieldPath, value: unknown): void {
  if (typeof value !== 'number') return;
  if (value < 0 || value > 100) ctx.error(path, `percentage ${value} is not in range 0..100`);
}

const labelName = '[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?';
const qualifiedName = '(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const labelKeyPattern = new RegExp(`^(${labelName}(?:\\.${labelName})*/)?(${qualifiedName})$`);
const labelValuePattern = new RegExp(`^(?:${qualifiedName})?$`);

/** Istio's labels.Instance.Validate: `[key, message]` for each bad key or value. */
export function labelProblems(labels: Record<string, string> | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of entries(labels)) {
    const m = labelKeyPattern.exec(k);
    if (!m) out.push([k, `invalid tag key: ${q(k)}`]);
    else if (m[1] && m[1].length - 1 > 253) out.push([k, `invalid tag key: ${q(k)} (DNS prefix is too long)`]);
    else if (m[2]!.length > 63) out.push([k, `invalid tag key: ${q(k)} (name is too long)`]);
    if (typeof v === 'string' && !labelValuePattern.test(v)) out.push([k, `invalid tag value: ${q(v)}`]);
  }
  return out;
}

/** Reports label problems at the label. */
export function checkLabels(ctx: ValidationContext, path: FieldPath, labels: Record<string, string> | undefined): void {
  for (const [k, message] of labelProblems(labels)) ctx.error([...path, k], message);
}

/** Selector labels (`labels` or `matchLabels`): no empty keys, no wildcards; warns when empty. False when a label is refused. */
function checkSelectorLabels(ctx: ValidationContext, path: FieldPath, labels: Record<string, string> | undefined, emptyWarning: string): boolean {
  let ok = true;
  for (const [k, v] of entries(labels)) {
    if (k === '') ctx.error([...path, k], `empty key is not supported in selector: ${q(`${k}=${v}`)}`);
    if (k.includes('*') || str(v).includes('*')) ctx.error([...path, k], `wildcard is not supported in selector: ${q(`${k}=${v}`)}`);
    if (k === '' || k.includes('*') || str(v).includes('*')) ok = false;
  }
  if (entries(labels).length === 0) ctx.warning(path, emptyWarning);
  return ok;
}

/** `workloadSelector.labels` of Sidecar and ServiceEntry (Istio's ValidateAlphaWorkloadSelector). False when a label is refused. */
export function checkWorkloadSelector(ctx: ValidationContext, path: FieldPath, selector: WorkloadSelector | undefined, kind: string): boolean {
  if (!isObject(selector)) return true;
  return checkSelectorLabels(ctx, [...path, 'labels'], selector.labels, `${kind}: workload selector specified without labels, will be applied to all services in namespace`);
}

/** `workloadSelector.matchLabels` of a DestinationRule (Istio's validateWorkloadSelector). */
export function checkTypeWorkloadSelector(ctx: ValidationContext, path: FieldPath, selector: TypeWorkloadSelector | undefined): void {
  if (!isObject(selector)) return;
  checkSelectorLabels(ctx, [...path, 'matchLabels'], selector.matchLabels, 'workload selector specified without labels');
}

// ---------------------------------------------------------------------------------------------
// exportTo and gateway references
// ---------------------------------------------------------------------------------------------

/** Istio's validateExportTo: `.`, `*`, namespaces, `~` for ServiceEntry only, no duplicates, no mixing with `*` or `~`. */
export function checkExportTo(ctx: ValidationContext, exportTo: readonly string[] | undefined, opts: { serviceEntry?: boolean; drWithSelector?: boolean } = {}): void {
  const list = items(exportTo);
  if (list.length === 0) return;
  const namespace = ctx.config.metadata.namespace ?? '';
  const seen = new Set<string>();
  list.forEach((e, i) => {
    if (typeof e !== 'string') return;
    const key = e === '.' ? namespace : e;
    if (seen.has(key)) {
      ctx.error(['exportTo', i], key !== e ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entries in exportTo for entry ${e}`);
      return;
    }
    if (e === '~') {
      if (opts.serviceEntry) seen.add(key);
      else ctx.error(['exportTo', i], 'exportTo ~ (none) is not allowed for Istio configuration objects');
      return;
    }
    if (e === '.' || e === '*' || isIstioDns1123Label(e)) seen.add(key);
    else ctx.error(['exportTo', i], `only ., *${opts.serviceEntry ? ', ~' : ''} or a valid DNS 1123 label is allowed as exportTo entry (got ${q(e)})`);
  });
  if (opts.drWithSelector && seen.size > 0) {
    if (!seen.has(namespace)) ctx.error(['exportTo'], 'destination rule with workload selector cannot have exportTo beyond current namespace');
    else if (seen.size > 1) ctx.error(['exportTo'], 'destination rule with workload selector cannot have multiple entries in exportTo');
  }
  if (seen.has('*') && list.length > 1) ctx.error(['exportTo'], 'cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && list.length > 1) ctx.error(['exportTo'], 'cannot export service entry to no one (~) and someone');
}

/**
 * Gateway references of a VirtualService or a match (Istio's validateGatewayNames): `mesh`,
 * `<namespace>/<name>`, or a bare (legacy FQDN) name, which draws a warning when it has dots.
 */
export function checkGatewayNames(ctx: ValidationContext, path: FieldPath, names: readonly string[] | undefined, gatewaySemantics: boolean): void {
  items(names).forEach((name, i) => {
    if (typeof name !== 'string') return;
    const at = [...path, i];
    const slash = name.indexOf('/');
    if (slash < 0) {
      if (name.includes('.')) {
        const parts = name.split('.');
        ctx.warning(at, `using legacy gatewayName format ${q(name)}; prefer the <namespace>/<name> format: ${q(`${parts[1]}/${parts[0]}`)}`);
      }
      const err = fqdnError(name);
      if (err) ctx.error(at, err);
      return;
    }
    const ns = name.slice(0, slash);
    const gw = name.slice(slash + 1);
    if (ns === '' || gw === '') ctx.error(at, 'config namespace and gateway name cannot be empty');
    if (!isIstioDns1123Label(ns)) ctx.error(at, `invalid value for namespace: ${q(ns)}`);
    if (!isIstioDns1123Label(gw) && !gatewaySemantics) ctx.error(at, `invalid value for gateway name: ${q(gw)}`);
  });
}

/**
 * `namespace/host` of Gateway servers and Sidecar egress listeners (Istio's
 * ValidateNamespaceSlashWildcardHostname). Gateways also accept a bare host (old style) and IPs.
 */
export function namespaceSlashHostErrors(hostname: string, isGateway: boolean, gatewaySemantics: boolean): string[] {
  const slash = hostname.indexOf('/');
  if (slash < 0) {
    if (isGateway) return hostnamePartErrors(hostname, true);
    return ['host must be of form namespace/dnsName'];
  }
  const errs: string[] = [];
  const ns = hostname.slice(0, slash);
  const host = hostname.slice(slash + 1);
  if (ns === '' || host === '') errs.push('config namespace and dnsName in host entry cannot be empty');
  if (!isGateway) {
    // `~` imports nothing; `~ns` excludes a namespace from a wider import.
    const excluded = ns.startsWith('~') && ns.length > 1 ? ns.slice(1) : undefined;
    if (ns !== '*' && ns !== '.' && ns !== '~' && !(excluded !== undefined && isIstioDns1123Label(excluded)) && !isIstioDns1123Label(ns)) {
      errs.push(`invalid namespace value ${q(ns)} in sidecar`);
    }
  } else if (ns !== '*' && ns !== '.' && (ns !== '~' || !gatewaySemantics) && !isIstioDns1123Label(ns)) {
    errs.push(`invalid namespace value ${q(ns)} in gateway`);
  }
  errs.push(...hostnamePartErrors(host, isGateway));
  return errs;
}

function hostnamePartErrors(hostname: string, isGateway: boolean): string[] {
  const errs: string[] = [];
  if (hostname !== '*' && !hostname.includes('.')) errs.push('short names (non FQDN) are not allowed');
  const err = wildcardDomainError(hostname);
  // Gateways also take an IP as the host.
  if (err && (!isGateway || !isIPAddress(hostname))) errs.push(err);
  const partial = partialWildcardError(hostname);
  if (partial) errs.push(partial);
  return errs;
}

// ---------------------------------------------------------------------------------------------
// HTTP headers and string matches
// ---------------------------------------------------------------------------------------------

/** RFC 7230 token characters, what Istio accepts in a header name. */
const headerName = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const pseudoHeaders = new Set([':method', ':scheme', ':authority', ':path', ':status']);

/** `@request.auth.claims.<name>` / `@request.auth.claims[a][b]` (JWT claim routing). */
export function isJwtClaimRoute(name: string): boolean {
  return routingClaim(name) !== undefined;
}

/** A header name in a match (ValidateHTTPHeaderNameOrJwtClaimRoute). */
export function matchHeaderNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimRoute(name) || pseudoHeaders.has(name)) return undefined;
  if (!headerName.test(name)) return `header name ${name} is not a valid header name`;
  return undefined;
}

/** A header name in a CORS policy (`*` allowed). */
export function corsHeaderNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name === '*' || headerName.test(name)) return undefined;
  return `header name ${name} is not a valid header name`;
}

const isInternalHeader = (name: string): boolean => name.startsWith(':') || name.toLowerCase() === 'host';
export const isAuthorityHeader = (name: string): boolean => name.toLowerCase() === ':authority' || name.toLowerCase() === 'host';

/** A request header to set or add: `:authority`/`host` allowed (checked elsewhere), other pseudo headers not. */
function requestSetHeaderNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isInternalHeader(name) && !isAuthorityHeader(name)) return `invalid header ${q(name)}: header cannot have ":" prefix`;
  return undefined;
}

/** A request header to remove, or any response header operation. */
function headerOperationNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header ${q(name)}: cannot set Host header`;
  if (isInternalHeader(name)) return `invalid header ${q(name)}: header cannot have ":" prefix`;
  return undefined;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters
const headerValueControl = /[\u0000-\u0008\u000A-\u001F\u007F]/;

/** A header value as Envoy parses it: no control characters, `%` escaped as `%%` or opening a `%VAR%` / `%VAR(args)%`. */
export function headerValueError(value: string): string | undefined {
  if (headerValueControl.test(value)) return `header value configuration ${value} is invalid`;
  const err = envoyHeaderFormatError(value);
  return err ? `header value configuration: ${err}` : undefined;
}

/** Envoy's header formatter parser (router/header_parser.cc), as Istio ports it. */
function envoyHeaderFormatError(v: string): string | undefined {
  type State = 'literal' | 'name' | 'array' | 'expectString' | 'string' | 'delimOrEnd' | 'argsEnd' | 'varEnd';
  let state: State = 'literal';
  for (let pos = 0; pos < v.length; pos++) {
    const ch = v[pos]!;
    const hasNext = pos + 1 < v.length;
    switch (state) {
      case 'literal':
        if (ch !== '%') break;
        if (!hasNext) return 'invalid header configuration. Un-escaped %';
        if (v[pos + 1] === '%') {
          pos++;
          break;
        }
        state = 'name';
        break;
      case 'name':
        if (ch === '%') state = 'literal';
        else if (ch === '(') state = 'array';
        break;
      case 'array':
        if (ch === '[') state = 'expectString';
        else if (ch !== ' ') state = 'string';
        break;
      case 'delimOrEnd':
        if (ch === ',') state = 'expectString';
        else if (ch === ']') state = 'argsEnd';
        else if (ch !== ' ') return "invalid header configuration. Expecting ',', ']', or whitespace";
        break;
      case 'expectString':
        if (ch === '"') state = 'string';
        else if (ch !== ' ') return `invalid header configuration. Expecting '"'`;
        break;
      case 'string':
        if (ch === '\\') {
          if (!hasNext) return 'invalid header configuration. Un-terminated backslash in JSON string';
          pos++;
        } else if (ch === ')') state = 'varEnd';
        else if (ch === '"') state = 'delimOrEnd';
        break;
      case 'argsEnd':
        if (ch === ')') state = 'varEnd';
        else if (ch !== ' ') return `invalid header configuration. Expecting ')' or whitespace, but found '${ch}'`;
        break;
      case 'varEnd':
        if (ch === '%') state = 'literal';
        else if (ch !== ' ') return "invalid header configuration. Expecting '%' or whitespace after";
        break;
    }
  }
  if (state !== 'literal') return `invalid header configuration. Un-terminated variable expression '${v}'`;
  return undefined;
}

interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

/** `headers.request` / `headers.response` of a route or destination. */
export function checkHeaderOperations(ctx: ValidationContext, path: FieldPath, headers: { request?: HeaderOps; response?: HeaderOps } | undefined): void {
  if (!isObject(headers)) return;
  for (const side of ['request', 'response'] as const) {
    const ops = headers[side];
    if (!isObject(ops)) continue;
    const nameRule = side === 'request' ? requestSetHeaderNameError : headerOperationNameError;
    for (const op of ['set', 'add'] as const) {
      for (const [name, value] of entries(ops[op])) {
        const at = [...path, side, op, name];
        const err = nameRule(name);
        if (err) ctx.error(at, err);
        if (typeof value === 'string') {
          const verr = headerValueError(value);
          if (verr) ctx.error(at, verr);
        }
      }
    }
    items(ops.remove).forEach((name, i) => {
      if (typeof name !== 'string') return;
      const err = headerOperationNameError(name);
      if (err) ctx.error([...path, side, 'remove', i], err);
    });
  }
}

/** Istio's validateStringRegexp: at most 1024 characters (its stand-in for Envoy's program size) of RE2. */
export function re2Error(pattern: string): string | undefined {
  if (pattern.length > 1024) return 'regex is too large, max length allowed is 1024';
  return regexError(pattern);
}

const re2Syntax = 'Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)';

/** A regex field: an error for what RE2 (or Istio's length cap) refuses, else a warning for a program proxies refuse. */
export function checkRegex(ctx: ValidationContext, path: FieldPath, pattern: string, where: string): void {
  const err = re2Error(pattern);
  if (err) ctx.error(path, `${where}: ${err}; ${re2Syntax}`);
  else {
    const warning = regexSizeWarning(pattern);
    if (warning) ctx.warning(path, `${where}: ${warning}`);
  }
}

/**
 * A StringMatch (Istio's validateStringMatch): an empty prefix is refused unless `allowEmptyPrefix`
 * (uri matches), a regex must be RE2. Problems are located at the `exact`/`prefix`/`regex` key.
 */
export function checkStringMatch(ctx: ValidationContext, path: FieldPath, sm: StringMatch | undefined, where: string, opts: { allowEmptyPrefix?: boolean } = {}): void {
  if (!isObject(sm)) return;
  if (typeof sm.prefix === 'string' && sm.prefix === '' && !opts.allowEmptyPrefix) ctx.error([...path, 'prefix'], `${q(where)}: prefix string match should not be empty`);
  if (typeof sm.regex === 'string') {
    if (sm.regex === '') ctx.error([...path, 'regex'], `${q(where)}: regex string match should not be empty`);
    else checkRegex(ctx, [...path, 'regex'], sm.regex, q(where));
  }
}

// ---------------------------------------------------------------------------------------------
// Destinations
// ---------------------------------------------------------------------------------------------

export function subsetNameError(name: string): string | undefined {
  if (name.length === 0) return 'subset name cannot be empty';
  if (!isIstioDns1123Label(name)) return `subset name is invalid: ${name}`;
  return undefined;
}

/** Istio's validateDestination: host (not `*`), subset name, port selector in range. */
export function checkDestination(ctx: ValidationContext, path: FieldPath, d: Destination | undefined, opts: { skipHost?: boolean } = {}): void {
  if (!isObject(d)) return;
  if (typeof d.host === 'string' && !opts.skipHost) {
    const err = d.host === '*' ? `invalid destination host ${d.host}` : wildcardDomainError(d.host);
    if (err) ctx.error([...path, 'host'], err);
  }
  if (typeof d.subset === 'string' && d.subset !== '') {
    const err = subsetNameError(d.subset);
    if (err) ctx.error([...path, 'subset'], err);
  }
  if (isObject(d.port)) {
    const err = portError(num(d.port.number));
    if (err) ctx.error([...path, 'port', ...(present(d.port.number) ? ['number'] : [])], err);
  }
}

// ---------------------------------------------------------------------------------------------
// Connection pools (DestinationRule traffic policies, Sidecar inbound pools)
// ---------------------------------------------------------------------------------------------

/** Istio's validateConnectionPool, with the CRD's duration rules. */
export function checkConnectionPool(ctx: ValidationContext, path: FieldPath, cp: ConnectionPoolSettings | undefined): void {
  if (!isObject(cp)) return;
  if (!present(cp.http) && !present(cp.tcp)) {
    ctx.error(path, 'connection pool must have at least one field');
    return;
  }
  const http = cp.http;
  if (isObject(http)) {
    const p = [...path, 'http'];
    const nonNegative: [keyof typeof http, string][] = [
      ['http1MaxPendingRequests', 'http1 max pending requests must be non-negative'],
      ['http2MaxRequests', 'http2 max requests must be non-negative'],
      ['maxRequestsPerConnection', 'max requests per connection must be non-negative'],
      ['maxRetries', 'max retries must be non-negative'],
      ['maxConcurrentStreams', 'max concurrent streams must be non-negative'],
    ];
    for (const [field, message] of nonNegative) if (num(http[field]) < 0) ctx.error([...p, field], message);
    checkDuration(ctx, [...p, 'idleTimeout'], http.idleTimeout);
    if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol === true) ctx.error([...p, 'useClientProtocol'], 'use client protocol must not be true when H2UpgradePolicy is UPGRADE');
    const ka = http.http2KeepAlive;
    if (isObject(ka)) {
      if (!present(ka.interval)) ctx.error([...p, 'http2KeepAlive'], 'http2KeepAlive requires an interval');
      if (!present(ka.timeout)) ctx.error([...p, 'http2KeepAlive'], 'http2KeepAlive requires a timeout');
      checkDuration(ctx, [...p, 'http2KeepAlive', 'interval'], ka.interval);
      checkDuration(ctx, [...p, 'http2KeepAlive', 'timeout'], ka.timeout);
    }
  }
  const tcp = cp.tcp;
  if (isObject(tcp)) {
    const p = [...path, 'tcp'];
    if (num(tcp.maxConnections) < 0) ctx.error([...p, 'maxConnections'], 'max connections must be non-negative');
    checkDuration(ctx, [...p, 'connectTimeout'], tcp.connectTimeout);
    checkDuration(ctx, [...p, 'maxConnectionDuration'], tcp.maxConnectionDuration);
    // A TCP idle timeout that rounds to 0ms (`0s`) disables the timeout.
    const idle = typeof tcp.idleTimeout === 'string' ? parseDurationNanos(tcp.idleTimeout) : undefined;
    if (idle !== undefined && (idle >= 1_000_000n || idle <= -1_000_000n)) checkDuration(ctx, [...p, 'idleTimeout'], tcp.idleTimeout);
    const ka = tcp.tcpKeepalive;
    if (isObject(ka)) {
      checkDuration(ctx, [...p, 'tcpKeepalive', 'time'], ka.time);
      checkDuration(ctx, [...p, 'tcpKeepalive', 'interval'], ka.interval);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server TLS settings (Gateway servers, Sidecar ingress listeners)
// ---------------------------------------------------------------------------------------------

const validCipherSuites = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA',
  'AES256-SHA',
  'DES-CBC3-SHA',
]);

/** Names BoringSSL accepts; operators (`-X`, `+X`, `!X`) are let through, as Istio does. */
function isValidCipherSuite(cs: string): boolean {
  if (cs === '' || cs === 'ALL') return true;
  if (!/^[\p{L}\p{N}]/u.test(cs)) return true;
  return validCipherSuites.has(cs);
}

/** Istio's validateTLSOptions for server-side TLS. */
export function checkServerTLS(ctx: ValidationContext, path: FieldPath, tls: ServerTLSSettings | undefined): void {
  if (!isObject(tls)) return;
  const at = (field: string): FieldPath => [...path, field];
  const mode = tls.mode ?? 'PASSTHROUGH';
  if ((tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') && !filled(tls.cipherSuites)) {
    ctx.warning(at('minProtocolVersion'), 'TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.');
  }
  const invalid = new Set<string>();
  const valid = new Set<string>();
  const dup = new Set<string>();
  for (const cs of items(tls.cipherSuites)) {
    if (typeof cs !== 'string') continue;
    if (!isValidCipherSuite(cs)) invalid.add(cs);
    else if (valid.has(cs)) dup.add(cs);
    else valid.add(cs);
  }
  if (invalid.size > 0) ctx.warning(at('cipherSuites'), `ignoring invalid cipher suites: [${[...invalid].sort().join(' ')}]`);
  if (dup.size > 0) ctx.warning(at('cipherSuites'), `ignoring duplicate cipher suites: [${[...dup].sort().join(' ')}]`);

  const serverCertificate = str(tls.serverCertificate);
  const privateKey = str(tls.privateKey);
  const caCertificates = str(tls.caCertificates);
  const credentialName = str(tls.credentialName);
  const credentialNames = items(tls.credentialNames);
  const tlsCertificates = items(tls.tlsCertificates);

  if (mode === 'ISTIO_MUTUAL') {
    if (serverCertificate) ctx.error(at('serverCertificate'), 'ISTIO_MUTUAL TLS cannot have associated server certificate');
    if (privateKey) ctx.error(at('privateKey'), 'ISTIO_MUTUAL TLS cannot have associated private key');
    if (caCertificates) ctx.error(at('caCertificates'), 'ISTIO_MUTUAL TLS cannot have associated CA bundle');
    if (tlsCertificates.length > 0) ctx.error(at('tlsCertificates'), 'ISTIO_MUTUAL TLS cannot have associated tlsCertificates');
    if (credentialName) ctx.error(at('credentialName'), 'ISTIO_MUTUAL TLS cannot have associated credentialName');
    if (credentialNames.length > 0) ctx.error(at('credentialNames'), 'ISTIO_MUTUAL TLS cannot have associated credentialNames');
    return;
  }
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (str(tls.caCrl) || serverCertificate || privateKey || caCertificates || tlsCertificates.length > 0 || credentialName || credentialNames.length > 0) {
      ctx.warning(at('mode'), `${mode} mode does not use certificates, they will be ignored`);
    }
  }
  const sources = [serverCertificate && privateKey ? 'serverCertificate' : '', credentialName ? 'credentialName' : '', credentialNames.length > 0 ? 'credentialNames' : '', tlsCertificates.length > 0 ? 'tlsCertificates' : ''].filter(Boolean);
  if (sources.length > 1) {
    ctx.error(at(sources[1]!), `only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified (found ${sources.join(' and ')})`);
  }
  const terminating = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (terminating && (credentialName || credentialNames.length > 0)) return; // credentials come from the secret
  if (terminating) {
    const prefix = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (mode !== 'SIMPLE' && !caCertificates) ctx.error(present(tls.caCertificates) ? at('caCertificates') : at('mode'), `${prefix} requires a client CA bundle`);
    if (tlsCertificates.length > 2) ctx.warning(at('tlsCertificates'), `${prefix} can support up to 2 server certificates`);
    if (tlsCertificates.length > 0) {
      tlsCertificates.forEach((c, i) => {
        if (!isObject(c)) return;
        if (!str(c.serverCertificate)) ctx.error([...path, 'tlsCertificates', i], `${prefix} requires a server certificate`);
        if (!str(c.privateKey)) ctx.error([...path, 'tlsCertificates', i], `${prefix} requires a private key`);
      });
    } else {
      if (!serverCertificate) ctx.error(present(tls.serverCertificate) ? at('serverCertificate') : at('mode'), `${prefix} requires a server certificate`);
      if (!privateKey) ctx.error(present(tls.privateKey) ? at('privateKey') : at('mode'), `${prefix} requires a private key`);
    }
  }
  if (str(tls.caCrl)) {
    if (credentialName) ctx.error(at('caCrl'), 'CRL is not supported with credentialName. CRL has to be specified in the credential');
    if (mode === 'SIMPLE') ctx.error(at('caCrl'), 'CRL is not supported with SIMPLE TLS');
  }
}

/** A port number in a spec: present numbers are checked at their field, absent ones count as 0 (Go's zero value). */
export function checkPort(ctx: ValidationContext, path: FieldPath, value: unknown, fallback: FieldPath = path.slice(0, -1)): void {
  const err = portError(num(value));
  if (err) ctx.error(present(value) ? path : fallback, err);
}
