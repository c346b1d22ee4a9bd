// The capture rule set, built in the same order and shape as Istio's istio-iptables
// (`tools/istio-iptables/pkg/capture/run.go` and `pkg/builder`), so that the iptables-restore payload
// is byte-for-byte the one Istio's init container applies for the same flags.
import { type CaptureConfig, parseInterceptFilter, parsePrefix, splitList } from './config.ts';

export const Chains = {
  inbound: 'ISTIO_INBOUND',
  redirect: 'ISTIO_REDIRECT',
  inRedirect: 'ISTIO_IN_REDIRECT',
  output: 'ISTIO_OUTPUT',
  outputDns: 'ISTIO_OUTPUT_DNS',
  divert: 'ISTIO_DIVERT',
  tproxy: 'ISTIO_TPROXY',
  drop: 'ISTIO_DROP',
} as const;

/** The agent's DNS proxy port, where captured DNS goes. */
export const dnsProxyPort = '15053';
/** Mark set on proxy→app traffic over loopback in TPROXY mode. */
export const outboundMark = '1338';

const ipv6Loopback = '::1/128';
// Source address of the proxy's inbound passthrough connections; traffic from it is never re-captured.
const inboundPassthroughV4 = '127.0.0.6/32';
const inboundPassthroughV6 = '::6/128';
// Placeholder replaced by the family's own address in rules added to both families.
const versioned = '\u0000versioned';

export interface Rule {
  table: string;
  chain: string;
  /** The rule as iptables-restore reads it: "-A CHAIN ..." or "-I CHAIN POS ...". */
  params: string[];
}

/** Both families' rules, in the order they are applied. */
export interface CaptureRuleSet {
  ipv4: Rule[];
  /** Empty unless the config enables IPv6. */
  ipv6: Rule[];
}

/** The iptables-restore payloads (empty string when a family has no rules). */
export interface CapturePayloads {
  ipv4: string;
  ipv6: string;
}

export function isIstioChain(name: string): boolean {
  return name.startsWith('ISTIO_');
}

class Builder {
  readonly v4: Rule[] = [];
  readonly v6: Rule[] = [];
  readonly ipv6: boolean;

  constructor(ipv6: boolean) {
    this.ipv6 = ipv6;
  }

  appendV4(chain: string, table: string, ...params: string[]): void {
    this.v4.push({ table, chain, params: ['-A', chain, ...params] });
  }

  appendV6(chain: string, table: string, ...params: string[]): void {
    if (this.ipv6) this.v6.push({ table, chain, params: ['-A', chain, ...params] });
  }

  append(chain: string, table: string, ...params: string[]): void {
    this.appendV4(chain, table, ...params);
    this.appendV6(chain, table, ...params);
  }

  insertV4(chain: string, table: string, position: number, ...params: string[]): void {
    this.v4.push({ table, chain, params: ['-I', chain, String(position), ...params] });
  }

  insertV6(chain: string, table: string, position: number, ...params: string[]): void {
    if (this.ipv6) this.v6.push({ table, chain, params: ['-I', chain, String(position), ...params] });
  }

  insert(chain: string, table: string, position: number, ...params: string[]): void {
    this.insertV4(chain, table, position, ...params);
    this.insertV6(chain, table, position, ...params);
  }

  /** A rule for both families with one address that differs per family. */
  appendVersioned(v4: string, v6: string, chain: string, table: string, ...params: string[]): void {
    this.appendV4(chain, table, ...params.map((p) => (p === versioned ? v4 : p)));
    this.appendV6(chain, table, ...params.map((p) => (p === versioned ? v6 : p)));
  }
}

interface NetworkRange {
  wildcard: boolean;
  cidrs: string[];
  hasLoopback: boolean;
}

function separateV4V6(list: string): { v4: NetworkRange; v6: NetworkRange } {
  if (list.trim() === '*') {
    return { v4: { wildcard: true, cidrs: [], hasLoopback: false }, v6: { wildcard: true, cidrs: [], hasLoopback: false } };
  }
  const v4: NetworkRange = { wildcard: false, cidrs: [], hasLoopback: false };
  const v6: NetworkRange = { wildcard: false, cidrs: [], hasLoopback: false };
  for (const item of splitList(list)) {
    const p = parsePrefix(item);
    // validateCaptureConfig reports unparsable CIDRs; Istio skips them, and so does the builder.
    if (!p) continue;
    const range = p.family === 4 ? v4 : v6;
    range.cidrs.push(p.text);
    if (p.loopback) range.hasLoopback = true;
  }
  return { v4, v6 };
}

/** The full rule set for a config (both families), in application order. */
export function buildCaptureRuleSet(cfg: CaptureConfig): CaptureRuleSet {
  const b = new Builder(cfg.enableIpv6);
  const tproxy = cfg.inboundInterceptionMode === 'TPROXY';
  const loopV4 = cfg.hostIpv4LoopbackCidr;
  const excludeRanges = separateV4V6(cfg.outboundIpRangesExclude);
  const includeRanges = separateV4V6(cfg.outboundIpRangesInclude);
  const redirectDns = cfg.redirectDns && (cfg.captureAllDns || cfg.dnsServersV4.length > 0 || cfg.dnsServersV6.length > 0);
  const uids = splitList(cfg.proxyUid);
  const gids = splitList(cfg.proxyGid);
  const virtualInterfaces = splitList(cfg.rerouteVirtualInterfaces);

  // Interfaces that are never captured, in both directions.
  for (const nic of splitList(cfg.excludeInterfaces)) {
    b.append('PREROUTING', 'nat', '-i', nic, '-j', 'RETURN');
    b.append('OUTPUT', 'nat', '-o', nic, '-j', 'RETURN');
  }
  if (tproxy) {
    for (const nic of splitList(cfg.excludeInterfaces)) {
      b.append('PREROUTING', 'mangle', '-i', nic, '-j', 'RETURN');
      b.append('OUTPUT', 'mangle', '-o', nic, '-j', 'RETURN');
    }
  }
  for (const nic of virtualInterfaces) b.insert('PREROUTING', 'nat', 1, '-i', nic, '-j', 'RETURN');

  if (cfg.dropInvalid) {
    b.append('PREROUTING', 'mangle', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', Chains.drop);
    b.append(Chains.drop, 'mangle', '-j', 'DROP');
  }

  b.append(Chains.inbound, 'nat', '-p', 'tcp', '--dport', cfg.inboundTunnelPort, '-j', 'RETURN');
  b.append(Chains.redirect, 'nat', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', cfg.proxyPort);
  b.append(Chains.inRedirect, 'nat', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', cfg.inboundCapturePort);

  inbound(b, cfg, tproxy);

  // Every outbound packet goes through ISTIO_OUTPUT; UDP is only touched there by the DNS rules.
  b.append('OUTPUT', 'nat', '-j', Chains.output);
  // Port exclusions come before the loopback rules so that they win over them.
  for (const port of splitList(cfg.outboundPortsExclude)) {
    b.append(Chains.output, 'nat', '-p', 'tcp', '--dport', port, '-j', 'RETURN');
    b.append(Chains.output, 'nat', '-p', 'udp', '--dport', port, '-j', 'RETURN');
  }
  b.appendVersioned(inboundPassthroughV4, inboundPassthroughV6, Chains.output, 'nat', '-o', 'lo', '-s', versioned, '-j', 'RETURN');

  const loopbackIncluded = includeRanges.v4.hasLoopback || includeRanges.v6.hasLoopback;
  for (const uid of uids) {
    // The app calling itself through a service address: app -> proxy (outbound) -> proxy (inbound) -> app.
    // With DNS capture, port 53 is skipped so that the agent's own DNS calls go straight to the server.
    const skipPorts = redirectDns ? ['-m', 'multiport', '!', '--dports', `53,${cfg.inboundTunnelPort}`] : ['!', '--dport', cfg.inboundTunnelPort];
    b.appendVersioned(loopV4, ipv6Loopback, Chains.output, 'nat', '-o', 'lo', '!', '-d', versioned, '-p', 'tcp', ...skipPorts, '-m', 'owner', '--uid-owner', uid, '-j', Chains.inRedirect);
    // The app calling itself by its own address over lo is not captured, unless loopback is explicitly included.
    if (!loopbackIncluded) {
      if (redirectDns) b.append(Chains.output, 'nat', '-o', 'lo', '-p', 'tcp', '!', '--dport', '53', '-m', 'owner', '!', '--uid-owner', uid, '-j', 'RETURN');
      else b.append(Chains.output, 'nat', '-o', 'lo', '-m', 'owner', '!', '--uid-owner', uid, '-j', 'RETURN');
    }
    // The proxy's own traffic, any protocol, is never redirected back to it: that would loop.
    b.append(Chains.output, 'nat', '-m', 'owner', '--uid-owner', uid, '-j', 'RETURN');
  }
  for (const gid of gids) {
    b.appendVersioned(loopV4, ipv6Loopback, Chains.output, 'nat', '-o', 'lo', '!', '-d', versioned, '-p', 'tcp', '!', '--dport', cfg.inboundTunnelPort, '-m', 'owner', '--gid-owner', gid, '-j', Chains.inRedirect);
    if (!loopbackIncluded) {
      if (redirectDns) b.append(Chains.output, 'nat', '-o', 'lo', '-p', 'tcp', '!', '--dport', '53', '-m', 'owner', '!', '--gid-owner', gid, '-j', 'RETURN');
      else b.append(Chains.output, 'nat', '-o', 'lo', '-m', 'owner', '!', '--gid-owner', gid, '-j', 'RETURN');
    }
    b.append(Chains.output, 'nat', '-m', 'owner', '--gid-owner', gid, '-j', 'RETURN');
  }

  const groups = parseInterceptFilter(cfg.ownerGroupsInclude, cfg.ownerGroupsExclude);
  if (groups.except) {
    for (const g of groups.values) b.append(Chains.output, 'nat', '-m', 'owner', '--gid-owner', g, '-j', 'RETURN');
  } else {
    b.append(Chains.output, 'nat', ...groups.values.flatMap((g) => ['-m', 'owner', '!', '--gid-owner', g]), '-j', 'RETURN');
  }

  if (redirectDns) dns(b, cfg, uids, gids);

  // Traffic to localhost (proxy-aware apps, container to container) is left alone.
  b.appendVersioned(loopV4, ipv6Loopback, Chains.output, 'nat', '-d', versioned, '-j', 'RETURN');
  for (const cidr of excludeRanges.v4.cidrs) b.appendV4(Chains.output, 'nat', '-d', cidr, '-j', 'RETURN');
  for (const cidr of excludeRanges.v6.cidrs) b.appendV6(Chains.output, 'nat', '-d', cidr, '-j', 'RETURN');

  for (const port of splitList(cfg.outboundPortsInclude)) b.append(Chains.output, 'nat', '-p', 'tcp', '--dport', port, '-j', Chains.redirect);

  outboundInclude(includeRanges.v4, virtualInterfaces, b.appendV4.bind(b), b.insertV4.bind(b));
  outboundInclude(includeRanges.v6, virtualInterfaces, b.appendV6.bind(b), b.insertV6.bind(b));

  if (tproxy) {
    const mark = cfg.inboundTProxyMark;
    // Keep the mark set on accepted connections (original_src) as the connection mark.
    b.append('PREROUTING', 'mangle', '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'CONNMARK', '--save-mark');
    // Already-marked proxy -> app traffic is not marked again.
    b.append('OUTPUT', 'mangle', '-p', 'tcp', '-o', 'lo', '-m', 'mark', '--mark', mark, '-j', 'RETURN');
    // app -> service address -> proxy outbound -(mark 1338)-> proxy inbound -> app.
    for (const uid of uids) {
      b.appendVersioned(loopV4, ipv6Loopback, 'OUTPUT', 'mangle', '!', '-d', versioned, '-p', 'tcp', '-o', 'lo', '-m', 'owner', '--uid-owner', uid, '-j', 'MARK', '--set-mark', outboundMark);
    }
    for (const gid of gids) {
      b.appendVersioned(loopV4, ipv6Loopback, 'OUTPUT', 'mangle', '!', '-d', versioned, '-p', 'tcp', '-o', 'lo', '-m', 'owner', '--gid-owner', gid, '-j', 'MARK', '--set-mark', outboundMark);
    }
    // Replies of TPROXYed connections must follow the policy route back to lo.
    b.append('OUTPUT', 'mangle', '-p', 'tcp', '-m', 'connmark', '--mark', mark, '-j', 'CONNMARK', '--restore-mark');
    b.insert(Chains.inbound, 'mangle', 1, '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'RETURN');
    b.insertV4(Chains.inbound, 'mangle', 2, '-p', 'tcp', '-s', inboundPassthroughV4, '-i', 'lo', '-j', 'RETURN');
    b.insertV6(Chains.inbound, 'mangle', 2, '-p', 'tcp', '-s', inboundPassthroughV6, '-i', 'lo', '-j', 'RETURN');
    b.insert(Chains.inbound, 'mangle', 3, '-p', 'tcp', '-i', 'lo', '-m', 'mark', '!', '--mark', outboundMark, '-j', 'RETURN');
  }

  return { ipv4: b.v4, ipv6: b.v6 };
}

function inbound(b: Builder, cfg: CaptureConfig, tproxy: boolean): void {
  if (cfg.inboundPortsInclude === '') return;
  let table = 'nat';
  if (tproxy) {
    // Marked packets are routed to lo (policy route), where TPROXY hands them to the inbound listener.
    b.append(Chains.divert, 'mangle', '-j', 'MARK', '--set-mark', cfg.inboundTProxyMark);
    b.append(Chains.divert, 'mangle', '-j', 'ACCEPT');
    b.appendVersioned(cfg.hostIpv4LoopbackCidr, ipv6Loopback, Chains.tproxy, 'mangle', '!', '-d', versioned, '-p', 'tcp', '-j', 'TPROXY', '--tproxy-mark', `${cfg.inboundTProxyMark}/0xffffffff`, '--on-port', cfg.inboundCapturePort);
    table = 'mangle';
  }
  b.append('PREROUTING', table, '-p', 'tcp', '-j', Chains.inbound);
  if (cfg.inboundPortsInclude.trim() === '*') {
    for (const port of splitList(cfg.inboundPortsExclude)) b.append(Chains.inbound, table, '-p', 'tcp', '--dport', port, '-j', 'RETURN');
    if (tproxy) {
      // Packets of established connections go straight to the local socket; new ones are TPROXYed.
      b.append(Chains.inbound, 'mangle', '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', Chains.divert);
      b.append(Chains.inbound, 'mangle', '-p', 'tcp', '-j', Chains.tproxy);
    } else {
      b.append(Chains.inbound, 'nat', '-p', 'tcp', '-j', Chains.inRedirect);
    }
    return;
  }
  for (const port of splitList(cfg.inboundPortsInclude)) {
    if (tproxy) {
      b.append(Chains.inbound, 'mangle', '-p', 'tcp', '--dport', port, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', Chains.divert);
      b.append(Chains.inbound, 'mangle', '-p', 'tcp', '--dport', port, '-j', Chains.tproxy);
    } else {
      b.append(Chains.inbound, 'nat', '-p', 'tcp', '--dport', port, '-j', Chains.inRedirect);
    }
  }
}

function outboundInclude(
  range: NetworkRange,
  virtualInterfaces: string[],
  append: (chain: string, table: string, ...params: string[]) => void,
  insert: (chain: string, table: string, position: number, ...params: string[]) => void,
): void {
  if (range.wildcard) {
    append(Chains.output, 'nat', '-j', Chains.redirect);
    for (const nic of virtualInterfaces) insert('PREROUTING', 'nat', 1, '-i', nic, '-j', Chains.redirect);
    return;
  }
  for (const cidr of range.cidrs) {
    for (const nic of virtualInterfaces) insert('PREROUTING', 'nat', 1, '-i', nic, '-d', cidr, '-j', Chains.redirect);
    append(Chains.output, 'nat', '-d', cidr, '-j', Chains.redirect);
  }
}

function dns(b: Builder, cfg: CaptureConfig, uids: string[], gids: string[]): void {
  const all = cfg.captureAllDns;
  b.append('OUTPUT', 'raw', '-j', Chains.outputDns);
  // Jump only for the families that have DNS servers to capture: no jumps into empty chains.
  if (all || cfg.dnsServersV4.length > 0) b.appendV4(Chains.output, 'nat', '-j', Chains.outputDns);
  if (all || cfg.dnsServersV6.length > 0) b.appendV6(Chains.output, 'nat', '-j', Chains.outputDns);
  if (all) {
    b.append(Chains.outputDns, 'nat', '-p', 'tcp', '--dport', '53', '-j', 'REDIRECT', '--to-ports', dnsProxyPort);
  } else {
    // Only the configured servers: a local resolver chain (app -> agent -> dnsmasq -> upstream) must not loop.
    for (const s of cfg.dnsServersV4) b.appendV4(Chains.outputDns, 'nat', '-p', 'tcp', '--dport', '53', '-d', `${s}/32`, '-j', 'REDIRECT', '--to-ports', dnsProxyPort);
    for (const s of cfg.dnsServersV6) b.appendV6(Chains.outputDns, 'nat', '-p', 'tcp', '--dport', '53', '-d', `${s}/128`, '-j', 'REDIRECT', '--to-ports', dnsProxyPort);
  }
  if (all) {
    b.append(Chains.outputDns, 'nat', '-p', 'udp', '--dport', '53', '-j', 'REDIRECT', '--to-port', dnsProxyPort);
  } else {
    for (const s of cfg.dnsServersV4) b.appendV4(Chains.outputDns, 'nat', '-p', 'udp', '--dport', '53', '-d', `${s}/32`, '-j', 'REDIRECT', '--to-port', dnsProxyPort);
    for (const s of cfg.dnsServersV6) b.appendV6(Chains.outputDns, 'nat', '-p', 'udp', '--dport', '53', '-d', `${s}/128`, '-j', 'REDIRECT', '--to-port', dnsProxyPort);
  }

  // Separate conntrack zones for proxy<->upstream (1) and app<->proxy (2) DNS, so that UDP
  // conntrack entries of the two legs cannot collide.
  for (const uid of uids) {
    b.append(Chains.outputDns, 'raw', '-p', 'udp', '--dport', '53', '-m', 'owner', '--uid-owner', uid, '-j', 'CT', '--zone', '1');
    b.append(Chains.outputDns, 'raw', '-p', 'udp', '--sport', dnsProxyPort, '-m', 'owner', '--uid-owner', uid, '-j', 'CT', '--zone', '2');
  }
  for (const gid of gids) {
    b.append(Chains.outputDns, 'raw', '-p', 'udp', '--dport', '53', '-m', 'owner', '--gid-owner', gid, '-j', 'CT', '--zone', '1');
    b.append(Chains.outputDns, 'raw', '-p', 'udp', '--sport', dnsProxyPort, '-m', 'owner', '--gid-owner', gid, '-j', 'CT', '--zone', '2');
  }
  if (all) {
    b.append('PREROUTING', 'raw', '-j', Chains.inbound);
    b.append(Chains.outputDns, 'raw', '-p', 'udp', '--dport', '53', '-j', 'CT', '--zone', '2');
    b.append(Chains.inbound, 'raw', '-p', 'udp', '--sport', '53', '-j', 'CT', '--zone', '1');
    return;
  }
  if (cfg.dnsServersV4.length > 0) b.appendV4('PREROUTING', 'raw', '-j', Chains.inbound);
  for (const s of cfg.dnsServersV4) {
    b.appendV4(Chains.outputDns, 'raw', '-p', 'udp', '--dport', '53', '-d', `${s}/32`, '-j', 'CT', '--zone', '2');
    b.appendV4(Chains.inbound, 'raw', '-p', 'udp', '--sport', '53', '-s', `${s}/32`, '-j', 'CT', '--zone', '1');
  }
  if (cfg.dnsServersV6.length > 0) b.appendV6('PREROUTING', 'raw', '-j', Chains.inbound);
  for (const s of cfg.dnsServersV6) {
    b.appendV6(Chains.outputDns, 'raw', '-p', 'udp', '--dport', '53', '-d', `${s}/128`, '-j', 'CT', '--zone', '2');
    b.appendV6(Chains.inbound, 'raw', '-p', 'udp', '--sport', '53', '-s', `${s}/128`, '-j', 'CT', '--zone', '1');
  }
}

/**
 * One family's rules as iptables-restore input: tables in alphabetical order, each with `-N` for
 * the Istio chains it uses (chains with rules first, then chains only jumped to), then the rules.
 */
export function renderRestorePayload(rules: Rule[]): string {
  const tables = new Map<string, string[]>();
  const seen = new Set<string>();
  const declare = (table: string, chain: string): void => {
    const key = `${chain}:${table}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (!isIstioChain(chain)) return;
    const lines = tables.get(table) ?? [];
    lines.push(`-N ${chain}`);
    tables.set(table, lines);
  };
  for (const r of rules) declare(r.table, r.chain);
  for (const r of rules) {
    if (r.params.length >= 2 && r.params[r.params.length - 2] === '-j') declare(r.table, r.params[r.params.length - 1]!);
  }
  for (const r of rules) {
    const lines = tables.get(r.table) ?? [];
    lines.push(r.params.join(' '));
    tables.set(r.table, lines);
  }
  let out = '';
  for (const table of [...tables.keys()].sort()) {
    out += `* ${table}\n${tables.get(table)!.join('\n')}\nCOMMIT\n`;
  }
  return out;
}

/** The iptables-restore payloads Istio's init container would apply for this config. */
export function buildCaptureRules(cfg: CaptureConfig): CapturePayloads {
  const set = buildCaptureRuleSet(cfg);
  return { ipv4: renderRestorePayload(set.ipv4), ipv6: renderRestorePayload(set.ipv6) };
}
