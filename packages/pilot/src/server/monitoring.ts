// The monitoring port (15014): health, Prometheus metrics and pilot's debug endpoints.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Config, type ConfigStore, keyOf, specDigest } from '@weft/model';
import { Registry } from 'prom-client';
import { describeProxy, findProxy } from './describe.ts';
import type { DiscoveryServer } from './discovery.ts';
import { createLogger, type Logger } from '@weft/model';

export interface MonitoringOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Default 15014 (Istio's monitoring port); 0 picks a free port. */
  port?: number;
  discovery?: DiscoveryServer;
  /** The accepted config, for /debug/configz. */
  store?: ConfigStore;
  /** More metric registries to serve with pilot's (citadel's, process metrics). */
  registries?: readonly Registry[];
  /** /healthz answers 503 until this returns true; default: always ready. */
  ready?: () => boolean;
  /** More JSON debug endpoints: path (`/debug/foo`) -> what to serve (given the query; throw DebugRequestError to refuse). */
  debug?: Readonly<Record<string, (query: URLSearchParams) => unknown>>;
  logger?: Logger;
  /** Called with the server (port name `monitoring`) before it listens: local mode's owner-only check (weftd --owner-uid). */
  protect?: (server: Server, port: string) => void;
}

/** A debug request that cannot be answered: the status and the reason, sent as `{error}`. */
export class DebugRequestError extends Error {
  override readonly name = 'DebugRequestError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A config as /debug/configz shows it: the object, and where it was read from. */
export function configJson(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { apiVersion: c.apiVersion, kind: c.kind, metadata: c.metadata, spec: c.spec };
  if (c.status !== undefined) out.status = c.status;
  if (c.source) out.source = { file: c.source.file, line: c.source.line, column: c.source.column };
  return out;
}

/** Digests by stored object (each stored Config is immutable but for its source). */
const digests = new WeakMap<Config, string>();

/**
 * What `weftctl apply` waits on: per object key, the file it was read from and a digest of its
 * spec (model's specDigest), with the store revision they were read at. A small fraction of
 * /debug/configz: polling configz every 100 ms while thousands of objects arrive kept weftd
 * serialising megabytes of JSON instead of reading them.
 */
export function configVersions(store: ConfigStore): { revision: number; objects: Record<string, [file: string, digest: string]> } {
  const revision = store.revision;
  const objects: Record<string, [string, string]> = {};
  for (const c of store.all()) {
    let d = digests.get(c);
    if (d === undefined) {
      d = specDigest(c.spec);
      digests.set(c, d);
    }
    objects[keyOf(c)] = [c.source?.file ?? '', d];
  }
  return { revision, objects };
}

export class MonitoringServer {
  readonly host: string;
  readonly port: number;
  readonly #server: Server;

  private constructor(server: Server, host: string, port: number) {
    this.#server = server;
    this.host = host;
    this.port = port;
  }

  static async start(options: MonitoringOptions): Promise<MonitoringServer> {
    const log = options.logger ?? createLogger({ scope: 'monitoring' });
    const registries = [...(options.discovery ? [options.discovery.metrics.registry] : []), ...(options.registries ?? [])];
    const routes = new Map<string, (query: URLSearchParams) => unknown>();
    const { discovery, store } = options;
    if (store) {
      routes.set('/debug/configz', () => store.all().map(configJson));
      routes.set('/debug/config_versions', () => configVersions(store));
    }
    if (discovery) {
      routes.set('/debug/syncz', () => discovery.syncStatus());
      routes.set('/debug/push_status', () => discovery.lastPush ?? {});
      // Istio's proxyID parameter: a node ID, or `<pod>.<namespace>`.
      routes.set('/debug/describe', (query) => {
        const id = query.get('proxyID');
        if (!id) throw new DebugRequestError(400, 'give proxyID=<node id> or proxyID=<pod>.<namespace>');
        const push = discovery.pushContext;
        if (!push) throw new DebugRequestError(503, 'no push context yet');
        const connections = discovery.connections;
        const c = findProxy(connections, id);
        if (!c) throw new DebugRequestError(404, `no connected proxy ${JSON.stringify(id)}`);
        const routers = connections.filter((x) => x.proxy.type === 'router').map((x) => x.proxy);
        return describeProxy(push, c.proxy, routers);
      });
    }
    for (const [path, fn] of Object.entries(options.debug ?? {})) routes.set(path, fn);

    const handle = async (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname.replace(/\/+$/, '') || '/';
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n');
      if (path === '/healthz' || path === '/ready') {
        const ok = options.ready?.() ?? true;
        return send(res, ok ? 200 : 503, 'text/plain', ok ? 'ok\n' : 'not ready\n');
      }
      if (path === '/metrics') {
        const merged = registries.length === 1 ? registries[0]! : Registry.merge(registries);
        return send(res, 200, merged.contentType, await merged.metrics());
      }
      if (path === '/debug') return sendJson(res, 200, { endpoints: ['/healthz', '/metrics', ...routes.keys()].sort() });
      const route = routes.get(path);
      if (!route) return sendJson(res, 404, { error: `no endpoint ${path}`, endpoints: ['/healthz', '/metrics', ...routes.keys()].sort() });
      let body: unknown;
      try {
        body = route(url.searchParams);
      } catch (e) {
        if (e instanceof DebugRequestError) return sendJson(res, e.status, { error: e.message });
        throw e;
      }
      const proxy = url.searchParams.get('proxy');
      if (proxy && path === '/debug/syncz' && Array.isArray(body)) body = body.filter((s: { id?: string }) => s.id === proxy);
      // Large machine-read answers go out compact.
      return sendJson(res, 200, body, path !== '/debug/config_versions');
    };

    const server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error('monitoring request failed', { path: req.url, error: err instanceof Error ? err.message : String(err) });
        if (!res.headersSent) sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
        else res.destroy();
      });
    });
    const host = options.host ?? '127.0.0.1';
    options.protect?.(server, 'monitoring');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 15014, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    return new MonitoringServer(server, host, port);
  }

  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, code: number, value: unknown, pretty = true): void {
  send(res, code, 'application/json', `${pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value)}\n`);
}
