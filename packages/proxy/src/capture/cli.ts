// weft-iptables: the init step of a Weft sidecar, flag-compatible with Istio's istio-iptables.
//
//   weft-iptables [flags]          install the capture rules
//   weft-iptables clean [flags]    remove them (same as --cleanup-only)
//
// Every flag except --envoy-port can also come from an environment variable named after it
// (upper case, "-" as "_"), as with Istio's viper binding; a flag on the command line wins.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { applyCapture, cleanCapture, routeCommands } from './apply.ts';
import { type CaptureConfig, defaultCaptureConfig, type InterceptionMode, parseIpv4, parseIpv6, validateCaptureConfig } from './config.ts';
import { buildCaptureRules } from './rules.ts';
import { type CommandRunner, jsonLogger, systemRunner } from './system.ts';

export interface IptablesCliIo {
  /** Where the dry-run payload goes; default process.stdout. */
  stdout?: (text: string) => void;
  /** Where log lines go (one JSON object per line); default process.stderr. */
  stderr?: (text: string) => void;
  /** Environment to read; default process.env. */
  env?: Record<string, string | undefined>;
  /** Runs iptables, ip and friends; default: this machine (or the --network-namespace). */
  runner?: CommandRunner;
  /** The pod's addresses, first one first; default: this network namespace's interfaces. */
  localAddresses?: string[];
  /** Text of resolv.conf for --redirect-dns; default /etc/resolv.conf. */
  resolvConf?: string;
  /** Text of the passwd database for resolving $ENVOY_USER; default /etc/passwd. */
  passwd?: string;
}

type FlagKind = 'string' | 'bool';

interface FlagSpec {
  long: string;
  short?: string;
  kind: FlagKind;
  /** Environment variables read when the flag is absent, first found wins. */
  env: string[];
  help: string;
}

const envOf = (long: string): string => long.toUpperCase().replaceAll('-', '_');

function flag(long: string, kind: FlagKind, help: string, short?: string, extraEnv: string[] = []): FlagSpec {
  return { long, kind, help, env: long === 'envoy-port' ? [] : [envOf(long), ...extraEnv], ...(short ? { short } : {}) };
}

const flags: FlagSpec[] = [
  flag('envoy-port', 'string', 'port all outbound TCP is redirected to (default 15001)', 'p'),
  flag('inbound-capture-port', 'string', 'port all inbound TCP is redirected to (default 15006)', 'z'),
  flag('inbound-tunnel-port', 'string', 'HBONE tunnel port, never captured (default 15008)', 'e'),
  flag('proxy-uid', 'string', 'UIDs (comma list) whose traffic is not redirected (default: uid of $ENVOY_USER, else 1337)', 'u'),
  flag('proxy-gid', 'string', 'GIDs (comma list) whose traffic is not redirected (default: same as --proxy-uid)', 'g'),
  flag('istio-inbound-interception-mode', 'string', 'REDIRECT or TPROXY (default REDIRECT)', 'm'),
  flag('istio-inbound-tproxy-mark', 'string', 'packet mark for TPROXY (default 1337)', 't'),
  flag('istio-inbound-tproxy-route-table', 'string', 'routing table for TPROXY (default 133)', 'r'),
  flag('istio-inbound-ports', 'string', '"*" or inbound ports to capture; empty captures no inbound traffic', 'b'),
  flag('istio-local-exclude-ports', 'string', 'inbound ports never captured (only with --istio-inbound-ports "*")', 'd'),
  flag('istio-exclude-interfaces', 'string', 'interfaces on which nothing is captured', 'c'),
  flag('istio-service-cidr', 'string', '"*" or CIDRs whose outbound traffic is captured; empty captures no outbound traffic', 'i'),
  flag('istio-service-exclude-cidr', 'string', 'CIDRs never captured outbound', 'x'),
  flag('istio-outbound-ports', 'string', 'outbound ports always captured', 'q'),
  flag('istio-local-outbound-ports-exclude', 'string', 'outbound ports never captured', 'o'),
  flag('kube-virt-interfaces', 'string', 'interfaces whose inbound traffic is treated as outbound', 'k'),
  flag('dry-run', 'bool', 'print the iptables-restore payloads instead of applying them', 'n'),
  flag('redirect-dns', 'bool', 'capture DNS to the agent on 15053 (also ISTIO_META_DNS_CAPTURE)', undefined, ['ISTIO_META_DNS_CAPTURE']),
  flag('capture-all-dns', 'bool', 'capture all port-53 traffic, not only that to the resolv.conf servers'),
  flag('drop-invalid', 'bool', 'drop conntrack-INVALID packets (also INVALID_DROP)', undefined, ['INVALID_DROP']),
  flag('dual-stack', 'bool', 'write IPv6 rules when the pod has any IPv6 address (also ISTIO_DUAL_STACK)', undefined, ['ISTIO_DUAL_STACK']),
  flag('reconcile', 'bool', 'replace leftover capture rules that differ from the wanted ones'),
  flag('cleanup-only', 'bool', 'remove the capture rules and exit (same as the clean command)'),
  flag('force-apply', 'bool', 'apply even when the wanted rules are already in place'),
  flag('skip-rule-apply', 'bool', 'do not apply anything'),
  flag('network-namespace', 'string', 'network namespace path (e.g. /var/run/netns/NAME) to apply the rules in'),
  flag('force-iptables-binary', 'string', 'iptables variant to use: iptables, iptables-legacy or iptables-nft'),
  flag('cni-mode', 'bool', 'accepted for compatibility; no effect'),
  flag('iptables-probe-port', 'string', 'accepted for compatibility; validation is not implemented'),
  flag('probe-timeout', 'string', 'accepted for compatibility; validation is not implemented'),
  flag('run-validation', 'bool', 'not supported: fails when set'),
  flag('native-nftables', 'bool', 'not supported: fails when set'),
];

const usage = `Usage: weft-iptables [clean] [flags]

Installs (or with "clean" removes) the transparent capture rules of a Weft sidecar, the same rules
as Istio's istio-iptables. Flags:
${flags.map((f) => `  ${f.short ? `-${f.short}, ` : '    '}--${f.long}${f.kind === 'string' ? ' VALUE' : ''}\n        ${f.help}`).join('\n')}
  -h, --help
`;

class UsageError extends Error {}

function parseBool(value: string, name: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new UsageError(`--${name}: "${value}" is not a boolean`);
}

interface ParsedArgs {
  command: 'install' | 'clean' | 'help';
  values: Map<string, string | boolean>;
}

function parseArgs(argv: string[]): ParsedArgs {
  const values = new Map<string, string | boolean>();
  const byLong = new Map(flags.map((f) => [f.long, f]));
  const byShort = new Map(flags.filter((f) => f.short).map((f) => [f.short!, f]));
  let command: ParsedArgs['command'] = 'install';
  let positional = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help' || arg === 'help') return { command: 'help', values };
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      // Istio's logging flags (the injector passes --log_output_level=default:info) mean nothing here.
      if (name.startsWith('log_')) {
        if (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) i++;
        continue;
      }
      spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag --${name}`);
    } else if (arg.startsWith('-') && arg.length > 1) {
      spec = byShort.get(arg[1]!);
      if (!spec) throw new UsageError(`unknown flag ${arg.slice(0, 2)}`);
      if (arg.length > 2) inline = arg[2] === '=' ? arg.slice(3) : arg.slice(2);
    } else {
      if (positional++ === 0 && arg === 'clean') {
        command = 'clean';
        continue;
      }
      throw new UsageError(`unexpected argument "${arg}"`);
    }
    if (spec.kind === 'bool') {
      values.set(spec.long, inline === undefined ? true : parseBool(inline, spec.long));
    } else if (inline !== undefined) {
      values.set(spec.long, inline);
    } else {
      // Like pflag: the next argument is the value, even when empty (`-x ""`).
      if (i + 1 >= argv.length) throw new UsageError(`--${spec.long} needs a value`);
      values.set(spec.long, argv[++i]!);
    }
  }
  return { command, values };
}

function lookupUid(passwd: string, user: string): string | undefined {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f[2] !== undefined && /^[0-9]+$/.test(f[2])) return f[2];
  }
  return undefined;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function isLinkLocalOrLoopback(addr: string): boolean {
  const a = addr.toLowerCase();
  return a.startsWith('127.') || a === '::1' || a.startsWith('169.254.') || /^fe[89ab]/.test(a) || a.startsWith('ff02:');
}

/** The pod's addresses as Istio walks them, from `ip -o addr` inside a network namespace. */
async function namespaceAddresses(runner: CommandRunner): Promise<string[]> {
  const r = await runner('ip', ['-o', 'addr', 'show']);
  if (r.code !== 0) throw new Error(`cannot list addresses: ${r.stderr.trim()}`);
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /\binet6?\s+([0-9a-fA-F:.]+)\//.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined)
    .map((i) => i.address);
}

/**
 * Istio enables IPv6 rules when the pod's first usable address is IPv6; with dual stack, when it
 * has any usable IPv6 address.
 */
function detectIpv6(addresses: string[], dualStack: boolean): boolean {
  const usable = addresses.filter((a) => !isLinkLocalOrLoopback(a.replace(/^::ffff:/, '')));
  if (usable.length === 0) return false;
  if (dualStack) return usable.some((a) => a.includes(':') && !a.startsWith('::ffff:'));
  return usable[0]!.includes(':') && !usable[0]!.startsWith('::ffff:');
}

function resolvConfServers(text: string): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const s = m[1]!.replace(/%.*$/, '');
    if (parseIpv4(s)) v4.push(s);
    else if (parseIpv6(s) !== undefined) v6.push(s);
  }
  return { v4, v6 };
}

interface CliSettings {
  cfg: CaptureConfig;
  dryRun: boolean;
  reconcile: boolean;
  forceApply: boolean;
  skipRuleApply: boolean;
  networkNamespace: string;
  iptablesBinary: string;
}

async function buildSettings(values: Map<string, string | boolean>, io: IptablesCliIo, runner: CommandRunner): Promise<CliSettings> {
  const env = io.env ?? process.env;
  const get = (long: string): string | undefined => {
    const v = values.get(long);
    if (typeof v === 'string') return v;
    const spec = flags.find((f) => f.long === long)!;
    for (const name of spec.env) {
      const e = env[name];
      // Like viper, an empty variable counts as unset.
      if (e !== undefined && e !== '') return e;
    }
    return undefined;
  };
  const getBool = (long: string): boolean => {
    const v = values.get(long);
    if (typeof v === 'boolean') return v;
    const s = get(long);
    return s === undefined ? false : parseBool(s, long);
  };

  for (const unsupported of ['run-validation', 'native-nftables']) {
    if (getBool(unsupported)) throw new UsageError(`--${unsupported} is not supported by weft-iptables`);
  }
  const iptablesBinary = get('force-iptables-binary') ?? 'iptables';
  if (!['iptables', 'iptables-legacy', 'iptables-nft'].includes(iptablesBinary)) {
    throw new UsageError(`--force-iptables-binary: "${iptablesBinary}" is not one of iptables, iptables-legacy, iptables-nft`);
  }

  const cfg = defaultCaptureConfig();
  const str = (long: string, set: (v: string) => void): void => {
    const v = get(long);
    if (v !== undefined) set(v);
  };
  str('envoy-port', (v) => {
    cfg.proxyPort = v;
  });
  str('inbound-capture-port', (v) => {
    cfg.inboundCapturePort = v;
  });
  str('inbound-tunnel-port', (v) => {
    cfg.inboundTunnelPort = v;
  });
  str('istio-inbound-interception-mode', (v) => {
    cfg.inboundInterceptionMode = v as InterceptionMode;
  });
  str('istio-inbound-tproxy-mark', (v) => {
    cfg.inboundTProxyMark = v;
  });
  str('istio-inbound-tproxy-route-table', (v) => {
    cfg.inboundTProxyRouteTable = v;
  });
  str('istio-inbound-ports', (v) => {
    cfg.inboundPortsInclude = v;
  });
  str('istio-local-exclude-ports', (v) => {
    cfg.inboundPortsExclude = v;
  });
  str('istio-exclude-interfaces', (v) => {
    cfg.excludeInterfaces = v;
  });
  str('istio-service-cidr', (v) => {
    cfg.outboundIpRangesInclude = v;
  });
  str('istio-service-exclude-cidr', (v) => {
    cfg.outboundIpRangesExclude = v;
  });
  str('istio-outbound-ports', (v) => {
    cfg.outboundPortsInclude = v;
  });
  str('istio-local-outbound-ports-exclude', (v) => {
    cfg.outboundPortsExclude = v;
  });
  str('kube-virt-interfaces', (v) => {
    cfg.rerouteVirtualInterfaces = v;
  });
  cfg.redirectDns = getBool('redirect-dns');
  cfg.captureAllDns = getBool('capture-all-dns');
  cfg.dropInvalid = getBool('drop-invalid');

  // Environment-only settings, as in Istio.
  const envOnly = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  cfg.ownerGroupsInclude = envOnly('ISTIO_OUTBOUND_OWNER_GROUPS') ?? '*';
  cfg.ownerGroupsExclude = envOnly('ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE') ?? '';
  cfg.hostIpv4LoopbackCidr = envOnly('ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR') ?? '127.0.0.1/32';

  const uid = get('proxy-uid');
  cfg.proxyUid = uid ?? lookupUid(io.passwd ?? readOr('/etc/passwd', ''), envOnly('ENVOY_USER') ?? 'istio-proxy') ?? '1337';
  cfg.proxyGid = get('proxy-gid') ?? cfg.proxyUid;

  const networkNamespace = get('network-namespace') ?? '';
  const addresses = io.localAddresses ?? (networkNamespace !== '' ? await namespaceAddresses(runner) : hostAddresses());
  cfg.enableIpv6 = detectIpv6(addresses, getBool('dual-stack'));

  if (cfg.redirectDns && !cfg.captureAllDns) {
    const servers = resolvConfServers(io.resolvConf ?? readFileSync('/etc/resolv.conf', 'utf8'));
    cfg.dnsServersV4 = servers.v4;
    cfg.dnsServersV6 = servers.v6;
  }

  return {
    cfg,
    dryRun: getBool('dry-run'),
    reconcile: getBool('reconcile'),
    forceApply: getBool('force-apply'),
    skipRuleApply: getBool('skip-rule-apply'),
    networkNamespace,
    iptablesBinary,
  };
}

/**
 * Runs weft-iptables with `argv` (without the program name) and returns the exit code: 0 on
 * success, 1 when applying failed, 2 for bad flags or values.
 */
export async function runIptablesCli(argv: string[], io: IptablesCliIo = {}): Promise<number> {
  const out = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const log = jsonLogger((line) => err(`${line}\n`));
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    err(`weft-iptables: ${(e as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.command === 'help') {
    out(usage);
    return 0;
  }

  let settings: CliSettings;
  const nsValue = parsed.values.get('network-namespace');
  const ns = typeof nsValue === 'string' && nsValue !== '' ? nsValue : (io.env ?? process.env).NETWORK_NAMESPACE || undefined;
  // A bare name means one made by `ip netns add`.
  const runner = io.runner ?? systemRunner(ns && !ns.includes('/') ? `/var/run/netns/${ns}` : ns);
  try {
    settings = await buildSettings(parsed.values, io, runner);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`weft-iptables: ${e.message}\n\n${usage}`);
      return 2;
    }
    log.error('cannot read the environment', { error: (e as Error).message });
    return 1;
  }
  const { cfg } = settings;
  const problems = validateCaptureConfig(cfg);
  if (problems.length > 0) {
    for (const p of problems) err(`weft-iptables: ${p}\n`);
    return 2;
  }
  const clean = parsed.command === 'clean' || parsed.values.get('cleanup-only') === true;

  if (settings.dryRun) {
    if (clean) {
      out('# weft-iptables clean: removes every ISTIO_* chain and every jump into one, in iptables and ip6tables\n');
      return 0;
    }
    const payloads = buildCaptureRules(cfg);
    out(`# ${settings.iptablesBinary}-restore --noflush\n${payloads.ipv4}`);
    if (cfg.enableIpv6) out(`# ${settings.iptablesBinary.replace(/^iptables/, 'ip6tables')}-restore --noflush\n${payloads.ipv6}`);
    for (const args of routeCommands(cfg)) out(`# ip ${args.join(' ')}\n`);
    return 0;
  }
  if (settings.skipRuleApply) {
    log.info('--skip-rule-apply: nothing applied');
    return 0;
  }

  const options = { runner, log, reconcile: settings.reconcile, forceApply: settings.forceApply, iptablesBinary: settings.iptablesBinary };
  try {
    if (clean) {
      await cleanCapture(cfg, options);
    } else {
      log.info('installing capture rules', {
        proxyPort: cfg.proxyPort,
        inboundCapturePort: cfg.inboundCapturePort,
        proxyUid: cfg.proxyUid,
        proxyGid: cfg.proxyGid,
        inboundPorts: cfg.inboundPortsInclude,
        inboundExcludePorts: cfg.inboundPortsExclude,
        serviceCidr: cfg.outboundIpRangesInclude,
        serviceExcludeCidr: cfg.outboundIpRangesExclude,
        ipv6: cfg.enableIpv6,
        redirectDns: cfg.redirectDns,
        interceptionMode: cfg.inboundInterceptionMode || 'REDIRECT',
      });
      await applyCapture(cfg, options);
    }
    return 0;
  } catch (e) {
    log.error(clean ? 'clean-up failed' : 'installing capture rules failed', { error: (e as Error).message });
    return 1;
  }
}
