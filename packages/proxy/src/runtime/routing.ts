// The listeners' view of the router: route configurations compiled once per accepted object
// (so the check behind a NACK and the request path share the work), connection-manager settings
// read once per filter chain, and one RequestRecord per request handed to telemetry.
import type { RouteConfiguration__Output } from '@weft/xds';
import { checkRe2Patterns } from '../core/re2.ts';
import type { ClusterManager, RequestRecord, ResponseFlag } from '../core/types.ts';
import { type CompiledRoutes, compiledRoutesFor } from '../http/compile.ts';
import { compileOptionsFor, type HcmSettings, httpConnectionManagerSettings } from '../http/hcm.ts';
import type { DownstreamRequest, DownstreamResponse } from '../http/codec.ts';
import { handleHttpRequest } from '../http/router.ts';
import type { HttpChainConfig } from '../listener/chains.ts';
import type { HttpRouting, ListenerRequestContext } from '../listener/http.ts';

const settingsCache = new WeakMap<HttpChainConfig, HcmSettings>();

function settingsOf(chain: HttpChainConfig): HcmSettings {
  let s = settingsCache.get(chain);
  if (!s) {
    s = chain.bufferLimitBytes ? httpConnectionManagerSettings(chain.hcm, chain.bufferLimitBytes) : httpConnectionManagerSettings(chain.hcm);
    settingsCache.set(chain, s);
  }
  return s;
}

/** The connection manager's settings and the compiled routes a chain's requests use, as `serve` reads them (for admin/why.ts). */
export function chainRouting(chain: HttpChainConfig, rc: RouteConfiguration__Output | undefined): { settings: HcmSettings; routes: CompiledRoutes | undefined } {
  const settings = settingsOf(chain);
  return { settings, routes: rc ? compiledRoutesFor(rc, compileOptionsFor(settings)) : undefined };
}

export function createHttpRouting(clusters: ClusterManager, onRecord?: (r: RequestRecord) => void): HttpRouting {
  return {
    check(rc: RouteConfiguration__Output): void {
      // The compile names the virtual host and route of a regex it refuses; the walk finds the rest.
      compiledRoutesFor(rc);
      checkRe2Patterns(rc);
    },
    serve(req: DownstreamRequest, res: DownstreamResponse, rc: RouteConfiguration__Output | undefined, ctx: ListenerRequestContext): void {
      const settings = settingsOf(ctx.chain);
      const routes = rc ? compiledRoutesFor(rc, compileOptionsFor(settings)) : undefined;
      // Addresses as the listener read them once per connection (IPv4-mapped prefix removed); HTTP/2
      // over TLS runs on a stream without addresses of its own (listener/h2-bridge.ts).
      const c = ctx.connection;
      const record: RequestRecord = {
        direction: ctx.direction,
        listener: ctx.listener,
        protocol: req.httpVersionMajor === 2 ? 'HTTP/2' : 'HTTP/1.1',
        startTime: Date.now(),
        durationMs: 0,
        responseCode: 0,
        responseFlags: new Set<ResponseFlag>(),
        bytesReceived: 0,
        bytesSent: 0,
        attempts: 0,
      };
      if (c.remoteAddress) record.downstreamRemoteAddress = `${c.remoteAddress}:${c.remotePort}`;
      if (c.localAddress) record.downstreamLocalAddress = `${c.localAddress}:${c.localPort}`;
      if (rc) record.routeName = rc.name;
      const done = handleHttpRequest(req, res, {
        routes,
        clusters,
        record,
        sourceAddress: c.remoteAddress,
        sourcePort: c.remotePort,
        localAddress: c.localAddress || undefined,
        localPort: c.localPort,
        tls: ctx.downstreamTls,
        settings,
        originalDestination: ctx.originalDestination,
        filters: ctx.chain.filters,
        connection: c,
      });
      if (onRecord) void done.then(() => onRecord(record));
    },
  };
}
