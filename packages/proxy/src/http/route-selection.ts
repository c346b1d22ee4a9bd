// Route selection (Envoy's router filter choosing a route; linkerd2-proxy's logical -> route ->
// concrete): the virtual host by authority, the first route whose match accepts the request,
// and for a route action the cluster (core/route-action.ts: one cluster, a header's, or one of
// the weighted clusters, drawn with the exchange's random source). The cluster is chosen here,
// before the filters that follow routing, because the fault filter's upstream_cluster reads it.
//
// Contract: `selectRoute(ex)` sets `ex.route`, `ex.weighted`, `ex.upstreamCluster` and the
// record's route name and cluster, or answers (301 require_tls, 404 NR) and returns false.
// After CORS and fault, `routeTarget(ex)` answers what needs no upstream (direct response,
// redirect, a route without action, an unknown cluster: NC) or returns the cluster to call.
import type { IncomingHttpHeaders } from 'node:http';
import { chooseWeighted, clusterNameOf } from '../core/route-action.ts';
import type { UpstreamCluster } from '../core/types.ts';
import type { CompiledRoute, CompiledRoutes, CompiledVirtualHost } from './compile.ts';
import type { Exchange } from './exchange.ts';
import { localReply } from './local-reply.ts';
import { portStart } from './policies.ts';
import { RequestView } from './view.ts';

export function selectRoute(ex: Exchange): boolean {
  const h = ex.headers;
  const found = ex.ctx.routes?.route(ex.view, ex.random);
  const vh = found?.virtualHost;
  if (vh && vh.requireTls !== 'NONE' && h['x-forwarded-proto'] !== 'https') {
    if (vh.requireTls === 'ALL' || h['x-envoy-internal'] !== 'true') {
      ex.drainRequest();
      localReply(ex, 301, '', { headers: { location: newUri(ex, { httpsRedirect: true }) } });
      return false;
    }
  }
  const route = found?.route;
  if (!route) {
    ex.flags.add('NR');
    ex.drainRequest();
    localReply(ex, 404, '', {});
    return false;
  }
  ex.route = route;
  ex.record.routeName = route.name;
  const action = route.action;
  if (action) {
    const chosen = chooseWeighted(action, ex.random);
    ex.weighted = chosen;
    const clusterName = clusterNameOf(action, chosen, ex.view);
    if (clusterName) {
      ex.upstreamCluster = clusterName;
      ex.record.upstreamCluster = clusterName;
    }
  }
  return true;
}

/** The route's own answers, else the cluster to forward to (undefined once answered). */
export function routeTarget(ex: Exchange, route: CompiledRoute): UpstreamCluster | undefined {
  if (route.directResponse) {
    ex.drainRequest();
    const d = route.directResponse;
    const location = d.status === 201 || (d.status >= 300 && d.status < 400) ? newUri(ex, {}) : undefined;
    localReply(ex, d.status, d.body ?? '', { routeHeaders: true, ...(location ? { headers: { location } } : {}) });
    return undefined;
  }
  if (route.redirect) {
    ex.drainRequest();
    const r = route.redirect;
    rewritePath(ex, route, r.prefixRewrite, r.regexRewrite, false);
    localReply(ex, r.status, '', { routeHeaders: true, headers: { location: newUri(ex, r) } });
    return undefined;
  }
  const action = route.action;
  if (!action) {
    ex.flags.add('NR');
    ex.drainRequest();
    localReply(ex, 404, '', {});
    return undefined;
  }
  const cluster = ex.upstreamCluster ? ex.ctx.clusters.get(ex.upstreamCluster) : undefined;
  if (!cluster) {
    ex.flags.add('NC');
    ex.drainRequest();
    localReply(ex, action.clusterNotFoundStatus, '', { routeHeaders: true });
    return undefined;
  }
  return cluster;
}

/** prefix_rewrite / regex_rewrite on the path, keeping the query; records x-envoy-original-path. */
export function rewritePath(ex: Exchange, route: CompiledRoute, prefix: string | undefined, regex: { re: RegExp; sub: string } | undefined, originalHeader: boolean): void {
  if (prefix === undefined && !regex) return;
  const view = ex.view;
  const original = view.path;
  const pathOnly = view.pathOnly;
  const query = original.slice(pathOnly.length);
  let next: string;
  if (regex) {
    regex.re.lastIndex = 0;
    next = pathOnly.replace(regex.re, regex.sub);
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
