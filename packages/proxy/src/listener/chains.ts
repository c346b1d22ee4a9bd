// A listener compiled once per accepted version: its filter chains with their filters decoded,
// and Envoy's filter chain matching (destination port, destination IP, server name, transport
// protocol, application protocol, then source) to pick the chain for one connection. Compiling
// is also the check behind NACKs: a listener with a filter Weft does not implement is refused.
import { protoDurationMs } from '@weft/mesh';
import { isIP } from 'node:net';
import {
  type Any__Output,
  decodeAny,
  type DownstreamTlsContext__Output,
  type HttpConnectionManager__Output,
  type Listener__Output,
  type RouteConfiguration__Output,
  TypeUrl,
} from '@weft/xds';
import type { FilterRegistry, FilterSite, HttpFilter, NetworkFilter } from '../core/filters.ts';
import { type RouteAction, singleCluster, weightedClusters } from '../core/route-action.ts';
import type { RequestRecord } from '../core/types.ts';

type FilterChain = Listener__Output['filter_chains'][number];
type FilterChainMatch = NonNullable<FilterChain['filter_chain_match']>;
type CidrRange = FilterChainMatch['prefix_ranges'][number];

export interface TcpRoute {
  /** The cluster, or clusters by weight: the same compiled action as an HTTP route's. */
  action: RouteAction;
  statPrefix: string;
  idleTimeoutMs: number | undefined;
  maxConnectAttempts: number;
}

export interface HttpChainConfig {
  hcm: HttpConnectionManager__Output;
  statPrefix: string;
  /** RDS name; undefined when the route configuration is inline. */
  routeName: string | undefined;
  inlineRoutes: RouteConfiguration__Output | undefined;
  /** HCM `http2_protocol_options` set: the chain expects HTTP/2 (gRPC ports). */
  http2: boolean;
  /** use_remote_address: the proxy is the edge (gateways) and sets x-forwarded-for itself. */
  useRemoteAddress: boolean;
  /** The listener's per_connection_buffer_limit_bytes, when set (bounds buffered request bodies). */
  bufferLimitBytes: number | undefined;
  /** Filters from the registry (named http_filters, then connection-manager ones), in order. */
  filters: readonly HttpFilter[];
}

export interface CompiledChain {
  /** The chain's name, else `<listener>#<index>`. */
  name: string;
  match: FilterChainMatch | null;
  /** Set when the chain terminates TLS (transport_socket `envoy.transport_sockets.tls`). */
  tls: DownstreamTlsContext__Output | undefined;
  http: HttpChainConfig | undefined;
  tcp: TcpRoute | undefined;
  /** Network filters before the terminal one (RBAC), then the registry's TCP-chain ones (tcp_proxy chains only). */
  networkFilters: readonly NetworkFilter[];
}

export interface CompiledListener {
  listener: Listener__Output;
  name: string;
  address: string;
  port: number;
  bindToPort: boolean;
  useOriginalDst: boolean;
  chains: readonly CompiledChain[];
  defaultChain: CompiledChain | undefined;
  /** Some chain matches on SNI, transport or application protocol: the first bytes must be inspected. */
  needsInspection: boolean;
}

export interface CompileOptions {
  /** Checks an inline route configuration (the router compiles it); throws to refuse. */
  checkRoutes?: (rc: RouteConfiguration__Output) => void;
  /** Filters beyond routing (security, telemetry); without it only fault, CORS and router are known. */
  filters?: FilterRegistry;
  /** How the listener's traffic is seen (for filters: metrics' reporter, inbound-only rules). */
  direction?: RequestRecord['direction'];
}

const knownListenerFilters = new Set<string>([TypeUrl.OriginalDst, TypeUrl.TlsInspector, TypeUrl.HttpInspector]);
const knownHttpFilters = new Set<string>([TypeUrl.Router, TypeUrl.HttpFault, TypeUrl.Cors]);

/** The extension a filter's config names: its type URL, or for a TypedStruct (a config whose proto the sender did not compile in) the type URL inside, as Envoy picks the factory. */
function filterType(config: Any__Output | null | undefined): string {
  const type = config?.type_url ?? '';
  if (type !== TypeUrl.TypedStruct || !config) return type;
  try {
    return decodeAny(config, TypeUrl.TypedStruct).type_url;
  } catch {
    return type;
  }
}

function compileHcm(hcm: HttpConnectionManager__Output, where: string, options: CompileOptions, bufferLimitBytes: number | undefined, listener: string): HttpChainConfig {
  if (hcm.route_specifier !== 'rds' && hcm.route_specifier !== 'route_config') {
    throw new Error(`${where}: http_connection_manager needs rds or route_config (scoped routes are not supported)`);
  }
  const filters = hcm.http_filters ?? [];
  const registry = options.filters;
  const site: FilterSite = { where, listener, direction: options.direction ?? 'outbound', hcm };
  const compiled: HttpFilter[] = [];
  for (const [i, f] of filters.entries()) {
    if (f.disabled) continue;
    const type = filterType(f.typed_config);
    const factory = registry?.http.get(type);
    if (!knownHttpFilters.has(type) && !factory) {
      if (f.is_optional) continue;
      throw new Error(`${where}: unsupported HTTP filter ${JSON.stringify(f.name)}${type ? ` (${type})` : ''}`);
    }
    if (factory) {
      try {
        const built = factory(f.typed_config!, site);
        if (built) compiled.push(built);
      } catch (err) {
        throw new Error(`${where}: HTTP filter ${JSON.stringify(f.name)}: ${(err as Error).message}`);
      }
      continue;
    }
    try {
      decodeAny(f.typed_config!);
    } catch (err) {
      throw new Error(`${where}: HTTP filter ${JSON.stringify(f.name)} does not decode: ${(err as Error).message}`);
    }
    if (type === TypeUrl.Router && i !== filters.length - 1) throw new Error(`${where}: the router must be the last HTTP filter`);
  }
  if (!filters.some((f) => f.typed_config?.type_url === TypeUrl.Router)) throw new Error(`${where}: http_connection_manager has no router filter`);
  const inline = hcm.route_specifier === 'route_config' ? (hcm.route_config ?? undefined) : undefined;
  if (inline && options.checkRoutes) {
    try {
      options.checkRoutes(inline);
    } catch (err) {
      throw new Error(`${where}: inline route configuration ${JSON.stringify(inline.name)}: ${(err as Error).message}`);
    }
  }
  for (const factory of registry?.connectionManager ?? []) {
    try {
      const built = factory(hcm, site);
      if (built) compiled.push(built);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
  }
  return {
    hcm,
    filters: compiled,
    statPrefix: hcm.stat_prefix,
    routeName: hcm.route_specifier === 'rds' ? hcm.rds?.route_config_name : undefined,
    inlineRoutes: inline,
    http2: hcm.http2_protocol_options !== null && hcm.http2_protocol_options !== undefined,
    useRemoteAddress: hcm.use_remote_address?.value ?? false,
    bufferLimitBytes,
  };
}

function compileChain(chain: FilterChain, name: string, options: CompileOptions, bufferLimitBytes: number | undefined, listener: string): CompiledChain {
  const out: CompiledChain = { name, match: chain.filter_chain_match, tls: undefined, http: undefined, tcp: undefined, networkFilters: [] };
  const site: FilterSite = { where: name, listener, direction: options.direction ?? 'outbound' };
  const networkFilters: NetworkFilter[] = [];
  const ts = chain.transport_socket;
  if (ts?.typed_config) {
    const type = ts.typed_config.type_url;
    if (type === TypeUrl.DownstreamTlsContext) out.tls = decodeAny(ts.typed_config, TypeUrl.DownstreamTlsContext);
    else if (type !== TypeUrl.RawBuffer) throw new Error(`${name}: unsupported transport socket ${JSON.stringify(ts.name)} (${type})`);
  }
  const filters = chain.filters ?? [];
  if (filters.length === 0) throw new Error(`${name}: a filter chain without filters`);
  for (const [i, f] of filters.entries()) {
    const type = f.typed_config?.type_url ?? '';
    const last = i === filters.length - 1;
    if (type === TypeUrl.HttpConnectionManager || type === TypeUrl.TcpProxy) {
      if (!last) throw new Error(`${name}: ${JSON.stringify(f.name)} is a terminal filter but not the last one`);
    } else {
      const factory = options.filters?.network.get(type);
      if (!factory || last) throw new Error(`${name}: unsupported network filter ${JSON.stringify(f.name)}${type ? ` (${type})` : ''}`);
      try {
        const built = factory(f.typed_config!, site);
        if (built) networkFilters.push(built);
      } catch (err) {
        throw new Error(`${name}: network filter ${JSON.stringify(f.name)}: ${(err as Error).message}`);
      }
      continue;
    }
    if (type === TypeUrl.HttpConnectionManager) {
      let hcm: HttpConnectionManager__Output;
      try {
        hcm = decodeAny(f.typed_config!, TypeUrl.HttpConnectionManager);
      } catch (err) {
        throw new Error(`${name}: http_connection_manager does not decode: ${(err as Error).message}`);
      }
      out.http = compileHcm(hcm, name, options, bufferLimitBytes, listener);
    } else {
      const tp = decodeAny(f.typed_config!, TypeUrl.TcpProxy);
      let action: RouteAction;
      if (tp.cluster_specifier === 'weighted_clusters') {
        const clusters = (tp.weighted_clusters?.clusters ?? []).filter((c) => c.weight > 0).map((c) => ({ name: c.name, weight: c.weight, clusterHeader: '' }));
        if (clusters.length === 0) throw new Error(`${name}: tcp_proxy weighted_clusters with no weight`);
        action = weightedClusters(clusters);
      } else if (tp.cluster) {
        action = singleCluster(tp.cluster);
      } else {
        throw new Error(`${name}: tcp_proxy without a cluster`);
      }
      out.tcp = {
        action,
        statPrefix: tp.stat_prefix,
        idleTimeoutMs: protoDurationMs(tp.idle_timeout) || undefined,
        maxConnectAttempts: Math.max(1, tp.max_connect_attempts?.value ?? 1),
      };
      for (const factory of options.filters?.tcpChain ?? []) {
        const built = factory({ ...site, tcpProxy: tp });
        if (built) networkFilters.push(built);
      }
    }
  }
  out.networkFilters = networkFilters;
  return out;
}

/** Compiles a listener; throws with a reason (the NACK message) for what Weft cannot serve. */
export function compileListener(l: Listener__Output, options: CompileOptions = {}): CompiledListener {
  const sa = l.address?.socket_address;
  if (!sa) throw new Error('only socket addresses are supported');
  for (const f of l.listener_filters ?? []) {
    const type = f.typed_config?.type_url ?? '';
    if (!knownListenerFilters.has(type)) throw new Error(`unsupported listener filter ${JSON.stringify(f.name)}${type ? ` (${type})` : ''}`);
  }
  const limit = l.per_connection_buffer_limit_bytes?.value || undefined;
  const chains = (l.filter_chains ?? []).map((c, i) => compileChain(c, c.name || `${l.name}#${i}`, options, limit, l.name));
  const defaultChain = l.default_filter_chain ? compileChain(l.default_filter_chain, l.default_filter_chain.name || `${l.name}#default`, options, limit, l.name) : undefined;
  if (chains.length === 0 && !defaultChain) throw new Error('a listener without filter chains');
  const needsInspection = [...chains, ...(defaultChain ? [defaultChain] : [])].some(
    (c) => (c.match?.server_names.length ?? 0) > 0 || !!c.match?.transport_protocol || (c.match?.application_protocols.length ?? 0) > 0,
  );
  return {
    listener: l,
    name: l.name,
    address: sa.address,
    port: sa.port_value ?? 0,
    bindToPort: l.bind_to_port?.value ?? true,
    useOriginalDst: l.use_original_dst?.value ?? false,
    chains,
    defaultChain,
    needsInspection,
  };
}

const compiled = new WeakMap<Listener__Output, CompiledListener>();

/** `compileListener`, once per listener object (accepted listeners are immutable). */
export function compiledListener(l: Listener__Output, options: CompileOptions | (() => CompileOptions) = {}): CompiledListener {
  let c = compiled.get(l);
  if (!c) {
    c = compileListener(l, typeof options === 'function' ? options() : options);
    compiled.set(l, c);
  }
  return c;
}

// ---------------------------------------------------------------- matching

/** What filter chain matching knows about one connection. */
export interface ConnectionFacts {
  destinationAddress: string;
  destinationPort: number;
  sourceAddress: string;
  sourcePort: number;
  transport: 'tls' | 'raw_buffer';
  sni: string | undefined;
  alpn: readonly string[];
}

function ipToBigInt(ip: string): { v: bigint; bits: number } | undefined {
  const kind = isIP(ip);
  if (kind === 4) {
    const p = ip.split('.').map(Number);
    return { v: BigInt((((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0), bits: 32 };
  }
  if (kind === 6) {
    if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return ipToBigInt(ip.slice(7));
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    let v = 0n;
    for (const g of groups) v = (v << 16n) + BigInt(Number.parseInt(g || '0', 16));
    return { v, bits: 128 };
  }
  return undefined;
}

/** The prefix length of the longest range containing `ip`; -1 when none does. */
function longestPrefix(ranges: readonly CidrRange[], ip: string): number {
  const a = ipToBigInt(ip);
  if (!a) return -1;
  let best = -1;
  for (const r of ranges) {
    const b = ipToBigInt(r.address_prefix);
    if (!b || b.bits !== a.bits) continue;
    const len = Math.min(r.prefix_len?.value ?? b.bits, b.bits);
    const shift = BigInt(b.bits - len);
    if (a.v >> shift === b.v >> shift && len > best) best = len;
  }
  return best;
}

function narrowByPrefix(cands: CompiledChain[], pick: (m: FilterChainMatch) => readonly CidrRange[], ip: string): CompiledChain[] {
  let best = -1;
  const lens = cands.map((c) => {
    const ranges = c.match ? pick(c.match) : [];
    const len = ranges.length === 0 ? -2 : longestPrefix(ranges, ip);
    if (len > best) best = len;
    return len;
  });
  if (best >= 0) return cands.filter((_, i) => lens[i] === best);
  return cands.filter((_, i) => lens[i] === -2);
}

function serverNameScore(names: readonly string[], sni: string | undefined): number {
  if (names.length === 0) return -2;
  if (!sni) return -1;
  let best = -1;
  for (const n of names) {
    if (n === sni) return Number.MAX_SAFE_INTEGER;
    if (n.startsWith('*.') && sni.endsWith(n.slice(1)) && n.length > best) best = n.length;
    else if (n.startsWith('.') && sni.endsWith(n) && n.length > best) best = n.length;
  }
  return best;
}

function narrowByServerName(cands: CompiledChain[], sni: string | undefined): CompiledChain[] {
  let best = -3;
  const scores = cands.map((c) => {
    const s = serverNameScore(c.match?.server_names ?? [], sni);
    if (s >= 0 && s > best) best = s;
    return s;
  });
  return best >= 0 ? cands.filter((_, i) => scores[i] === best) : cands.filter((_, i) => scores[i] === -2);
}

/** Envoy's filter chain match: each criterion narrows to the most specific chains that match it, else to those without it. */
export function selectChain(l: CompiledListener, f: ConnectionFacts): CompiledChain | undefined {
  let cands = l.chains as CompiledChain[];
  const step = (keep: (c: CompiledChain) => boolean, unset: (c: CompiledChain) => boolean) => {
    const hit = cands.filter(keep);
    cands = hit.length > 0 ? hit : cands.filter(unset);
  };
  step(
    (c) => c.match?.destination_port?.value === f.destinationPort,
    (c) => !c.match?.destination_port,
  );
  cands = narrowByPrefix(cands, (m) => m.prefix_ranges, f.destinationAddress);
  cands = narrowByServerName(cands, f.sni);
  step(
    (c) => !!c.match?.transport_protocol && c.match.transport_protocol === f.transport,
    (c) => !c.match?.transport_protocol,
  );
  step(
    (c) => (c.match?.application_protocols ?? []).some((p) => f.alpn.includes(p)),
    (c) => (c.match?.application_protocols.length ?? 0) === 0,
  );
  cands = narrowByPrefix(cands, (m) => m.direct_source_prefix_ranges, f.sourceAddress);
  cands = narrowByPrefix(cands, (m) => m.source_prefix_ranges, f.sourceAddress);
  step(
    (c) => (c.match?.source_ports ?? []).includes(f.sourcePort),
    (c) => (c.match?.source_ports.length ?? 0) === 0,
  );
  return cands[0] ?? l.defaultChain;
}
