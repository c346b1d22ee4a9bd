// Envoy's RBAC engine (envoy.config.rbac.v3.RBAC), compiled once per filter chain into plain
// predicates: a policy matches when any of its permissions and any of its principals match; an
// ALLOW engine allows what some policy matches, a DENY engine denies it, a LOG engine allows
// everything and only reports the match. Policies are tried in name order (Envoy keeps them in a
// sorted map), so the reported policy is the first matching name.
//
// What each matcher reads, as in Envoy's rbac matchers:
// - header / url_path: the request (`:authority`, `:method`, `:path` from the request line; multiple
//   values joined with `,`); on a TCP connection there are no headers, so they see an empty map;
// - destination_ip / destination_port / destination_port_range: where the connection was going
//   (SO_ORIGINAL_DST, or the local address);
// - direct_remote_ip / source_ip: the peer's address; remote_ip: the client address the connection
//   manager derived (X-Forwarded-For per use_remote_address and xff_num_trusted_hops; the peer on TCP);
// - authenticated: a TLS connection; its principal_name is tried against the peer certificate's
//   URI SANs, then DNS SANs, then its subject; without principal_name any TLS connection matches;
// - requested_server_name: the SNI (empty without one);
// - metadata: dynamic metadata (`istio_authn`, written by the istio_authn filter from a JWT that
//   jwt_authn verified: request.auth.principal, claims...; without a verified JWT there is no value
//   and such matchers do not match);
// - uri_template: Envoy's path templates (`*` one segment, `**` any rest, `{name}`, `{name=…}`).
import { isIPv4, isIPv6 } from 'node:net';
import type { Re2 } from '@weft/model';
import { decodeAny, type RbacPolicies__Output, TypeUrl } from '@weft/xds';
import type { DownstreamConnection } from '../core/filters.ts';
import { peerCertificateNames } from '../core/peer.ts';
import { compileHeaderMatcher, compileRegex, compileStringMatcher, RouteConfigError, type StringTest } from '../http/matchers.ts';
import { compileMetadataMatcher } from '../http/metadata-matcher.ts';
import { RequestView } from '../http/view.ts';

type Policy = RbacPolicies__Output['policies'][string];
type Permission = Policy['permissions'][number];
type Principal = Policy['principals'][number];
type CidrRange = NonNullable<Permission['destination_ip']>;
type MetadataMatcher = NonNullable<Permission['metadata']>;

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

/** What the matchers of one request (or TCP connection) read. */
export interface RbacInput {
  readonly connection: DownstreamConnection;
  /** The HTTP request; undefined on a TCP connection. */
  readonly request: RequestView | undefined;
  /** The client address for remote_ip (the connection manager's, X-Forwarded-For aware); computed only when asked. */
  remoteIp(): string;
  /** Dynamic metadata by filter name (a verified JWT's attributes under `istio_authn`). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface RbacDecision {
  readonly allowed: boolean;
  /** The first matching policy, by name; undefined when none matched. */
  readonly policy: string | undefined;
}

export interface RbacEngine {
  readonly action: RbacAction;
  readonly policyNames: readonly string[];
  evaluate(input: RbacInput): RbacDecision;
}

type Pred = (input: RbacInput) => boolean;

/** A request with no headers at all: what header matchers see on a TCP connection. */
class NoHeaders extends RequestView {
  constructor() {
    super('', '', '', 'http', {});
  }
  override header(): string | undefined {
    return undefined;
  }
}
const noHeaders = new NoHeaders();

/** An address as 16-bit groups (2 for IPv4, 8 for IPv6); undefined when it is not one. */
export function ipGroups(ip: string): number[] | undefined {
  if (isIPv4(ip)) {
    const p = ip.split('.').map(Number);
    return [(p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!];
  }
  if (!isIPv6(ip)) return undefined;
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = ipGroups(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tail.push(...v4);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const halves = text.split('::');
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((g) => Number.parseInt(g, 16)));
  const head = parse(halves[0]!);
  const rest = halves.length > 1 ? parse(halves[1]!) : [];
  const fill = 8 - tail.length - head.length - rest.length;
  return [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...rest, ...tail];
}

/** Envoy's CidrRange: the peer is in it when both are of one family and the first prefix_len bits agree. */
function cidr(c: CidrRange, where: string): (ip: string) => boolean {
  const prefix = c.address_prefix;
  const net = ipGroups(prefix);
  if (!net) throw new RouteConfigError(`${where}: invalid address_prefix ${JSON.stringify(prefix)}`);
  const len = c.prefix_len?.value ?? 0;
  if (len > net.length * 16) throw new RouteConfigError(`${where}: invalid prefix_len ${len} for ${prefix}`);
  const full = Math.floor(len / 16);
  const bits = len % 16;
  const mask = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
  // One-entry cache: most requests on a chain come from few peers.
  let lastIp = '';
  let last = false;
  return (ip) => {
    if (ip === lastIp) return last;
    const g = ipGroups(ip);
    let ok = g !== undefined && g.length === net.length;
    for (let i = 0; ok && i < full; i++) ok = g![i] === net[i];
    if (ok && bits > 0) ok = (g![full]! & mask) === (net[full]! & mask);
    lastIp = ip;
    last = ok;
    return ok;
  };
}

function pathTest(m: NonNullable<Permission['url_path']>): Pred {
  if (m.rule !== 'path' || !m.path) throw new RouteConfigError('url_path without a path matcher');
  const test = compileStringMatcher(m.path);
  return (input) => input.request !== undefined && test(input.request.pathOnly);
}

function headerTest(m: NonNullable<Permission['header']>): Pred {
  const h = compileHeaderMatcher(m);
  return (input) => h.test(input.request ?? noHeaders);
}

/** Envoy's URI template as the RE2 regex Envoy makes of it, matched in full against the path without query. */
export function uriTemplateRegex(template: string): Re2 {
  if (!template.startsWith('/')) throw new RouteConfigError(`uri_template ${JSON.stringify(template)} must start with /`);
  const operator = (op: string) => {
    if (op === '**') return '.*';
    if (op === '*') return '[^/]+';
    throw new RouteConfigError(`uri_template ${JSON.stringify(template)}: unsupported operator ${JSON.stringify(op)}`);
  };
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c === '{') {
      const end = template.indexOf('}', i);
      if (end < 0) throw new RouteConfigError(`uri_template ${JSON.stringify(template)}: unclosed {`);
      const inner = template.slice(i + 1, end);
      const eq = inner.indexOf('=');
      const pattern = eq < 0 ? '*' : inner.slice(eq + 1);
      out += pattern
        .split('/')
        .map((seg) => (seg === '*' || seg === '**' ? operator(seg) : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/');
      i = end;
    } else if (c === '*') {
      const double = template[i + 1] === '*';
      out += operator(double ? '**' : '*');
      if (double) i++;
    } else out += c.replace(/[.+?^$()|[\]\\]/g, '\\$&');
  }
  return compileRegex(out);
}

function uriTemplateTest(ext: NonNullable<Permission['uri_template']>): Pred {
  const any = ext.typed_config;
  if (!any || any.type_url !== TypeUrl.UriTemplateMatchConfig) throw new RouteConfigError(`unsupported uri_template extension ${JSON.stringify(any?.type_url ?? '')}`);
  const re = uriTemplateRegex(decodeAny(any, TypeUrl.UriTemplateMatchConfig).path_template);
  return (input) => input.request !== undefined && re.fullMatch(input.request.pathOnly);
}

function metadataTest(m: MetadataMatcher): Pred {
  const test = compileMetadataMatcher(m);
  return (input) => test(input.metadata);
}

interface PeerNames {
  uris: readonly string[];
  dns: readonly string[];
  subject: string;
}

const peerNames = new WeakMap<DownstreamConnection, PeerNames>();

/** Every name of the peer certificate (parsed once per connection, only when the first URI SAN did not decide). */
function namesOf(c: DownstreamConnection): PeerNames {
  let n = peerNames.get(c);
  if (!n) {
    n = { uris: c.peerPrincipal ? [c.peerPrincipal] : [], dns: [], subject: '' };
    // An unreadable certificate keeps what the TLS layer told us; a SPIFFE certificate has no subject.
    const p = peerCertificateNames(c);
    if (p) n = { uris: p.uris.length > 0 ? p.uris : n.uris, dns: p.dns, subject: (p.cert.subject ?? '').split('\n').filter(Boolean).reverse().join(',') };
    peerNames.set(c, n);
  }
  return n;
}

function authenticatedTest(a: NonNullable<Principal['authenticated']>): Pred {
  const m = a.principal_name;
  if (!m) return (input) => input.connection.tls;
  const test: StringTest = compileStringMatcher(m);
  return (input) => {
    const c = input.connection;
    if (!c.tls) return false;
    if (c.peerPrincipal !== undefined && test(c.peerPrincipal)) return true;
    const n = namesOf(c);
    for (const u of n.uris) if (u !== c.peerPrincipal && test(u)) return true;
    for (const d of n.dns) if (test(d)) return true;
    return test(n.subject);
  };
}

function and(preds: Pred[]): Pred {
  if (preds.length === 1) return preds[0]!;
  return (input) => {
    for (const p of preds) if (!p(input)) return false;
    return true;
  };
}

function or(preds: Pred[]): Pred {
  if (preds.length === 1) return preds[0]!;
  return (input) => {
    for (const p of preds) if (p(input)) return true;
    return false;
  };
}

const always: Pred = () => true;
const never: Pred = () => false;

export function compilePermission(p: Permission, where = 'permission'): Pred {
  switch (p.rule) {
    case 'and_rules':
      return and((p.and_rules?.rules ?? []).map((r) => compilePermission(r, where)));
    case 'or_rules': {
      const rules = p.or_rules?.rules ?? [];
      return rules.length === 0 ? never : or(rules.map((r) => compilePermission(r, where)));
    }
    case 'not_rule': {
      const inner = compilePermission(p.not_rule!, where);
      return (input) => !inner(input);
    }
    case 'any':
      return p.any ? always : never;
    case 'header':
      return headerTest(p.header!);
    case 'url_path':
      return pathTest(p.url_path!);
    case 'destination_ip': {
      const test = cidr(p.destination_ip!, where);
      return (input) => test(input.connection.destinationAddress);
    }
    case 'destination_port': {
      const port = p.destination_port!;
      return (input) => input.connection.destinationPort === port;
    }
    case 'destination_port_range': {
      const start = p.destination_port_range?.start ?? 0;
      const end = p.destination_port_range?.end ?? 0;
      if (start < 0 || end > 65536 || start >= end) throw new RouteConfigError(`${where}: invalid destination_port_range [${start}, ${end})`);
      return (input) => input.connection.destinationPort >= start && input.connection.destinationPort < end;
    }
    case 'requested_server_name': {
      const test = compileStringMatcher(p.requested_server_name!);
      return (input) => test(input.connection.sni ?? '');
    }
    case 'metadata':
      return metadataTest(p.metadata!);
    case 'uri_template':
      return uriTemplateTest(p.uri_template!);
    default:
      throw new RouteConfigError(`${where}: unsupported RBAC permission ${p.rule ?? '(none)'}`);
  }
}

export function compilePrincipal(p: Principal, where = 'principal'): Pred {
  switch (p.identifier) {
    case 'and_ids':
      return and((p.and_ids?.ids ?? []).map((r) => compilePrincipal(r, where)));
    case 'or_ids': {
      const ids = p.or_ids?.ids ?? [];
      return ids.length === 0 ? never : or(ids.map((r) => compilePrincipal(r, where)));
    }
    case 'not_id': {
      const inner = compilePrincipal(p.not_id!, where);
      return (input) => !inner(input);
    }
    case 'any':
      return p.any ? always : never;
    case 'authenticated':
      return authenticatedTest(p.authenticated!);
    case 'source_ip':
    case 'direct_remote_ip': {
      const test = cidr((p.identifier === 'source_ip' ? p.source_ip : p.direct_remote_ip)!, where);
      return (input) => test(input.connection.remoteAddress);
    }
    case 'remote_ip': {
      const test = cidr(p.remote_ip!, where);
      return (input) => test(input.remoteIp());
    }
    case 'header':
      return headerTest(p.header!);
    case 'url_path':
      return pathTest(p.url_path!);
    case 'metadata':
      return metadataTest(p.metadata!);
    case 'filter_state':
      // Weft keeps no filter state (Istio uses it only for ambient waypoints).
      return never;
    default:
      throw new RouteConfigError(`${where}: unsupported RBAC principal ${p.identifier ?? '(none)'}`);
  }
}

/** Compiles an RBAC rule set; throws (the NACK reason) for what Weft cannot evaluate. */
export function compileRbac(rules: RbacPolicies__Output): RbacEngine {
  const action = rules.action as RbacAction;
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'LOG') throw new RouteConfigError(`unsupported RBAC action ${String(rules.action)}`);
  const names = Object.keys(rules.policies ?? {}).sort();
  const compiled: [string, Pred][] = names.map((name) => {
    const p = rules.policies[name]!;
    const where = `policy ${JSON.stringify(name)}`;
    if (p.condition || p.checked_condition) throw new RouteConfigError(`${where}: CEL conditions are not supported`);
    const perms = or(p.permissions.map((x) => compilePermission(x, where)).concat(p.permissions.length === 0 ? [never] : []));
    const ids = or(p.principals.map((x) => compilePrincipal(x, where)).concat(p.principals.length === 0 ? [never] : []));
    return [name, (input: RbacInput) => perms(input) && ids(input)];
  });
  return {
    action,
    policyNames: names,
    evaluate(input) {
      let policy: string | undefined;
      for (const [name, matches] of compiled) {
        if (matches(input)) {
          policy = name;
          break;
        }
      }
      return { allowed: action === 'ALLOW' ? policy !== undefined : action === 'DENY' ? policy === undefined : true, policy };
    },
  };
}
