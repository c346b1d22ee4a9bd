// The weft-dashboard command line: flags -> startDashboard, then run until SIGTERM or SIGINT.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type DashboardOptions, startDashboard } from './dashboard.ts';

export const usage = `weft-dashboard: the Weft dashboard (service graph, services, proxies, traces, why)

Usage:
  weft-dashboard --state-dir DIR [options]
  weft-dashboard --weftd-url URL [--prometheus-url URL [--prometheus-password-file FILE]] [options]

Options:
  --state-dir DIR         a local mesh's state directory: weftd, Prometheus (and its password file)
                          and the proxies' admin ports from its mesh.json, read at every poll
  --weftd-url URL         weftd's monitoring port (http://127.0.0.1:15014)
  --prometheus-url URL    Prometheus with its route prefix (http://127.0.0.1:9090/prometheus)
  --prometheus-password-file FILE   basic-auth password of the user weft for Prometheus
  --kubeconfig FILE       a cluster's kubeconfig: /api/why asks the source pod's proxy (its admin port
                          15000, on the pod's loopback) over the API server's port-forward
  --address ADDR          where both ports listen (default: 127.0.0.1)
  --port PORT             the page, the JSON API, /prometheus/, /healthz, /metrics (default: 0, a free port)
  --otlp-port PORT        the OTLP/HTTP trace receiver, POST /v1/traces (default: 0, a free port)
  --owner-uid UID         both ports serve only processes running as UID (the kernel's sock_diag
                          names each peer); others are reset at connect, logged and counted
  --interval-ms MS        how often weftd and Prometheus are polled, for all pages at once (2000-5000; default 3000)
  --max-traces N          traces kept in memory (default 500)
  --max-spans N           spans kept in memory, all traces together (default 20000)
  --max-otlp-body-bytes N OTLP request body limit (default 4194304)
  --log-level LEVEL       debug, info (default), warn or error
  -h, --help              this text

Logs are JSON lines on stderr; {"msg":"dashboard ready","port":..,"otlpPort":..,"url":..} once it serves.
SIGTERM or SIGINT stop it.`;

export class UsageError extends Error {}

function int(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`);
  return n;
}

function url(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`--${name} must be an http:// URL, not ${JSON.stringify(value)}`);
  }
  if (u.protocol !== 'http:') throw new UsageError(`--${name} must be an http:// URL, not ${JSON.stringify(value)}`);
  return value;
}

export function parseFlags(argv: readonly string[]): DashboardOptions | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
  if (!v['state-dir'] && !v['weftd-url'] && !v['prometheus-url']) throw new UsageError('say where the mesh is: --state-dir DIR (a local mesh) or --weftd-url URL (and --prometheus-url URL)');
  const level = v['log-level'];
  if (level !== undefined && level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') throw new UsageError(`--log-level must be debug, info, warn or error, not ${JSON.stringify(level)}`);
  const o: DashboardOptions = {};
  if (v['state-dir']) o.stateDir = resolve(v['state-dir']);
  const weftd = url('weftd-url', v['weftd-url']);
  if (weftd) o.weftdUrl = weftd;
  const prometheus = url('prometheus-url', v['prometheus-url']);
  if (prometheus) o.prometheusUrl = prometheus;
  if (v['prometheus-password-file']) o.prometheusPasswordFile = resolve(v['prometheus-password-file']);
  if (v.kubeconfig) o.kubeconfig = resolve(v.kubeconfig);
  if (v.address) o.address = v.address;
  const port = int('port', v.port, 0, 65535);
  if (port !== undefined) o.port = port;
  const otlpPort = int('otlp-port', v['otlp-port'], 0, 65535);
  if (otlpPort !== undefined) o.otlpPort = otlpPort;
  const owner = int('owner-uid', v['owner-uid'], 0, 0xfffffffe);
  if (owner !== undefined) o.ownerUid = owner;
  const interval = int('interval-ms', v['interval-ms'], 2000, 5000);
  if (interval !== undefined) o.intervalMs = interval;
  const maxTraces = int('max-traces', v['max-traces'], 1, 100_000);
  const maxSpans = int('max-spans', v['max-spans'], 1, 10_000_000);
  if (maxTraces !== undefined || maxSpans !== undefined) o.traces = { ...(maxTraces !== undefined ? { maxTraces } : {}), ...(maxSpans !== undefined ? { maxSpans } : {}) };
  const body = int('max-otlp-body-bytes', v['max-otlp-body-bytes'], 1024, 256 * 1024 * 1024);
  if (body !== undefined) o.maxOtlpBodyBytes = body;
  if (level) o.logLevel = level;
  return o;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'state-dir': { type: 'string' },
      'weftd-url': { type: 'string' },
      'prometheus-url': { type: 'string' },
      'prometheus-password-file': { type: 'string' },
      kubeconfig: { type: 'string' },
      address: { type: 'string' },
      port: { type: 'string' },
      'otlp-port': { type: 'string' },
      'owner-uid': { type: 'string' },
      'interval-ms': { type: 'string' },
      'max-traces': { type: 'string' },
      'max-spans': { type: 'string' },
      'max-otlp-body-bytes': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

export async function main(argv: readonly string[]): Promise<number> {
  let o: DashboardOptions | 'help';
  try {
    o = parseFlags(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`weft-dashboard: ${e.message}\n\n${usage}\n`);
      return 2;
    }
    throw e;
  }
  if (o === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  try {
    dashboard = await startDashboard(o);
  } catch (e) {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', scope: 'dashboard', msg: 'dashboard failed to start', error: (e as Error).message })}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((r) => {
    process.once('SIGTERM', () => r('SIGTERM'));
    process.once('SIGINT', () => r('SIGINT'));
  });
  await dashboard.close();
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', scope: 'dashboard', msg: 'dashboard stopped', signal })}\n`);
  return 0;
}
