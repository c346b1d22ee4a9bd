// Header mutations (Envoy's HeaderParser): `*_headers_to_remove` first, then `*_headers_to_add`
// with each option's append action; values may use a few `%COMMAND%` substitutions.
import type { RouteConfiguration__Output } from '@weft/xds';
import { RouteConfigError } from './matchers.ts';

export type HeaderValueOptionConfig = RouteConfiguration__Output['request_headers_to_add'][number];
export type HeaderRecord = Record<string, string | string[]>;

/** What `%COMMAND%` substitutions read. */
export interface FormatContext {
  sourceAddress: string;
  sourcePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  protocol: string;
  /** The request headers (for `%REQ(name)%`). */
  requestHeader(name: string): string | undefined;
  upstreamHost: string | undefined;
  upstreamCluster: string | undefined;
}

type Formatter = (ctx: FormatContext) => string;
type Action = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

interface AddOp {
  key: string;
  value: string | Formatter;
  action: Action;
  keepEmpty: boolean;
}

/** One level's mutations (route configuration, virtual host, route or weighted cluster). */
export interface HeaderMutation {
  readonly remove: readonly string[];
  readonly add: readonly AddOp[];
}

function withPort(addr: string | undefined, port: number | undefined): string {
  if (!addr) return '';
  if (port === undefined) return addr;
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

const commands: Record<string, Formatter> = {
  DOWNSTREAM_REMOTE_ADDRESS: (c) => withPort(c.sourceAddress, c.sourcePort),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (c) => c.sourceAddress,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: (c) => withPort(c.sourceAddress, c.sourcePort),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: (c) => c.sourceAddress,
  DOWNSTREAM_LOCAL_ADDRESS: (c) => withPort(c.localAddress, c.localPort),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (c) => c.localAddress ?? '',
  DOWNSTREAM_LOCAL_PORT: (c) => (c.localPort === undefined ? '' : String(c.localPort)),
  PROTOCOL: (c) => c.protocol,
  UPSTREAM_REMOTE_ADDRESS: (c) => c.upstreamHost ?? '',
  UPSTREAM_CLUSTER: (c) => c.upstreamCluster ?? '',
  HOSTNAME: () => process.env.HOSTNAME ?? '',
  START_TIME: () => new Date().toISOString(),
};

/** Parses an Envoy header value with `%COMMAND%` / `%REQ(name)%` / `%%`; a literal stays a string. */
export function compileHeaderValue(value: string): string | Formatter {
  if (!value.includes('%')) return value;
  const parts: (string | Formatter)[] = [];
  let i = 0;
  let literal = '';
  while (i < value.length) {
    const c = value[i]!;
    if (c !== '%') {
      literal += c;
      i++;
      continue;
    }
    if (value[i + 1] === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    const end = value.indexOf('%', i + 1);
    if (end < 0) throw new RouteConfigError(`header value ${JSON.stringify(value)}: no closing % for the command at ${i}`);
    const cmd = value.slice(i + 1, end);
    const req = /^REQ\(([^)]+)\)(?::(\d+))?$/.exec(cmd);
    let f: Formatter | undefined;
    if (req) {
      const name = req[1]!.toLowerCase();
      const max = req[2] ? Number(req[2]) : undefined;
      f = (ctx) => {
        const v = ctx.requestHeader(name) ?? '';
        return max === undefined ? v : v.slice(0, max);
      };
    } else f = commands[cmd];
    if (!f) throw new RouteConfigError(`header value ${JSON.stringify(value)}: unsupported command %${cmd}%`);
    if (literal) parts.push(literal);
    literal = '';
    parts.push(f);
    i = end + 1;
  }
  if (literal) parts.push(literal);
  if (parts.every((p) => typeof p === 'string')) return parts.join('');
  return (ctx) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(ctx);
    return out;
  };
}

/** Compiles one level's add/remove lists; undefined when there is nothing to do. */
export function compileHeaderMutation(add: readonly HeaderValueOptionConfig[] | undefined, remove: readonly string[] | undefined): HeaderMutation | undefined {
  const ops: AddOp[] = [];
  for (const o of add ?? []) {
    const key = o.header?.key.toLowerCase();
    if (!key) continue;
    if (key.startsWith(':') || key === 'host') throw new RouteConfigError(`header ${key} cannot be added by a route (use host_rewrite)`);
    // The deprecated `append` flag, when set, decides over append_action.
    const action: Action = o.append ? (o.append.value ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD') : ((o.append_action || 'APPEND_IF_EXISTS_OR_ADD') as Action);
    const raw = o.header?.value || (o.header?.raw_value?.length ? o.header.raw_value.toString('utf8') : '');
    ops.push({ key, value: compileHeaderValue(raw), action, keepEmpty: o.keep_empty_value });
  }
  const rm = (remove ?? []).map((k) => k.toLowerCase()).filter((k) => k && !k.startsWith(':') && k !== 'host');
  if (ops.length === 0 && rm.length === 0) return undefined;
  return { remove: rm, add: ops };
}

/** Applies mutations in order (later ones win, as Envoy evaluates them). */
export function applyHeaderMutations(headers: HeaderRecord, mutations: readonly HeaderMutation[], ctx: FormatContext | undefined): void {
  for (const m of mutations) {
    for (const k of m.remove) delete headers[k];
    if (m.add.length === 0) continue;
    // Values are evaluated against the headers before this level's adds (as Envoy does), then overwrites, then appends.
    let overwrite: [string, string][] | undefined;
    let append: [string, string][] | undefined;
    for (const op of m.add) {
      const value = typeof op.value === 'string' ? op.value : ctx ? op.value(ctx) : '';
      if (value === '' && !op.keepEmpty) continue;
      const present = headers[op.key] !== undefined;
      let toAppend = false;
      switch (op.action) {
        case 'APPEND_IF_EXISTS_OR_ADD':
          toAppend = true;
          break;
        case 'ADD_IF_ABSENT':
          if (present) continue;
          toAppend = true;
          break;
        case 'OVERWRITE_IF_EXISTS':
          if (!present) continue;
          break;
        default:
          break;
      }
      if (toAppend) {
        if (!append) append = [];
        append.push([op.key, value]);
      } else {
        if (!overwrite) overwrite = [];
        overwrite.push([op.key, value]);
      }
    }
    if (overwrite) for (const [k, v] of overwrite) headers[k] = v;
    if (append) {
      for (const [k, v] of append) {
        const cur = headers[k];
        if (cur === undefined) headers[k] = v;
        else if (typeof cur === 'string') headers[k] = [cur, v];
        else cur.push(v);
      }
    }
  }
}

/** Connection-specific headers a proxy never forwards (RFC 9110 §7.6.1; HTTP/2 forbids them). */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'http2-settings']);

/** True for names a proxy must not forward, including those the `connection` header lists. */
export function isHopByHop(name: string, connectionTokens: ReadonlySet<string> | undefined): boolean {
  return hopByHop.has(name) || connectionTokens?.has(name) === true;
}

export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (!value) return undefined;
  const raw = typeof value === 'string' ? value : value.join(',');
  const out = new Set<string>();
  for (const t of raw.split(',')) {
    const k = t.trim().toLowerCase();
    if (k && k !== 'close' && k !== 'keep-alive') out.add(k);
  }
  return out.size > 0 ? out : undefined;
}
