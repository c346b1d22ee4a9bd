// Capture configuration: the same knobs as Istio's istio-iptables (`tools/istio-iptables/pkg/config`).
// List-valued fields stay comma-separated strings, exactly as the flags carry them, because Istio's
// semantics hang on the raw text ("*" means everything, "" means nothing, empty items are skipped).

/** How inbound connections reach the proxy: NAT REDIRECT (default) or TPROXY (keeps the original destination). */
export type InterceptionMode = 'REDIRECT' | 'TPROXY' | '';

export interface CaptureConfig {
  /** `-p`: port of the outbound listener that all captured outbound TCP goes to. */
  proxyPort: string;
  /** `-z`: port of the inbound listener that captured inbound TCP goes to. */
  inboundCapturePort: string;
  /** `-e`: HBONE tunnel port, never captured inbound. */
  inboundTunnelPort: string;
  /** `-u`: comma list of UIDs whose traffic is never redirected (the proxy's own). */
  proxyUid: string;
  /** `-g`: comma list of GIDs whose traffic is never redirected. */
  proxyGid: string;
  /** `-m`: inbound interception mode; anything but TPROXY behaves as REDIRECT. */
  inboundInterceptionMode: InterceptionMode;
  /** `-t`: packet mark used by TPROXY. */
  inboundTProxyMark: string;
  /** `-r`: routing table used by TPROXY. */
  inboundTProxyRouteTable: string;
  /** `-b`: "*" or a comma list of inbound ports to capture; empty captures nothing inbound. */
  inboundPortsInclude: string;
  /** `-d`: inbound ports left alone; only used when `inboundPortsInclude` is "*". */
  inboundPortsExclude: string;
  /** `ISTIO_OUTBOUND_OWNER_GROUPS`: "*" or the groups whose outbound traffic is captured. */
  ownerGroupsInclude: string;
  /** `ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE`: groups whose outbound traffic is not captured (with include "*"). */
  ownerGroupsExclude: string;
  /** `-q`: outbound ports always captured. */
  outboundPortsInclude: string;
  /** `-o`: outbound ports never captured (TCP and UDP). */
  outboundPortsExclude: string;
  /** `-i`: "*" or CIDRs whose outbound traffic is captured; empty captures nothing outbound. */
  outboundIpRangesInclude: string;
  /** `-x`: CIDRs never captured outbound. */
  outboundIpRangesExclude: string;
  /** `-k`: interfaces whose inbound traffic is treated as outbound (VMs behind the pod). */
  rerouteVirtualInterfaces: string;
  /** `-c`: interfaces on which nothing is captured. */
  excludeInterfaces: string;
  /** `--redirect-dns`: send DNS to the agent's DNS proxy on 15053. */
  redirectDns: boolean;
  /** `--capture-all-dns`: capture all port-53 traffic, not only traffic to `dnsServersV4/V6`. */
  captureAllDns: boolean;
  /** `--drop-invalid`: drop conntrack-INVALID packets instead of letting the kernel reset connections. */
  dropInvalid: boolean;
  /** Also write ip6tables rules (Istio: the pod's first address is IPv6, or dual stack). */
  enableIpv6: boolean;
  /** DNS servers (from /etc/resolv.conf) whose port-53 traffic is captured. */
  dnsServersV4: string[];
  dnsServersV6: string[];
  /** `ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR`: what counts as "localhost" for IPv4. */
  hostIpv4LoopbackCidr: string;
}

export function defaultCaptureConfig(): CaptureConfig {
  return {
    proxyPort: '15001',
    inboundCapturePort: '15006',
    inboundTunnelPort: '15008',
    proxyUid: '1337',
    proxyGid: '1337',
    inboundInterceptionMode: '',
    inboundTProxyMark: '1337',
    inboundTProxyRouteTable: '133',
    inboundPortsInclude: '',
    inboundPortsExclude: '',
    ownerGroupsInclude: '*',
    ownerGroupsExclude: '',
    outboundPortsInclude: '',
    outboundPortsExclude: '',
    outboundIpRangesInclude: '',
    outboundIpRangesExclude: '',
    rerouteVirtualInterfaces: '',
    excludeInterfaces: '',
    redirectDns: false,
    captureAllDns: false,
    dropInvalid: false,
    enableIpv6: false,
    dnsServersV4: [],
    dnsServersV6: [],
    hostIpv4LoopbackCidr: '127.0.0.1/32',
  };
}

/** Istio's `config.Split`: comma separated, empty items dropped. */
export function splitList(s: string): string[] {
  if (s === '') return [];
  return s
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

// Istio caps included owner groups: they all go into one rule, and the kernel limits matches per rule.
const maxOwnerGroupsInclude = 64;

const portPattern = /^[0-9]{1,5}$/;
// User and group names as iptables' owner match accepts them; no whitespace, so nothing can
// smuggle extra arguments or lines into the iptables-restore payload.
const ownerPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;
// Linux interface names: at most 15 bytes, no whitespace or slash. iptables also allows a trailing "+".
const interfacePattern = /^[A-Za-z0-9_.:@-]{1,15}\+?$/;

function checkPort(what: string, value: string, problems: string[]): void {
  const n = Number(value);
  if (!portPattern.test(value) || n < 1 || n > 65535) problems.push(`${what}: "${value}" is not a port (1-65535)`);
}

function checkPortList(what: string, value: string, problems: string[], wildcard: boolean): void {
  if (wildcard && value === '*') return;
  for (const p of splitList(value)) checkPort(what, p, problems);
}

/** Every problem with a config, as sentences naming the flag; empty when it is usable. */
export function validateCaptureConfig(cfg: CaptureConfig): string[] {
  const problems: string[] = [];
  checkPort('--envoy-port', cfg.proxyPort, problems);
  checkPort('--inbound-capture-port', cfg.inboundCapturePort, problems);
  checkPort('--inbound-tunnel-port', cfg.inboundTunnelPort, problems);
  checkPortList('--istio-inbound-ports', cfg.inboundPortsInclude, problems, true);
  checkPortList('--istio-local-exclude-ports', cfg.inboundPortsExclude, problems, false);
  checkPortList('--istio-outbound-ports', cfg.outboundPortsInclude, problems, false);
  checkPortList('--istio-local-outbound-ports-exclude', cfg.outboundPortsExclude, problems, false);
  for (const [what, list] of [
    ['--proxy-uid', cfg.proxyUid],
    ['--proxy-gid', cfg.proxyGid],
  ] as const) {
    if (splitList(list).length === 0) problems.push(`${what}: at least one id is needed`);
    for (const id of splitList(list)) if (!ownerPattern.test(id)) problems.push(`${what}: "${id}" is not a user or group id`);
  }
  for (const [what, list] of [
    ['ISTIO_OUTBOUND_OWNER_GROUPS', cfg.ownerGroupsInclude === '*' ? '' : cfg.ownerGroupsInclude],
    ['ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE', cfg.ownerGroupsExclude],
  ] as const) {
    for (const g of splitList(list)) if (!ownerPattern.test(g)) problems.push(`${what}: "${g}" is not a group name or id`);
  }
  const filter = parseInterceptFilter(cfg.ownerGroupsInclude, cfg.ownerGroupsExclude);
  if (!filter.except && filter.values.length > maxOwnerGroupsInclude) {
    problems.push(
      `ISTIO_OUTBOUND_OWNER_GROUPS: at most ${maxOwnerGroupsInclude} groups can be captured (one iptables rule holds them all), got ${filter.values.length}`,
    );
  }
  if (cfg.inboundInterceptionMode !== '' && cfg.inboundInterceptionMode !== 'REDIRECT' && cfg.inboundInterceptionMode !== 'TPROXY') {
    problems.push(`--istio-inbound-interception-mode: "${String(cfg.inboundInterceptionMode)}" is neither REDIRECT nor TPROXY`);
  }
  if (!/^[0-9]+$/.test(cfg.inboundTProxyMark)) problems.push(`--istio-inbound-tproxy-mark: "${cfg.inboundTProxyMark}" is not a number`);
  if (!/^[0-9]+$/.test(cfg.inboundTProxyRouteTable)) {
    problems.push(`--istio-inbound-tproxy-route-table: "${cfg.inboundTProxyRouteTable}" is not a number`);
  }
  for (const [what, list] of [
    ['--kube-virt-interfaces', cfg.rerouteVirtualInterfaces],
    ['--istio-exclude-interfaces', cfg.excludeInterfaces],
  ] as const) {
    for (const nic of splitList(list)) if (!interfacePattern.test(nic)) problems.push(`${what}: "${nic}" is not an interface name`);
  }
  if (cfg.outboundIpRangesExclude.trim() === '*') {
    problems.push('--istio-service-exclude-cidr: "*" is not allowed (it would exclude everything; leave --istio-service-cidr empty instead)');
  }
  for (const [what, list] of [
    ['--istio-service-cidr', cfg.outboundIpRangesInclude],
    ['--istio-service-exclude-cidr', cfg.outboundIpRangesExclude],
  ] as const) {
    if (list === '*') continue;
    for (const c of splitList(list)) if (!parsePrefix(c)) problems.push(`${what}: "${c}" is not a CIDR (for example 10.0.0.0/8)`);
  }
  for (const s of cfg.dnsServersV4) if (!parseIpv4(s)) problems.push(`DNS server "${s}" is not an IPv4 address`);
  for (const s of cfg.dnsServersV6) if (!parseIpv6(s)) problems.push(`DNS server "${s}" is not an IPv6 address`);
  const loop = parsePrefix(cfg.hostIpv4LoopbackCidr);
  if (loop?.family !== 4 || !loop.loopback || loop.bits < 8) {
    problems.push(
      `ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: "${cfg.hostIpv4LoopbackCidr}" must be an IPv4 CIDR inside 127.0.0.0/8 with a prefix of 8 to 32`,
    );
  }
  return problems;
}

export interface InterceptFilter {
  values: string[];
  /** true: capture everyone except `values`; false: capture only `values`. */
  except: boolean;
}

export function parseInterceptFilter(include: string, exclude: string): InterceptFilter {
  // An empty include list would make Istio return *all* traffic early; treat it as the default "*".
  if (include === '*' || include.trim() === '') return { values: splitList(exclude), except: true };
  return { values: splitList(include), except: false };
}

export interface ParsedPrefix {
  family: 4 | 6;
  /** The address as Go's netip prints it (canonical, not masked) followed by /bits. */
  text: string;
  bits: number;
  loopback: boolean;
}

export function parseIpv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    // Go's parser rejects leading zeros (they are ambiguous: octal to some tools).
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** The canonical (RFC 5952) text of an IPv6 address, or undefined when it is not one. */
export function parseIpv6(s: string): string | undefined {
  if (!s.includes(':') || /[^0-9A-Fa-f:.]/.test(s)) return undefined;
  try {
    const host = new URL(`http://[${s}]/`).hostname;
    return host.slice(1, -1);
  } catch {
    return undefined;
  }
}

export function parsePrefix(s: string): ParsedPrefix | undefined {
  const slash = s.indexOf('/');
  if (slash < 0 || slash !== s.lastIndexOf('/')) return undefined;
  const addr = s.slice(0, slash);
  const bitsText = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  const v4 = parseIpv4(addr);
  if (v4) {
    if (bits > 32) return undefined;
    return { family: 4, text: `${v4.join('.')}/${bits}`, bits, loopback: v4[0] === 127 };
  }
  const v6 = parseIpv6(addr);
  if (v6 !== undefined) {
    if (bits > 128) return undefined;
    return { family: 6, text: `${v6}/${bits}`, bits, loopback: v6 === '::1' };
  }
  return undefined;
}
