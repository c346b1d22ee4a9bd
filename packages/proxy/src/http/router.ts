// One HTTP request through the proxy, as Envoy's connection manager and its filters handle it.
// This file is the pipeline: the stages in the order a request meets them, each in its own file
// with its contract at the top. Works for HTTP/1.1 (`node:http`) and HTTP/2 (`node:http2`
// compatibility API) alike, through the codec seam in codec.ts; gRPC gets trailers passed
// through and gRPC-shaped local replies.
//
//   connection-manager.ts  request line, headers for upstream, x-forwarded-*, request id
//   filter-chain.ts        filters beyond routing (authorization, telemetry)
//   route-selection.ts     virtual host, route, and the cluster (core/route-action.ts)
//   filter-chain.ts        CORS, fault
//   route-selection.ts     direct responses, redirects, NR, NC
//   upstream-attempt.ts    rewrites, timeouts, body, mirrors, attempts and retries
//                          -> UpstreamCluster.request (src/cluster: endpoint, then connection)
//   response.ts            the upstream response back to the client
//   local-reply.ts         every answer the proxy makes itself
import type { DownstreamRequest, DownstreamResponse, ReqLike, ResLike } from './codec.ts';
import { prepareRequest } from './connection-manager.ts';
import { Exchange, type HttpRequestContext } from './exchange.ts';
import { applyCors, applyFault, runRequestFilters } from './filter-chain.ts';
import { localReply } from './local-reply.ts';
import { routeTarget, selectRoute } from './route-selection.ts';
import { forward } from './upstream-attempt.ts';

/**
 * Serves one request: routes it, sends it upstream through `ctx.clusters`, streams the answer
 * back and fills `ctx.record`. Resolves when the exchange is over (response sent, failed or the
 * client went away); never rejects.
 */
export function handleHttpRequest(req: DownstreamRequest | ReqLike, res: DownstreamResponse | ResLike, ctx: HttpRequestContext): Promise<void> {
  // node:http's and node:http2's classes provide the ReqLike/ResLike surface; their typings differ in detail.
  return run(new Exchange(req as unknown as ReqLike, res as unknown as ResLike, ctx));
}

async function run(ex: Exchange): Promise<void> {
  try {
    await serve(ex);
  } catch (err) {
    // A bug, not a request outcome: answer 500 rather than leave the client hanging.
    if (!ex.gone) localReply(ex, 500, `internal proxy error: ${(err as Error).message}`, {});
  }
  await ex.finished;
  ex.clearTimers();
  ex.upstreamReq?.bodyStream?.destroy();
  const r = ex.record;
  r.durationMs = Date.now() - r.startTime;
  r.bytesReceived = ex.body?.size ?? r.bytesReceived;
  r.bytesSent = ex.bytesSent;
  if (ex.hooks) for (const h of ex.hooks) h.onComplete?.(ex.filterCtx!);
}

/** The stages in order; each that can answer the request returns false (or no cluster) once it has. */
async function serve(ex: Exchange): Promise<void> {
  prepareRequest(ex);
  let passed = runRequestFilters(ex);
  if (passed !== true && passed !== false) passed = await passed;
  if (!passed) return;
  if (!selectRoute(ex)) return;
  const route = ex.route!;
  if (!applyCors(ex)) return;
  const fault = ex.weighted?.fault ?? route.fault;
  if (fault && !(await applyFault(ex, fault))) return;
  const cluster = routeTarget(ex, route);
  if (!cluster) return;
  await forward(ex, route, route.action!, cluster);
}
