// The filter chain around routing, in pilot's order. Before routing: the chain's filters beyond
// routing (authorization, telemetry; core/filters.ts), whose first local reply answers the
// request. After routing, on the route (or weighted cluster) chosen: CORS (preflights answered
// here, response headers remembered for the response) and fault (delay, then abort).
//
// Contract: each function returns false once it has answered the request; `applyFault` is
// awaited only when the route has a fault, so requests without one take no extra promise.
import type { OutgoingHttpHeaders } from 'node:http';
import type { DownstreamConnection, DynamicMetadata, FilterHeaders, FilterLocalReply, HttpFilterContext, HttpStreamHooks } from '../core/filters.ts';
import { beginHttpFilters } from '../core/filters.ts';
import type { RequestRecord } from '../core/types.ts';
import type { Exchange } from './exchange.ts';
import { type CompiledCors, type CompiledFault, corsOriginAllowed, faultAbort, faultDelay } from './filters.ts';
import { finalizeDownstreamHeaders, LocalReplyBody, localReply } from './local-reply.ts';
import { sampled } from './matchers.ts';

/**
 * Filters before routing: each filter's hooks begin, and the first local reply answers the request.
 * Synchronous unless a filter answers with a promise (JWT verification); then the rest wait for it.
 */
export function runRequestFilters(ex: Exchange): boolean | Promise<boolean> {
  const filters = ex.ctx.filters;
  if (!filters || filters.length === 0 || !ex.ctx.connection) return true;
  const fctx = new FilterContextView(ex, ex.ctx.connection);
  ex.filterCtx = fctx;
  ex.hooks = beginHttpFilters(filters, fctx);
  const hooks = ex.hooks;
  if (!hooks) return true;
  for (let i = 0; i < hooks.length; i++) {
    const reply = hooks[i]!.onRequest?.(fctx);
    if (reply === undefined) continue;
    if (reply instanceof Promise) return continueFilters(ex, fctx, hooks, i, reply);
    return answer(ex, reply);
  }
  return true;
}

async function continueFilters(ex: Exchange, fctx: HttpFilterContext, hooks: readonly HttpStreamHooks[], i: number, pending: Promise<FilterLocalReply | undefined>): Promise<boolean> {
  let reply = await pending;
  for (;;) {
    if (ex.gone) return false;
    if (reply) return answer(ex, reply);
    if (++i >= hooks.length) return true;
    reply = await hooks[i]!.onRequest?.(fctx);
  }
}

function answer(ex: Exchange, reply: FilterLocalReply): false {
  if (reply.flag) ex.flags.add(reply.flag);
  if (reply.details) ex.record.responseCodeDetails = reply.details;
  ex.drainRequest();
  localReply(ex, reply.status, reply.body, reply.headers ? { headers: reply.headers } : {});
  return false;
}

/** CORS (Envoy's cors filter) with the route's (or weighted cluster's) policy. */
export function applyCors(ex: Exchange): boolean {
  const cors = ex.weighted?.cors ?? ex.route?.cors;
  if (!cors || !sampled(cors.enabled, ex.random)) return true;
  const view = ex.view;
  const origin = view.header('origin');
  if (!origin) return true;
  const isPreflight = view.method === 'OPTIONS' && !!view.header('access-control-request-method');
  if (!corsOriginAllowed(cors, origin)) {
    if (!cors.forwardNotMatchingPreflights && isPreflight) {
      ex.drainRequest();
      localReply(ex, 200, '', {});
      return false;
    }
    return true;
  }
  ex.cors = cors;
  ex.corsOrigin = origin;
  if (isPreflight) {
    ex.drainRequest();
    preflight(ex, cors, origin);
    return false;
  }
  return true;
}

/** The fault filter: delay, then abort (decided after the delay, as Envoy does). */
export async function applyFault(ex: Exchange, fault: CompiledFault): Promise<boolean> {
  const delay = faultDelay(fault, ex.view, ex.upstreamCluster, ex.random);
  if (delay !== undefined) {
    ex.flags.add('DI');
    await ex.sleep(delay);
    if (ex.gone) return false;
  }
  const abort = faultAbort(fault, ex.view, ex.upstreamCluster, ex.random);
  if (abort) {
    ex.flags.add('FI');
    ex.drainRequest();
    localReply(ex, abort.status, LocalReplyBody.faultAbort, { grpcStatus: abort.grpcStatus });
    return false;
  }
  return true;
}

function preflight(ex: Exchange, cors: CompiledCors, origin: string): void {
  const out: OutgoingHttpHeaders = { 'access-control-allow-origin': origin };
  if (cors.allowCredentials) out['access-control-allow-credentials'] = 'true';
  if (cors.allowMethods) out['access-control-allow-methods'] = cors.allowMethods;
  if (cors.allowHeaders) out['access-control-allow-headers'] = cors.allowHeaders;
  if (cors.maxAge) out['access-control-max-age'] = cors.maxAge;
  finalizeDownstreamHeaders(ex, out, 200);
  out['content-length'] = '0';
  ex.record.responseCode = 200;
  ex.responseStarted = true;
  ex.res.writeHead(200, out);
  ex.res.end();
}

/**
 * What filters see of an exchange: read through to the exchange (getters on the prototype, so one
 * small object per request rather than an object of closures).
 */
class FilterContextView implements HttpFilterContext {
  readonly connection: DownstreamConnection;
  readonly record: RequestRecord;
  readonly scheme: 'http' | 'https';
  readonly #ex: Exchange;
  constructor(ex: Exchange, connection: DownstreamConnection) {
    this.#ex = ex;
    this.connection = connection;
    this.record = ex.record;
    this.scheme = ex.ctx.tls === true ? 'https' : 'http';
  }
  get method(): string {
    return this.#ex.view.method;
  }
  get authority(): string {
    return this.#ex.view.authority;
  }
  get path(): string {
    return this.#ex.view.path;
  }
  get requestHeaders(): FilterHeaders {
    return this.#ex.headers as FilterHeaders;
  }
  get routeName(): string | undefined {
    return this.#ex.route?.name;
  }
  get upstreamCluster(): string | undefined {
    return this.#ex.upstreamCluster;
  }
  get routeOperation(): string | undefined {
    return this.#ex.route?.operation;
  }
  /** Kept on the request view, where route matching (`dynamic_metadata`) finds it after the filters. */
  get dynamicMetadata(): DynamicMetadata {
    const view = this.#ex.view;
    view.dynamicMetadata ??= {};
    return view.dynamicMetadata;
  }
}
