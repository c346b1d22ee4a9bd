// Telemetry of one running proxy: the filters (Istio's metrics with metadata exchange, access logs)
// registered in the proxy's filter registry, and the two scrape ports Istio's pods have:
// 15090 `/stats/prometheus` (the proxy's own metrics: istio_* and Envoy-style envoy_*), and
// 15020 `/stats/prometheus` (pilot-agent's merged endpoint: the proxy's metrics, the agent's
// `istio_agent_*` and the application's, fetched from its Prometheus port) with `/healthz/ready`.
// prom-client is loaded on the first scrape, so a proxy nobody scrapes does not pay for it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, silentLogger } from '@weft/model';
import type { Counter, Registry } from 'prom-client';
import type { FilterRegistry } from '../core/filters.ts';
import type { XdsSnapshot } from '../core/types.ts';
import type { NodeIdentity } from '../xds/node.ts';
import { AccessLogSinks, httpAccessLogFactory, tcpAccessLogFactory } from './access-log.ts';
import { type AppProber, runAppProbe } from './app-probe.ts';
import { envoyStatsText } from './envoy-stats.ts';
import { ProxyTelemetry } from './istio-stats.ts';

export interface TelemetryOptions {
  node: NodeIdentity;
  snapshot: () => XdsSnapshot | undefined;
  /** Access log flush interval (default 250 ms). */
  accessLogFlushMs?: number;
  tcpReportIntervalMs?: number;
}

export interface TelemetryServerOptions {
  /** Where 15090 and 15020 bind (the workload address in local mode, else 0.0.0.0). */
  host: string;
  /** 15090; 0 picks a free port; undefined or -1: not served. */
  statsPort?: number | undefined;
  /** 15020; 0 picks a free port; undefined or -1: not served. */
  statusPort?: number | undefined;
  /** The application's Prometheus endpoint, merged into 15020's output. */
  appMetricsUrl?: string | undefined;
  /** /healthz/ready on 15020. */
  ready: () => boolean;
  /** POST /drain on 15020 (pilot-agent's, a native sidecar's preStop hook), from the pod's loopback only. */
  drain?: () => void;
  /** The application's probes by `/app-health/...` path (ISTIO_KUBE_APP_PROBERS), served on 15020. */
  appProbers?: ReadonlyMap<string, AppProber> | undefined;
  /** Where the probes reach the application (the pod's IP, as the kubelet's would). */
  appProbeAddress?: string | undefined;
  /** The admin /stats values, exported as envoy_* metrics. */
  envoyStats?: () => Iterable<readonly [string, number]>;
  appScrapeTimeoutMs?: number;
  logger?: Logger;
  /** Called with each server (`stats`, `status`) before it listens: local mode's owner-only check (@weft/guard). */
  protect?: ((server: Server, port: string) => void) | undefined;
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Strips OpenMetrics' `# EOF` and ends the text with a newline, so texts concatenate. */
function asExpositionPart(text: string): string {
  let t = text.replace(/^# EOF\s*$/m, '');
  if (t && !t.endsWith('\n')) t += '\n';
  return t;
}

export class TelemetryRuntime {
  readonly telemetry: ProxyTelemetry;
  readonly accessLogs: AccessLogSinks;
  #registry: Promise<Registry> | undefined;
  #agent: Promise<{ registry: Registry; scrapes: Counter; failures: Counter }> | undefined;
  #servers: Server[] = [];
  statsPort: number | undefined;
  statusPort: number | undefined;

  constructor(o: TelemetryOptions) {
    this.telemetry = new ProxyTelemetry({ node: o.node, snapshot: o.snapshot, ...(o.tcpReportIntervalMs !== undefined ? { tcpReportIntervalMs: o.tcpReportIntervalMs } : {}) });
    this.accessLogs = new AccessLogSinks(o.accessLogFlushMs);
  }

  /** Registers the telemetry filters: access logs first (they see the request as the app did), then istio.stats. */
  register(registry: FilterRegistry): void {
    registry.registerConnectionManager(httpAccessLogFactory(this.accessLogs));
    registry.registerConnectionManager(this.telemetry.httpFilterFactory);
    registry.registerTcpChain(tcpAccessLogFactory(this.accessLogs));
    registry.registerTcpChain(this.telemetry.tcpFilterFactory);
  }

  async #istioRegistry(): Promise<Registry> {
    this.#registry ??= import('prom-client').then((prom) => {
      const r = new prom.Registry();
      this.telemetry.metrics.register(r);
      return r;
    });
    return this.#registry;
  }

  async #agentRegistry() {
    this.#agent ??= import('prom-client').then((prom) => {
      const registry = new prom.Registry();
      const scrapes = new prom.Counter({ name: 'istio_agent_scrapes_total', help: 'The total number of scrapes.', registers: [registry] });
      const failures = new prom.Counter({ name: 'istio_agent_scrape_failures_total', help: 'The total number of failed scrapes.', registers: [registry] });
      return { registry, scrapes, failures };
    });
    return this.#agent;
  }

  /** What 15090 serves: istio_* metrics, then the Envoy-style stats. */
  async proxyMetricsText(envoyStats?: () => Iterable<readonly [string, number]>): Promise<string> {
    const istio = await (await this.#istioRegistry()).metrics();
    return asExpositionPart(istio) + (envoyStats ? envoyStatsText(envoyStats()) : '');
  }

  /** What 15020 serves: the proxy's metrics, the application's (when configured and reachable), the agent's. */
  async mergedMetricsText(o: Pick<TelemetryServerOptions, 'appMetricsUrl' | 'envoyStats' | 'appScrapeTimeoutMs' | 'logger'>): Promise<string> {
    const agent = await this.#agentRegistry();
    agent.scrapes.inc();
    let text = await this.proxyMetricsText(o.envoyStats);
    if (o.appMetricsUrl) {
      try {
        const res = await fetch(o.appMetricsUrl, { signal: AbortSignal.timeout(o.appScrapeTimeoutMs ?? 5000), headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' } });
        const body = await res.text();
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        text += asExpositionPart(body);
      } catch (err) {
        agent.failures.inc();
        (o.logger ?? silentLogger).warn('cannot scrape the application metrics', { url: o.appMetricsUrl, error: err });
      }
    }
    return text + asExpositionPart(await agent.registry.metrics());
  }

  /** Serves 15090 and 15020 as configured. */
  async listen(o: TelemetryServerOptions): Promise<void> {
    const log = o.logger ?? silentLogger;
    const serve = (handler: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> | void) =>
      createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0]!;
        Promise.resolve(handler(req, res, path)).catch((err: unknown) => {
          log.error('metrics request failed', { path, error: err });
          if (!res.headersSent) {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(`${(err as Error).message}\n`);
          } else res.destroy();
        });
      });
    const text = (res: ServerResponse, status: number, body: string, type = 'text/plain') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    try {
      if (o.statsPort !== undefined && o.statsPort >= 0) {
        const s = serve(async (_req, res, path) => {
          if (path === '/stats/prometheus' || path === '/metrics') return text(res, 200, await this.proxyMetricsText(o.envoyStats), prometheusContentType);
          text(res, 404, 'try /stats/prometheus\n');
        });
        this.#servers.push(s);
        o.protect?.(s, 'stats');
        this.statsPort = await listen(s, o.host, o.statsPort);
      }
      if (o.statusPort !== undefined && o.statusPort >= 0) {
        const s = serve(async (req, res, path) => {
          if (path === '/stats/prometheus' || path === '/metrics') return text(res, 200, await this.mergedMetricsText(o), prometheusContentType);
          if (path === '/healthz/ready') return o.ready() ? text(res, 200, '') : text(res, 503, 'not ready\n');
          if (path === '/drain' && o.drain) {
            // As pilot-agent: only the pod itself may start the drain (the port is open to the pod network).
            if (!isLoopback(req.socket.remoteAddress)) return text(res, 403, 'Only requests from localhost are allowed\n');
            if (req.method !== 'POST') return text(res, 405, 'Method Not Allowed\n');
            o.drain();
            return text(res, 200, 'OK');
          }
          if (path.startsWith('/app-health/')) {
            const prober = o.appProbers?.get(path);
            if (!prober) return text(res, 400, `no application probe is configured for ${path}\n`);
            const r = await runAppProbe(prober, o.appProbeAddress ?? '127.0.0.1', req.headers.host);
            if (r.status >= 400) log.debug('application probe failed', { path, status: r.status, body: r.body.slice(0, 200) });
            return text(res, r.status, r.body);
          }
          text(res, 404, 'try /stats/prometheus, /healthz/ready or /app-health/<container>/{readyz,livez,startupz}\n');
        });
        this.#servers.push(s);
        o.protect?.(s, 'status');
        this.statusPort = await listen(s, o.host, o.statusPort);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.telemetry.close();
    this.accessLogs.flushAll();
    const servers = this.#servers;
    this.#servers = [];
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  }
}
