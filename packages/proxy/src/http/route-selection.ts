// Route selection (Envoy's router filter choosing a route; linkerd2-proxy's logical -> route ->
// concrete): the virtual host by authority, the first route whose match accepts the request,
// and for a route action the cluster (core/route-action.ts: one cluster, a header's, or one of
// the weighted clusters, drawn with the exchange's random source). The cluster is chosen here,
// before the filters that follow routing, because the fault filter's upstream_cluster reads it.
//
// Contract: `decideRoute` is the decision, pure (admin/why.ts calls it too); `selectRoute(ex)` sets `ex.route`, `ex.weighted`, `ex.upstreamCluster` and the
// record's route name and cluster, or answers (301 require_tls, 404 NR) and returns false.
// After CORS and fault, `routeTarget(ex)` answers what needs no upstream (direct response,
// redirect, a route without action, an unknown cluster: NC) or returns the cluster to call.
import type { IncomingHttpHeaders } from 'node:http';
import { chooseWeighted, clusterNameOf, type Random } from '../core/route-action.ts';
import type { UpstreamCluster } from '../core/types.ts';
import type { CompiledRoute, CompiledRoutes, CompiledVirtualHost, CompiledWeightedCluster } from './compile.ts';
import type { Exchange } from './exchange.ts';
import { localReply } from './local-reply.ts';
import type { RegexRewrite } from './matchers.ts';
import { portStart } from './policies.ts';
import { RequestView } from './view.ts';

/**
 * What routing decides for a request, without acting on it: the virtual host, whether its
 * require_tls redirects, the route, the weighted cluster drawn with `random` and the cluster's name.
 * Pure: the request path (`selectRoute`) and the admin's /debug/why (admin/why.ts) both call it.
 */
export interface RouteDecision {
  readonly virtualHost: CompiledVirtualHost | undefined;
  /** The virtual host's require_tls answers with a redirect to https (no route is chosen then). */
  readonly tlsRedirect: boolean;
  readonly route: CompiledRoute | undefined;
  readonly weighted: CompiledWeightedCluster | undefined;
  /** Undefined without an action, or when a header that should name the cluster is absent. */
  readonly cluster: string | undefined;
}

export function decideRoute(routes: CompiledRoutes | undefined, view: RequestView, random: Random): RouteDecision {
  const found = routes?.route(view, random);
  const vh = found?.virtualHost;
  if (vh && vh.requireTls !== 'NONE' && view.header('x-forwarded-proto') !== 'https') {
    if (vh.requireTls === 'ALL' || view.header('x-envoy-internal') !== 'true') return { virtualHost: vh, tlsRedirect: true, route: undefined, weighted: undefined, cluster: undefined };
  }
  const route = found?.route;
  const action = route?.action;
  if (!route || !action) return { virtualHost: vh, tlsRedirect: false, route, weighted: undefined, cluster: undefined };
  const weighted = chooseWeighted(action, random);
  return { virtualHost: vh, tlsRedirect: false, route, weighted, cluster: clusterNameOf(action, weighted, view) };
}

export function selectRoute(ex: Exchange): boolean {
  const d = decideRoute(ex.ctx.routes, ex.view, ex.random);
  if (d.tlsRedirect) {
    ex.drainRequest();
    localReply(ex, 301, '', { headers: { location: newUri(ex, { httpsRedirect: true }) } });
    return false;
  }
  const route = d.route;
  if (!route) {
    ex.flags.add('NR');
    ex.drainRequest();
    localReply(ex, 404, '', {});
    return false;
  }
  ex.route = route;
  ex.record.routeName = route.name;
  ex.weighted = d.weighted;
  if (d.cluster) {
    ex.upstreamCluster = d.cluster;
    ex.record.upstreamCluster = d.cluster;
  }
  return true;
}

/**
 * What a route answers itself (a direct response, a redirect, no action: NR, an unknown cluster:
 * NC) or `forward`, in `routeTarget`'s order. Pure, and a string so the request path allocates
 * nothing for it; shared with admin/why.ts. The statuses are the route's (`routeAnswerStatus`).
 */
export type RouteAnswer = 'forward' | 'direct_response' | 'redirect' | 'no_route' | 'no_cluster';

export function routeAnswer(route: CompiledRoute, cluster: UpstreamCluster | undefined): RouteAnswer {
  if (route.directResponse) return 'direct_response';
  if (route.redirect) return 'redirect';
  if (!route.action) return 'no_route';
  return cluster ? 'forward' : 'no_cluster';
}

/** The status of a route's own answer (0 for `forward`). */
export function routeAnswerStatus(route: CompiledRoute, answer: RouteAnswer): number {
  switch (answer) {
    case 'direct_response':
      return route.directResponse!.status;
    case 'redirect':
      return route.redirect!.status;
    case 'no_route':
      return 404;
    case 'no_cluster':
      return route.action!.clusterNotFoundStatus;
    default:
      return 0;
  }
}

/** The route's own answers, else the cluster to forward to (undefined once answered). */
export function routeTarget(ex: Exchange, route: CompiledRoute): UpstreamCluster | undefined {
  const cluster = ex.upstreamCluster ? ex.ctx.clusters.get(ex.upstreamCluster) : undefined;
  switch (routeAnswer(route, cluster)) {
    case 'forward':
      return cluster;
    case 'direct_response': {
      ex.drainRequest();
      const d = route.directResponse!;
      const location = d.status === 201 || (d.status >= 300 && d.status < 400) ? newUri(ex, {}) : undefined;
      localReply(ex, d.status, d.body ?? '', { routeHeaders: true, ...(location ? { headers: { location } } : {}) });
      return undefined;
    }
    case 'redirect': {
      ex.drainRequest();
      const r = route.redirect!;
      rewritePath(ex, route, r.prefixRewrite, r.regexRewrite, false);
      localReply(ex, r.status, '', { routeHeaders: true, headers: { location: newUri(ex, r) } });
      return undefined;
    }
    case 'no_route':
      ex.flags.add('NR');
      ex.drainRequest();
      localReply(ex, 404, '', {});
      return undefined;
    case 'no_cluster':
      ex.flags.add('NC');
      ex.drainRequest();
      localReply(ex, route.action!.clusterNotFoundStatus, '', { routeHeaders: true });
      return undefined;
  }
}

/** prefix_rewrite / regex_rewrite on the path, keeping the query; records x-envoy-original-path. */
export function rewritePath(ex: Exchange, route: CompiledRoute, prefix: string | undefined, regex: RegexRewrite | undefined, originalHeader: boolean): void {
  if (prefix === undefined && !regex) return;
  const view = ex.view;
  const original = view.path;
  const pathOnly = view.pathOnly;
  const query = original.slice(pathOnly.length);
  let next: string;
  if (regex) {
    next = regex.re.globalReplace(pathOnly, regex.substitution);
  } else {
    const matched = route.matchKind === 'prefix' || route.matchKind === 'path_separated_prefix' ? route.matchPrefix.length : pathOnly.length;
    next = prefix! + pathOnly.slice(matched);
  }
  view.setPath(next + query);
  if (originalHeader && !ex.settings.suppressEnvoyHeaders) ex.headers['x-envoy-original-path'] = original;
}

/** Envoy's Http::Utility::newUri: the Location of a redirect. */
function newUri(ex: Exchange, r: {
  scheme?: string | undefined;
  httpsRedirect?: boolean;
  host?: string;
  port?: string;
  pathRedirect?: string | undefined;
  pathRedirectHasQuery?: boolean;
  stripQuery?: boolean;
}): string {
  const view = ex.view;
  const requestProto = (ex.headers['x-forwarded-proto'] as string | undefined) ?? view.scheme;
  const scheme = r.scheme ? r.scheme : r.httpsRedirect ? 'https' : requestProto;
  const port = r.port ?? '';
  let host = r.host ?? '';
  if (!host) {
    host = view.authority;
    const p = portStart(host);
    if (p >= 0) {
      const requestPort = host.slice(p);
      let remove = port !== '';
      if (scheme !== requestProto) {
        remove ||= requestProto === 'https' && requestPort === ':443';
        remove ||= requestProto === 'http' && requestPort === ':80';
      }
      if (remove) host = host.slice(0, p);
    }
  }
  let path: string;
  if (r.pathRedirect) {
    if (r.pathRedirectHasQuery) path = r.pathRedirect;
    else {
      const q = view.path.indexOf('?');
      path = q < 0 ? r.pathRedirect : r.pathRedirect + view.path.slice(q);
    }
  } else path = view.path;
  if (!path.startsWith('/')) path = `/${path}`;
  if (r.stripQuery && !r.pathRedirectHasQuery) {
    const q = path.indexOf('?');
    if (q >= 0) path = path.slice(0, q);
  }
  return `${scheme}://${host}${port}${path}`;
}

/** The virtual host a request would select (debugging aid for admin pages and tests). */
export function describeRoute(routes: CompiledRoutes, method: string, authority: string, path: string, headers: IncomingHttpHeaders = {}): { virtualHost: CompiledVirtualHost | undefined; route: CompiledRoute | undefined } {
  return routes.route(new RequestView(method, authority, path, 'http', headers), () => 0);
}
