// Command line and environment of `weft-proxy` and `weft-ingress` (the same proxy; the ingress
// defaults to `--type router`). Flags win over environment variables, which are Istio's where
// Istio has one (INSTANCE_IP, POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT, ISTIO_META_*).
import { type NodeId, parseDuration, parseNodeId } from '@weft/mesh';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { LogLevel } from '@weft/model';
import { AppMetricsError, appMetricsUrl } from '../telemetry/app-metrics.ts';
import { AppProbersError, parseAppProbers } from '../telemetry/app-probe.ts';
import { parseLabels, type ProxyKind } from '../xds/node.ts';
import type { ProxyOptions } from './proxy.ts';
import type { ProxyCaOptions } from '../security/identity.ts';

export class UsageError extends Error {}

export function proxyUsage(command: string, kind: ProxyKind): string {
  return `${command}: the Weft ${kind === 'router' ? 'ingress gateway' : 'sidecar proxy'} (configured by pilot over xDS)

Usage:
  ${command} --xds-address HOST:PORT [options]

Identity (sent to pilot as the node id ${kind}~<ip>~<pod>.<ns>~<ns>.svc.<domain> and metadata):
  --xds-address HOST:PORT  pilot (env PILOT_ADDRESS; default 127.0.0.1:15010, with --xds-tls the --ca-address)
  --xds-tls                xDS over TLS to weftd's authenticating port (15012), as Istio's agent: the
                           server is verified against --ca-root-cert (named --ca-server-name if given);
                           the proxy authenticates with its workload certificate (a rotated one from the
                           next reconnect on), or its --ca-token-file until it has one. weftd refuses
                           a node whose namespace or service account is not the identity's. Needs --ca-address
  --type sidecar|router    proxy type (default: ${kind})
  --node-id ID             the whole node id (instead of --ip/--pod/--namespace)
  --ip IP                  workload address (env INSTANCE_IP; default 127.0.0.1)
  --pod NAME               pod name (env POD_NAME; default: the host name)
  --namespace NS           namespace (env POD_NAMESPACE; default: default)
  --labels k=v,...         workload labels (env ISTIO_META_LABELS as k=v,...)
  --labels-file FILE       workload labels from a Kubernetes downward-API file (key="value" lines; the
                           injector mounts the pod's at /etc/istio/pod/labels)
  --service-account SA     service account (env SERVICE_ACCOUNT)
  --workload-name NAME     workload name (env ISTIO_META_WORKLOAD_NAME; default: app label or pod)
  --cluster-id ID          cluster (env ISTIO_META_CLUSTER_ID; default Kubernetes)
  --domain-suffix SUFFIX   cluster DNS suffix (default cluster.local)
  (any ISTIO_META_<KEY> environment variable is sent as metadata <KEY>)

Traffic:
  --mode local|capture     local (default): explicit listeners on the workload's address, no root;
                           capture: iptables (weft-iptables) redirects traffic to 15001/15006
  --bind-address ADDR      where listeners bind (local mode default: --ip; gateways: the listener's)
  --outbound-port PORT     outbound capture port / local HTTP proxy port (default 15001)
  --inbound-port PORT      inbound capture port (default 15006)
  --app-address ADDR       local mode: the application's address (default 127.0.0.1)
  --app-ports P=A,...      local mode: the application listens on A for service target port P
  --credential-dir DIR     gateway TLS credentials: DIR/<name>.crt + .key or DIR/<name>/tls.crt + tls.key,
                           served as credentialName <name>

Mesh identity (mTLS; without --ca-address the proxy has no certificate):
  --ca-address HOST:PORT   the mesh CA, weftd's TLS port (env CA_ADDR; e.g. 127.0.0.1:15012)
  --ca-root-cert FILE      trust bundle: verifies the CA and peers (weftd --ca-dir's root-cert.pem)
  --ca-token-file FILE     bootstrap token for the first certificate (\`weftctl bootstrap-token\`;
                           Istio's istio-token); renewals authenticate with the current certificate
  --ca-server-name NAME    the CA's (and, with --xds-tls, pilot's) TLS name when HOST is not in its certificate
  --trust-domain DOMAIN    SPIFFE trust domain (default cluster.local); the identity is
                           spiffe://DOMAIN/ns/<namespace>/sa/<service account, default: default>
  --secret-ttl DURATION    requested certificate lifetime, e.g. 30s, 1h (env SECRET_TTL; default: the CA's, 24h);
                           the certificate is renewed at half its lifetime

Admin:
  --admin-address ADDR     admin address (default 127.0.0.1)
  --admin-port PORT        admin port (default 15000; 0 picks a free port)
  --health-address ADDR    health address (default 0.0.0.0; local mode: --bind-address)
  --health-port PORT       /healthz/ready (default 15021; 0 picks a free port; -1 none)
  --owner-uid UID          local mode: every port the proxy opens (admin, health, telemetry, listeners)
                           serves only processes running as UID (the kernel's sock_diag names the
                           peer); others are reset at connect, logged and counted (\`weftctl up\` passes its own)

Telemetry (on the health address):
  --stats-port PORT        the proxy's Prometheus metrics, /stats/prometheus (default 15090; 0 free; -1 none)
  --status-port PORT       merged proxy and application metrics, /stats/prometheus, /healthz/ready, and
                           /app-health/<container>/{readyz,livez,startupz}: the application's probes
                           (env ISTIO_KUBE_APP_PROBERS, as the injector writes it), run against --ip
                           (default 15020; 0 free; -1 none)
  --app-metrics-url URL    the application's Prometheus endpoint merged into 15020 (default: from
                           ISTIO_PROMETHEUS_ANNOTATIONS, or prometheus.io/port and /path in ISTIO_META_ANNOTATIONS)
  --warming-timeout-ms MS  use a listener or cluster after this long without its routes/endpoints (default 15000)
  --drain-ms MS            on SIGTERM, keep serving this long while draining (Istio's terminationDrainDuration;
                           default 5000): every listener keeps accepting, connections are asked to close
                           (HTTP/1 connection: close, HTTP/2 GOAWAY; a sidecar's inbound only), then it stops
  --exit-on-zero-active-connections
                           stop draining early once --min-drain-ms has passed and no connection is left
                           (env EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true; the default in local mode)
  --min-drain-ms MS        the shortest drain with it (env MINIMUM_DRAIN_DURATION, e.g. 5s; default 5000)
  --xds-max-backoff-ms MS  longest wait between attempts to reach pilot again (default 5000; jittered)
  --log-level LEVEL        debug, info (default), warn or error
  -h, --help               this text

Logs are JSON lines on stderr. SIGTERM and SIGINT drain and stop (buffered spans are exported first).
OTEL_BSP_SCHEDULE_DELAY (ms, default 5000): how often spans are exported when pilot configures tracing.`;
}

function port(name: string, value: string | undefined, allowNegative = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n > 65535 || n < (allowNegative ? -1 : 0)) throw new UsageError(`--${name} must be a port number (0-65535${allowNegative ? ', or -1' : ''}), not ${JSON.stringify(value)}`);
  return n;
}

function ms(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number of milliseconds, not ${JSON.stringify(value)}`);
  return n;
}

/** A Go-style duration (`90s`, `1h30m`, `500ms`) or plain seconds, in seconds. */
export function durationSeconds(name: string, value: string): number {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds < 0) throw new UsageError(`--${name} must be a duration such as 30s, 10m or 24h, not ${JSON.stringify(value)}`);
  return seconds;
}

function caOptions(v: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): ProxyCaOptions | undefined {
  const str = (k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const address = str('ca-address') ?? env.CA_ADDR;
  const dependent = ['ca-root-cert', 'ca-token-file', 'ca-server-name', 'secret-ttl'].filter((k) => str(k) !== undefined);
  if (!address) {
    if (dependent.length > 0) throw new UsageError(`--${dependent[0]} needs --ca-address`);
    return undefined;
  }
  if (!/^(\[[^\]]+\]|[^\s:]+):\d{1,5}$/.test(address)) throw new UsageError(`--ca-address ${JSON.stringify(address)} is not HOST:PORT`);
  const rootCertFile = str('ca-root-cert');
  if (!rootCertFile) throw new UsageError('--ca-address needs --ca-root-cert (the trust bundle that verifies the CA)');
  const o: ProxyCaOptions = { address, rootCertFile };
  const token = str('ca-token-file');
  if (!token) throw new UsageError('--ca-address needs --ca-token-file (the bootstrap token for the first certificate)');
  o.tokenFile = token;
  const serverName = str('ca-server-name');
  if (serverName) o.serverName = serverName;
  const td = str('trust-domain');
  if (td) o.trustDomain = td;
  const ttl = str('secret-ttl') ?? env.SECRET_TTL;
  if (ttl !== undefined) {
    const seconds = durationSeconds('secret-ttl', ttl);
    if (seconds < 1) throw new UsageError(`--secret-ttl must be at least 1s, not ${JSON.stringify(ttl)}`);
    o.ttlSeconds = Math.ceil(seconds);
  }
  return o;
}

function portMap(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const m = /^(\d+)=(\d+)$/.exec(p);
    if (!m) throw new UsageError(`--app-ports entry ${JSON.stringify(p)} is not PORT=APPPORT`);
    out.set(port('app-ports', m[1])!, port('app-ports', m[2])!);
  }
  return out;
}

const options = {
  'xds-address': { type: 'string' },
  'xds-tls': { type: 'boolean' },
  type: { type: 'string' },
  'node-id': { type: 'string' },
  ip: { type: 'string' },
  pod: { type: 'string' },
  namespace: { type: 'string' },
  labels: { type: 'string' },
  'labels-file': { type: 'string' },
  'service-account': { type: 'string' },
  'workload-name': { type: 'string' },
  'cluster-id': { type: 'string' },
  'domain-suffix': { type: 'string' },
  mode: { type: 'string' },
  'bind-address': { type: 'string' },
  'outbound-port': { type: 'string' },
  'inbound-port': { type: 'string' },
  'app-address': { type: 'string' },
  'app-ports': { type: 'string' },
  'credential-dir': { type: 'string' },
  'ca-address': { type: 'string' },
  'ca-root-cert': { type: 'string' },
  'ca-token-file': { type: 'string' },
  'ca-server-name': { type: 'string' },
  'trust-domain': { type: 'string' },
  'secret-ttl': { type: 'string' },
  'admin-address': { type: 'string' },
  'admin-port': { type: 'string' },
  'health-address': { type: 'string' },
  'health-port': { type: 'string' },
  'stats-port': { type: 'string' },
  'status-port': { type: 'string' },
  'app-metrics-url': { type: 'string' },
  'warming-timeout-ms': { type: 'string' },
  'drain-ms': { type: 'string' },
  'exit-on-zero-active-connections': { type: 'boolean' },
  'min-drain-ms': { type: 'string' },
  'xds-max-backoff-ms': { type: 'string' },
  'log-level': { type: 'string' },
  'owner-uid': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A downward-API labels file: `key="value"` per line, the value quoted as Go's %q does. */
export function parseDownwardApiLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^([^=]+)=(".*")$/.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not key="value"`);
    let value: unknown;
    try {
      value = JSON.parse(m[2]!);
    } catch {
      throw new Error(`line ${i + 1}: the value is not a quoted string`);
    }
    out[m[1]!] = String(value);
  }
  return out;
}

/** Flags and environment to proxy options (without the cluster manager); throws `UsageError`. */
/**
 * `--health-port -1` as `--health-port=-1`: Node's parser takes a value that starts with `-` for
 * a flag of its own and refuses it; negative numbers are the only such values these flags take.
 */
function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && next !== undefined && /^-\d+$/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function parseProxyFlags(argv: readonly string[], env: NodeJS.ProcessEnv, defaultKind: ProxyKind): ProxyOptions | 'help' {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: joinNegativeValues(argv), options, allowPositionals: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);

  const typeFlag = v.type ?? defaultKind;
  if (typeFlag !== 'sidecar' && typeFlag !== 'router') throw new UsageError(`--type must be sidecar or router, not ${JSON.stringify(typeFlag)}`);
  let type: ProxyKind = typeFlag;
  let ip = v.ip ?? env.INSTANCE_IP ?? '127.0.0.1';
  let pod = v.pod ?? env.POD_NAME ?? hostname();
  let namespace = v.namespace ?? env.POD_NAMESPACE ?? 'default';
  let domainSuffix = v['domain-suffix'] ?? 'cluster.local';
  if (v['node-id']) {
    let id: NodeId;
    try {
      id = parseNodeId(v['node-id'], { requireIp: false });
    } catch (e) {
      throw new UsageError(`--node-id: ${(e as Error).message}`);
    }
    type = id.type;
    ip = id.ipAddress;
    namespace = id.namespace;
    domainSuffix = id.domainSuffix ?? domainSuffix;
    pod = id.podName;
  }
  const mode = v.mode ?? 'local';
  if (mode !== 'local' && mode !== 'capture') throw new UsageError(`--mode must be local or capture, not ${JSON.stringify(mode)}`);
  const level = v['log-level'];
  if (level !== undefined && !['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level must be debug, info, warn or error, not ${JSON.stringify(level)}`);

  let labels: Record<string, string> = {};
  try {
    const text = v.labels ?? env.ISTIO_META_LABELS;
    if (text) labels = text.trim().startsWith('{') ? (JSON.parse(text) as Record<string, string>) : parseLabels(text);
  } catch (e) {
    throw new UsageError(`--labels: ${(e as Error).message}`);
  }
  if (v['labels-file'] !== undefined) {
    if (v.labels !== undefined) throw new UsageError('--labels and --labels-file: give one');
    let text: string;
    try {
      text = readFileSync(v['labels-file'], 'utf8');
    } catch (e) {
      throw new UsageError(`--labels-file ${v['labels-file']}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    try {
      labels = { ...labels, ...parseDownwardApiLabels(text) };
    } catch (e) {
      throw new UsageError(`--labels-file ${v['labels-file']}: ${(e as Error).message}`);
    }
  }
  // Istio's agent sends every ISTIO_META_* variable as node metadata.
  const metadata: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(env)) {
    if (!k.startsWith('ISTIO_META_') || val === undefined) continue;
    const key = k.slice('ISTIO_META_'.length);
    if (key === 'LABELS' || key === 'WORKLOAD_NAME' || key === 'CLUSTER_ID') continue;
    metadata[key] = val;
  }
  if (mode === 'local') metadata.INTERCEPTION_MODE = 'NONE';

  const serviceAccount = v['service-account'] ?? env.SERVICE_ACCOUNT;
  const workloadName = v['workload-name'] ?? env.ISTIO_META_WORKLOAD_NAME;
  const clusterId = v['cluster-id'] ?? env.ISTIO_META_CLUSTER_ID;
  const ca = caOptions(v, env);
  if (v['xds-tls'] && !ca) throw new UsageError('--xds-tls needs --ca-address, --ca-root-cert and --ca-token-file (the root verifies pilot; the certificate or token authenticates the proxy)');
  const o: ProxyOptions = {
    xdsAddress: v['xds-address'] ?? env.PILOT_ADDRESS ?? (v['xds-tls'] && ca ? ca.address : '127.0.0.1:15010'),
    node: {
      type,
      ip,
      pod,
      namespace,
      domainSuffix,
      labels,
      ...(serviceAccount ? { serviceAccount } : {}),
      ...(workloadName ? { workloadName } : {}),
      ...(clusterId ? { clusterId } : {}),
      metadata,
    },
    mode,
  };
  const bind = v['bind-address'] ?? (mode === 'local' ? ip : undefined);
  if (bind) o.bindAddress = bind;
  const outbound = port('outbound-port', v['outbound-port']);
  if (outbound !== undefined) o.outboundPort = outbound;
  const inbound = port('inbound-port', v['inbound-port']);
  if (inbound !== undefined) o.inboundPort = inbound;
  if (v['app-address']) o.appAddress = v['app-address'];
  if (v['app-ports']) o.appPorts = portMap(v['app-ports']);
  if (v['credential-dir']) o.credentialDir = v['credential-dir'];
  if (ca) o.ca = ca;
  if (v['xds-tls']) o.xdsTls = true;
  if (v['admin-address']) o.adminHost = v['admin-address'];
  const admin = port('admin-port', v['admin-port']);
  if (admin !== undefined) o.adminPort = admin;
  const healthHost = v['health-address'] ?? (mode === 'local' ? bind : undefined);
  if (healthHost) o.healthHost = healthHost;
  const health = port('health-port', v['health-port'], true);
  if (health !== undefined) o.healthPort = health;
  o.statsPort = port('stats-port', v['stats-port'], true) ?? 15090;
  o.statusPort = port('status-port', v['status-port'], true) ?? 15020;
  try {
    const app = appMetricsUrl({
      url: v['app-metrics-url'],
      prometheusAnnotations: env.ISTIO_PROMETHEUS_ANNOTATIONS,
      annotations: metadata.ANNOTATIONS,
      appAddress: o.appAddress,
      appPorts: o.appPorts,
    });
    if (app) o.appMetricsUrl = app;
  } catch (e) {
    if (e instanceof AppMetricsError) throw new UsageError(e.message);
    throw e;
  }
  if (env.ISTIO_KUBE_APP_PROBERS) {
    try {
      o.appProbers = parseAppProbers(env.ISTIO_KUBE_APP_PROBERS);
    } catch (e) {
      if (e instanceof AppProbersError) throw new UsageError(e.message);
      throw e;
    }
  }
  const warming = ms('warming-timeout-ms', v['warming-timeout-ms']);
  if (warming !== undefined) o.warmingTimeoutMs = warming;
  const drain = ms('drain-ms', v['drain-ms']);
  if (drain !== undefined) o.drainMs = drain;
  const exitOnZero = env.EXIT_ON_ZERO_ACTIVE_CONNECTIONS;
  if (v['exit-on-zero-active-connections']) o.exitOnZeroActiveConnections = true;
  else if (exitOnZero !== undefined && exitOnZero !== '') {
    // Go's strconv.ParseBool, as Istio's agent reads it.
    const b = ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(exitOnZero) ? true : ['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(exitOnZero) ? false : undefined;
    if (b === undefined) throw new UsageError(`EXIT_ON_ZERO_ACTIVE_CONNECTIONS must be true or false, not ${JSON.stringify(exitOnZero)}`);
    o.exitOnZeroActiveConnections = b;
  }
  const minDrain = ms('min-drain-ms', v['min-drain-ms']);
  if (minDrain !== undefined) o.minDrainMs = minDrain;
  else if (env.MINIMUM_DRAIN_DURATION) {
    const seconds = parseDuration(env.MINIMUM_DRAIN_DURATION);
    if (seconds === undefined || seconds < 0) throw new UsageError(`MINIMUM_DRAIN_DURATION must be a duration such as 5s or 500ms, not ${JSON.stringify(env.MINIMUM_DRAIN_DURATION)}`);
    o.minDrainMs = seconds * 1000;
  }
  const backoff = ms('xds-max-backoff-ms', v['xds-max-backoff-ms']);
  if (backoff !== undefined) {
    if (backoff < 1) throw new UsageError('--xds-max-backoff-ms must be at least 1');
    o.maxBackoffMs = backoff;
  }
  if (level) o.logLevel = level as LogLevel;
  const owner = v['owner-uid'];
  if (owner !== undefined) {
    const uid = Number(owner);
    if (!/^\d+$/.test(owner) || uid > 0xfffffffe) throw new UsageError(`--owner-uid must be a user id (0-4294967294), not ${JSON.stringify(owner)}`);
    // Capture mode isolates pods by network namespace, and the proxy runs as another UID (1337) than its app.
    if (mode !== 'local') throw new UsageError('--owner-uid is for local mode (--mode local)');
    o.ownerUid = uid;
  }
  return o;
}

/** Runs a proxy until SIGTERM or SIGINT; resolves to the exit status. */
export async function runProxyCommand(
  command: string,
  argv: readonly string[],
  defaultKind: ProxyKind,
  start: (o: ProxyOptions) => Promise<{ close(): Promise<void> }>,
): Promise<number> {
  let o: ProxyOptions | 'help';
  try {
    o = parseProxyFlags(argv, process.env, defaultKind);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${command}: ${e.message}\nRun '${command} --help' for usage.\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(`${proxyUsage(command, defaultKind)}\n`);
    return 0;
  }
  const line = (level: string, msg: string, fields: Record<string, unknown> = {}) =>
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, scope: command, msg, ...fields })}\n`);
  let stopRequested: ((reason: string) => void) | undefined;
  let pending: string | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) stopRequested(signal);
    else pending ??= signal;
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let proxy: { close(): Promise<void> };
  const options = o;
  try {
    proxy = await start({ ...options, onQuit: () => stopRequested?.('quitquitquit') });
  } catch (e) {
    line('error', 'failed to start', { error: (e as Error).message });
    return 1;
  }
  return new Promise<number>((resolve) => {
    stopRequested = (reason) => {
      stopRequested = () => {};
      line('info', 'shutting down', { reason });
      setTimeout(() => resolve(1), (options.drainMs ?? 5000) + 10_000).unref();
      proxy.close().then(
        () => resolve(0),
        (err: unknown) => {
          line('error', 'shutdown failed', { error: (err as Error).message });
          resolve(1);
        },
      );
    };
    if (pending) stopRequested(pending);
  });
}
