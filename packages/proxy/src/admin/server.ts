// The admin port (127.0.0.1:15000 by default: loopback only, as Envoy's) and the health port
// (15021, `/healthz/ready`, for probes).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, silentLogger } from '@weft/model';
import type { EndpointStatus } from '../core/types.ts';
import { configDump, type DumpSource } from './config-dump.ts';
import { compileStatsFilter, type Stats } from './stats.ts';
import { explainRequest, parseWhyQuery, type WhySource } from './why.ts';

export interface AdminSource extends DumpSource {
  /** Initial configuration applied and listeners bound. */
  ready(): boolean;
  clusterStatus(): ReadonlyMap<string, readonly EndpointStatus[]>;
  listeners(): readonly { name: string; address: string; port: number; listening: boolean; activeConnections: number; totalConnections: number }[];
  stats: Stats;
  serverInfo(): Record<string, unknown>;
  /** POST /quitquitquit: shut down gracefully. */
  quit?(): void;
  /** GET /debug/why: the proxy's own routing decisions for a described request (why.ts). */
  why?: WhySource;
}

export interface AdminOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 15000; 0 picks a free port. */
  port?: number;
  /** Default 0.0.0.0 (probes come from outside the pod); local mode passes the workload address. */
  healthHost?: string;
  /** Default 15021; 0 picks a free port; -1 for none. */
  healthPort?: number;
  logger?: Logger;
  /** Called with each server (`admin`, `health`) before it listens: local mode's owner-only check (@weft/guard). */
  protect?: (server: Server, port: string) => void;
}

export interface AdminServer {
  readonly port: number;
  readonly healthPort: number | undefined;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache, max-age=0' });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(body, null, 2)}\n`);
}

/** Envoy's /clusters text: `<cluster>::<host>::<stat>::<value>` lines. */
export function clustersText(status: ReadonlyMap<string, readonly EndpointStatus[]>): string {
  const lines: string[] = [];
  for (const [name, endpoints] of [...status].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const e of endpoints) {
      const host = `${name}::${e.address}:${e.port}`;
      // `healthy` is false for ejected endpoints too; EDS health is what is left of it.
      const flags = [!e.healthy && !e.ejected ? '/failed_eds_health' : '', e.ejected ? '/failed_outlier_check' : ''].join('');
      lines.push(`${host}::rq_active::${e.activeRequests}`);
      lines.push(`${host}::rq_total::${e.totalRequests}`);
      lines.push(`${host}::rq_error::${e.failures}`);
      lines.push(`${host}::weight::${e.weight}`);
      lines.push(`${host}::health_flags::${flags || 'healthy'}`);
      // Envoy's: region, zone and sub_zone lines, then the priority level.
      if (e.locality) {
        const [region = '', zone = '', subZone = ''] = e.locality.split('/');
        lines.push(`${host}::region::${region}`, `${host}::zone::${zone}`, `${host}::sub_zone::${subZone}`);
      }
      lines.push(`${host}::priority::${e.priority ?? 0}`);
    }
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** Whether a Host header names an IP address or localhost (with any port), or is absent (HTTP/1.0). */
export function addressedDirectly(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return name === 'localhost' || /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || /^\[[0-9a-f:.]+\]$/.test(name);
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startAdmin(src: AdminSource, options: AdminOptions = {}): Promise<AdminServer> {
  const log = options.logger ?? silentLogger;
  const handle = (req: IncomingMessage, res: ServerResponse): void | Promise<void> => {
    // DNS rebinding: a web page in the owner's browser (which runs as the owner, so the owner-only
    // check lets it in) can point a name of its own at this address and read the admin pages as
    // same-origin. Its requests then carry that name as Host; every real client of a loopback-only
    // port names it by address or as localhost.
    if (!addressedDirectly(req.headers.host)) return send(res, 421, 'text/plain', 'the admin port answers only requests addressed to an IP address or localhost\n');
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const format = url.searchParams.get('format');
    switch (path) {
      case '/ready':
        return src.ready() ? send(res, 200, 'text/plain', 'LIVE\n') : send(res, 503, 'text/plain', 'PRE_INITIALIZING\n');
      case '/config_dump':
        return json(res, 200, configDump(src));
      case '/clusters': {
        const status = src.clusterStatus();
        if (format === 'json') {
          return json(res, 200, {
            cluster_statuses: [...status].map(([name, endpoints]) => ({ name, host_statuses: endpoints })),
          });
        }
        return send(res, 200, 'text/plain', clustersText(status));
      }
      case '/listeners':
        return json(res, 200, src.listeners());
      case '/stats': {
        const filterText = url.searchParams.get('filter');
        if (!filterText) {
          const entries = src.stats.entries();
          if (format === 'json') return json(res, 200, { stats: entries.map(([name, value]) => ({ name, value })) });
          return send(res, 200, 'text/plain', src.stats.text(entries));
        }
        const compiled = compileStatsFilter(filterText);
        if ('error' in compiled) return send(res, 400, 'text/plain', `invalid filter ${JSON.stringify(filterText)}: ${compiled.error}\n`);
        return src.stats.entriesMatching(compiled.filter).then((entries) => {
          if (format === 'json') return json(res, 200, { stats: entries.map(([name, value]) => ({ name, value })) });
          send(res, 200, 'text/plain', src.stats.text(entries));
        });
      }
      case '/server_info':
        return json(res, 200, src.serverInfo());
      case '/debug/why': {
        if (!src.why) return send(res, 404, 'text/plain', 'this proxy does not answer /debug/why\n');
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'GET only\n');
        const q = parseWhyQuery(url.searchParams);
        if ('error' in q) return json(res, 400, { error: q.error });
        const answer = explainRequest(q, src.why);
        return 'error' in answer ? json(res, answer.status, { error: answer.error }) : json(res, 200, answer);
      }
      case '/quitquitquit':
        if (req.method !== 'POST') return send(res, 405, 'text/plain', 'POST only\n');
        // A web page in the owner's browser runs as the owner too, and browsers send cross-origin
        // form and no-cors POSTs without asking; they always say whose page it is (Origin), while
        // command-line and programmatic clients (curl, Node's fetch) send no Origin.
        if (req.headers.origin !== undefined) return send(res, 403, 'text/plain', 'the admin port does not take state changes from web pages\n');
        send(res, 200, 'text/plain', 'OK\n');
        src.quit?.();
        return;
      case '/':
        return json(res, 200, { endpoints: ['/clusters', '/config_dump', ...(src.why ? ['/debug/why'] : []), '/listeners', '/quitquitquit', '/ready', '/server_info', '/stats'] });
      default:
        return send(res, 404, 'text/plain', `no admin endpoint ${path}\n`);
    }
  };
  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    log.error('admin request failed', { path: req.url, error: err });
    if (!res.headersSent) send(res, 500, 'text/plain', `${(err as Error).message}\n`);
    else res.destroy();
  };
  const admin = createServer((req, res) => {
    try {
      handle(req, res)?.catch((err: unknown) => failed(req, res, err));
    } catch (err) {
      failed(req, res, err);
    }
  });
  options.protect?.(admin, 'admin');
  const port = await listen(admin, options.host ?? '127.0.0.1', options.port ?? 15000);
  let health: Server | undefined;
  let healthPort: number | undefined;
  if ((options.healthPort ?? 15021) >= 0) {
    health = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz/ready') return src.ready() ? send(res, 200, 'text/plain', '') : send(res, 503, 'text/plain', 'not ready\n');
      send(res, 404, 'text/plain', '');
    });
    options.protect?.(health, 'health');
    try {
      healthPort = await listen(health, options.healthHost ?? '0.0.0.0', options.healthPort ?? 15021);
    } catch (err) {
      admin.close();
      throw err;
    }
  }
  return {
    port,
    healthPort,
    close: async () => {
      admin.closeAllConnections();
      health?.closeAllConnections();
      await Promise.all([new Promise((r) => admin.close(r)), health ? new Promise((r) => health.close(r)) : undefined]);
    },
  };
}
