// GET /debug/why on the admin port: where would this request go, and why. The answer comes from
// the decision code the request path runs, called without a request and without side effects:
// the listener and filter chain (ListenerManager.outboundTarget: local mode's outbound proxy, or
// capture's original-destination hand-off and filter chain match), route selection
// (http/route-selection.ts `decideRoute`, `routeAnswer`; core/route-action.ts for tcp_proxy), the
// fault filter's decision (http/filters.ts), and the cluster's endpoint (cluster/cluster.ts
// `preview`: the load balancer peeks, nothing advances). Every random draw (weighted clusters,
// runtime fractions, fault percentages, random and least-request picks, priority levels) uses
// the query's fixed `draw` instead of the proxy's source, so the answer is repeatable and the
// live source is left alone.
import type { IncomingHttpHeaders } from 'node:http';
import type { ClusterManager, EndpointPreview, UpstreamOptions, XdsSnapshot } from '../core/types.ts';
import { chooseWeighted, clusterNameOf } from '../core/route-action.ts';
import type { CompiledRoute, CompiledRoutes } from '../http/compile.ts';
import { routingTarget } from '../http/connection-manager.ts';
import { type CompiledFault, faultAbort, faultDelay } from '../http/filters.ts';
import type { Fraction } from '../http/matchers.ts';
import { hashKey } from '../http/policies.ts';
import { decideRoute, routeAnswer, routeAnswerStatus } from '../http/route-selection.ts';
import { RequestView } from '../http/view.ts';
import { hostAndPort } from '../listener/local-outbound.ts';
import type { OutboundTarget } from '../listener/manager.ts';
import { chainRouting } from '../runtime/routing.ts';
import { messageToJson } from './config-dump.ts';

/** Bounds on what a query may carry (the admin port is loopback and owner-only, but a query is still input). */
export const whyLimits = { headers: 64, headerValueBytes: 4096, headersBytes: 16_384, authorityBytes: 1024, pathBytes: 8192 } as const;

export interface WhyQuery {
  authority: string;
  path: string;
  method: string;
  /** Lower-case names, in the order given; a name may repeat. */
  headers: readonly (readonly [string, string])[];
  /** The destination port; default: the authority's, else 80. */
  port: number;
  /** A listener to use instead of the one the proxy would pick. */
  listener: string | undefined;
  /** The value every random draw takes, in [0, 1). */
  draw: number;
}

export type WhyDirectKind = 'redirect' | 'direct_response' | 'fault' | 'no_route' | 'no_cluster';

export interface WhyAnswer {
  request: { method: string; authority: string; path: string; port: number; headers: Record<string, string | string[]>; draw: number };
  listener: string | null;
  filterChain: string | null;
  routeConfig: string | null;
  virtualHost: string | null;
  route: { name: string; match: unknown; config?: string } | null;
  cluster: string | null;
  weights?: { cluster: string; weight: number }[];
  endpoint: { address: string; port: number; locality?: string; health: 'healthy' | 'unhealthy' | 'ejected'; weight: number } | null;
  direct?: { status: number; kind: WhyDirectKind };
  why: string[];
}

/** What /debug/why reads: the proxy's live state and its decision functions. */
export interface WhySource {
  readonly snapshot: XdsSnapshot | undefined;
  /** ListenerManager.outboundTarget. */
  target(snap: XdsSnapshot, authority: string, port: number, listener?: string): OutboundTarget;
  readonly clusters: ClusterManager;
  /** The workload's address, the downstream address of its requests (source-IP and cookie hashing). */
  readonly sourceAddress?: string;
}

const tokenRe = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Visible ASCII and spaces/tabs inside: what a header value or request target may hold on the wire.
const fieldValueRe = /^[\t\x20-\x7e]*$/;
const known = new Set(['authority', 'path', 'method', 'header', 'port', 'listener', 'draw', 'source']);

/** The query of /debug/why, checked; `{error}` says what is wrong in one sentence (answered with 400). */
export function parseWhyQuery(params: URLSearchParams): WhyQuery | { error: string } {
  for (const k of new Set(params.keys())) {
    if (!known.has(k)) return { error: `unknown parameter ${JSON.stringify(k.slice(0, 64))}; /debug/why takes authority, path, method, header (repeated, name:value), port, listener, draw` };
    if (k !== 'header' && params.getAll(k).length > 1) return { error: `parameter ${k} given more than once` };
  }
  const authority = params.get('authority') ?? '';
  if (!authority) return { error: 'authority is required (the service as the application names it, e.g. reviews:9080)' };
  if (authority.length > whyLimits.authorityBytes || !/^[A-Za-z0-9._~:[\]%-]+$/.test(authority)) return { error: `authority ${JSON.stringify(authority.slice(0, 100))} is not a host[:port]` };
  const path = params.get('path') ?? '/';
  if (!path.startsWith('/') || path.length > whyLimits.pathBytes || !/^[\x21-\x7e]+$/.test(path)) return { error: `path must start with / and be at most ${whyLimits.pathBytes} visible ASCII characters` };
  const method = params.get('method') ?? 'GET';
  if (!tokenRe.test(method) || method.length > 32) return { error: `method ${JSON.stringify(method.slice(0, 40))} is not an HTTP method` };
  const raw = params.getAll('header');
  if (raw.length > whyLimits.headers) return { error: `at most ${whyLimits.headers} headers (got ${raw.length})` };
  const headers: [string, string][] = [];
  let size = 0;
  for (const h of raw) {
    const colon = h.indexOf(':');
    if (colon <= 0) return { error: `header ${JSON.stringify(h.slice(0, 100))} is not name:value` };
    const name = h.slice(0, colon).trim().toLowerCase();
    const value = h.slice(colon + 1).trim();
    if (!tokenRe.test(name)) return { error: `header name ${JSON.stringify(name.slice(0, 100))} is not a token` };
    if (name === 'host') return { error: 'give the host as authority=, not as a header' };
    if (value.length > whyLimits.headerValueBytes || !fieldValueRe.test(value)) return { error: `header ${name}: the value must be at most ${whyLimits.headerValueBytes} visible ASCII characters` };
    size += name.length + value.length + 4;
    if (size > whyLimits.headersBytes) return { error: `headers exceed ${whyLimits.headersBytes} bytes in all` };
    headers.push([name, value]);
  }
  const authorityPort = hostAndPort(authority, 0).port;
  let port = authorityPort || 80;
  let routedAuthority = authority;
  const portText = params.get('port');
  if (portText !== null) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return { error: `port ${JSON.stringify(portText.slice(0, 20))} is not a port number (1-65535)` };
    port = Number(portText);
    // A client names a port other than 80 in Host, as local mode's outbound proxy expects.
    if (!authorityPort && port !== 80) routedAuthority = `${authority}:${port}`;
  }
  const listener = params.get('listener') ?? undefined;
  if (listener !== undefined && (listener.length === 0 || listener.length > 256 || !/^[\x21-\x7e]+$/.test(listener))) return { error: 'listener must be a listener name (visible ASCII, at most 256 characters)' };
  let draw = 0.5;
  const drawText = params.get('draw');
  if (drawText !== null) {
    draw = Number(drawText);
    if (drawText.trim() === '' || !Number.isFinite(draw) || draw < 0 || draw >= 1) return { error: `draw ${JSON.stringify(drawText.slice(0, 20))} must be a number in [0, 1)` };
  }
  return { authority: routedAuthority, path, method, headers, port, listener, draw };
}

function percent(f: Fraction): string {
  const p = (100 * f.numerator) / f.denominator;
  return `${Number(p.toPrecision(4))}%`;
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? '' : 's'}`;
}

/** The route's match as configured (defaults left out), from the route configuration the route was compiled from. */
function configuredMatch(target: OutboundTarget, vhName: string, routes: CompiledRoutes, route: CompiledRoute): unknown {
  const rawVh = target.routes?.virtual_hosts.find((v) => v.name === vhName);
  const index = routes.virtualHosts.find((v) => v.name === vhName)?.routes.indexOf(route) ?? -1;
  const raw = index >= 0 ? rawVh?.routes[index] : undefined;
  return (raw ? messageToJson(raw.match) : undefined) ?? {};
}

/**
 * Where the proxy would send this request, and why: the listener, route and cluster the request
 * path would choose and the endpoint its load balancer would take next. No side effects.
 */
export function explainRequest(q: WhyQuery, src: WhySource): WhyAnswer | { error: string; status: number } {
  const snap = src.snapshot;
  if (!snap) return { status: 503, error: 'the proxy has no configuration from the control plane yet' };
  if (q.listener !== undefined && !snap.listeners.has(q.listener)) return { status: 400, error: `no listener ${JSON.stringify(q.listener)} in the proxy's configuration` };
  const random = () => q.draw;
  const why: string[] = [];
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of q.headers) {
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const out: WhyAnswer = {
    request: { method: q.method, authority: q.authority, path: q.path, port: q.port, headers: headers as Record<string, string | string[]>, draw: q.draw },
    listener: null,
    filterChain: null,
    routeConfig: null,
    virtualHost: null,
    route: null,
    cluster: null,
    endpoint: null,
    why,
  };

  const t = src.target(snap, q.authority, q.port, q.listener);
  out.listener = t.listener ?? null;
  out.filterChain = t.chain ?? null;
  if (q.listener !== undefined) why.push(`Listener ${q.listener}, as asked (listener=).`);
  else if (t.mode === 'local') {
    why.push(
      t.passthrough
        ? `Local mode: the outbound proxy has no HTTP listener for port ${t.destination.port}, so the request goes where virtualOutbound sends unknown traffic: ${t.passthrough}.`
        : `Local mode: the outbound proxy picks listener ${t.listener} by the authority's port ${t.destination.port}.`,
    );
    const authorityPort = hostAndPort(q.authority, 80).port;
    if (!t.passthrough && authorityPort !== q.port) why.push(`(port=${q.port} differs from the authority's port ${authorityPort}: local mode goes by the authority.)`);
  } else if (t.mode === 'capture') why.push(t.listener ? `Capture: a connection to port ${t.destination.port} is handed to listener ${t.listener}${t.destination.address ? '' : ' (destination address unknown: the application resolves the name)'}.` : `Capture: no listener takes a connection to port ${t.destination.port}; it is closed.`);
  else why.push(t.listener ? `Gateway: listener ${t.listener} is bound at port ${t.destination.port}.` : `Gateway: no listener is bound at port ${t.destination.port}.`);
  if (!t.listener) return out;
  if (!t.http && !t.tcp) {
    why.push(`No filter chain of ${t.listener} matches a plaintext HTTP/1.1 connection; it is closed.`);
    return out;
  }

  let clusterName: string | undefined;
  let opts: UpstreamOptions = { originalDestination: t.destination, ...(src.sourceAddress ? { sourceAddress: src.sourceAddress } : {}) };
  if (t.tcp) {
    // tcp_proxy: the same route action (core/route-action.ts) the connection would use.
    const action = t.tcp.action;
    why.push(`Filter chain ${t.chain} is tcp_proxy (no HTTP routing: the path and headers do not matter).`);
    const chosen = chooseWeighted(action, random);
    if (action.weighted) {
      out.weights = action.weighted.items.map((w) => ({ cluster: w.name, weight: w.weight }));
      why.push(`Weighted clusters ${out.weights.map((w) => `${w.cluster} ${w.weight}`).join(', ')}; a draw of ${q.draw} takes ${chosen?.name}.`);
    }
    clusterName = clusterNameOf(action, chosen, undefined);
  } else {
    const http = t.http!;
    const { settings, routes } = chainRouting(http, t.routes);
    out.routeConfig = t.routes?.name ?? null;
    if (t.passthrough) why.push(`virtualOutbound's catch-all (filter chain ${t.chain ?? 'none'}) spoken as HTTP: one route, to ${t.passthrough}.`);
    else why.push(`Filter chain ${t.chain}: HTTP, route configuration ${t.routes ? `${t.routes.name}${http.routeName !== undefined ? ' (RDS)' : ' (inline)'}` : `${http.routeName} (not received: every request gets 404 NR)`}.`);
    const target = routingTarget(q.path, q.authority, settings, q.port);
    // As the connection manager sets it before routing (require_tls reads it).
    const routed: IncomingHttpHeaders = { ...headers };
    if (settings.useRemoteAddress || routed['x-forwarded-proto'] === undefined) routed['x-forwarded-proto'] = 'http';
    const view = new RequestView(q.method, target.authority, target.path, 'http', routed);
    const d = decideRoute(routes, view, random);
    out.virtualHost = d.virtualHost?.name ?? null;
    if (!routes) {
      out.direct = { status: 404, kind: 'no_route' };
      return out;
    }
    if (!d.virtualHost) {
      why.push(`No virtual host of ${out.routeConfig} has a domain matching ${target.authority}: 404 (NR).`);
      out.direct = { status: 404, kind: 'no_route' };
      return out;
    }
    why.push(`The authority ${target.authority} selects virtual host ${d.virtualHost.name}.`);
    if (d.tlsRedirect) {
      why.push(`The virtual host requires TLS (require_tls ${d.virtualHost.requireTls}): a 301 redirect to https.`);
      out.direct = { status: 301, kind: 'redirect' };
      return out;
    }
    const route = d.route;
    if (!route) {
      why.push(`None of its ${plural(d.virtualHost.routes.length, 'route')} matches ${q.method} ${target.path} with these headers: 404 (NR).`);
      out.direct = { status: 404, kind: 'no_route' };
      return out;
    }
    const match = configuredMatch(t, d.virtualHost.name, routes!, route);
    out.route = { name: route.name, match, ...(route.config ? { config: route.config } : {}) };
    const position = d.virtualHost.routes.indexOf(route) + 1;
    why.push(
      `Route ${route.name ? JSON.stringify(route.name) : '(unnamed)'} (${position} of ${d.virtualHost.routes.length}${route.config ? `, from ${route.config}` : ''}) is the first whose match accepts the request: ${JSON.stringify(match)}.`,
    );
    const action = route.action;
    if (action?.weighted) {
      out.weights = action.weighted.items.map((w) => ({ cluster: w.name || `(header ${w.clusterHeader})`, weight: w.weight }));
      why.push(`It splits by weight: ${out.weights.map((w) => `${w.cluster} ${w.weight}`).join(', ')} (of ${action.weighted.total}); a draw of ${q.draw} takes ${d.weighted?.name || d.cluster}.`);
    } else if (action?.kind === 'cluster_header') why.push(`It sends to the cluster the ${action.clusterHeader} header names${d.cluster ? `: ${d.cluster}` : ', absent here'}.`);
    clusterName = d.cluster;
    // The fault filter runs after routing, before the route's own answers (http/router.ts).
    const fault: CompiledFault | undefined = d.weighted?.fault ?? route.fault;
    if (fault) {
      const delay = faultDelay(fault, view, d.cluster, random);
      if (fault.delay) why.push(`Fault injection: a delay${fault.delay.fixedMs !== undefined ? ` of ${fault.delay.fixedMs} ms` : ''} for ${percent(fault.delay.percent)} of requests; ${delay !== undefined ? `this one waits ${delay} ms` : 'not this one'} (draw ${q.draw}).`);
      const abort = faultAbort(fault, view, d.cluster, random);
      if (fault.abort) why.push(`Fault injection: an abort for ${percent(fault.abort.percent)} of requests; ${abort ? `this one is answered ${abort.status}${abort.grpcStatus !== undefined ? ` (gRPC status ${abort.grpcStatus})` : ''}` : 'not this one'} (draw ${q.draw}).`);
      if (abort) {
        out.cluster = clusterName ?? null;
        out.direct = { status: abort.status, kind: 'fault' };
        return out;
      }
    }
    const answer = routeAnswer(route, clusterName ? src.clusters.get(clusterName) : undefined);
    const status = routeAnswerStatus(route, answer);
    switch (answer) {
      case 'direct_response':
        why.push(`The route answers itself: direct response ${status}.`);
        out.direct = { status, kind: 'direct_response' };
        return out;
      case 'redirect':
        why.push(`The route answers itself: redirect ${status}.`);
        out.direct = { status, kind: 'redirect' };
        return out;
      case 'no_route':
        why.push('The route has no action the router can take: 404 (NR).');
        out.direct = { status, kind: 'no_route' };
        return out;
      case 'no_cluster':
        out.cluster = clusterName ?? null;
        why.push(`${clusterName ? `Cluster ${clusterName} is not in the proxy's configuration` : 'No cluster is named'}: ${status} (NC).`);
        out.direct = { status, kind: 'no_cluster' };
        return out;
      case 'forward':
        break;
    }
    if (action?.hash) {
      const key = hashKey(action.hash, { view, sourceAddress: src.sourceAddress ?? '', connectionKey: `${src.sourceAddress ?? ''}:` }, () => {});
      if (key !== undefined) opts = { ...opts, hashKey: key };
      why.push(key === undefined ? 'The route hashes for consistent load balancing, but this request carries nothing to hash.' : 'The route hashes this request for consistent load balancing.');
    }
  }

  out.cluster = clusterName ?? null;
  const cluster = clusterName ? src.clusters.get(clusterName) : undefined;
  if (!cluster) {
    why.push(clusterName ? `Cluster ${clusterName} is not in the proxy's configuration: the connection fails.` : 'No cluster is named: the connection fails.');
    out.direct = { status: 503, kind: 'no_cluster' };
    return out;
  }
  if (!cluster.preview) {
    why.push(`Cluster ${clusterName}: this cluster implementation cannot tell its next endpoint.`);
    return out;
  }
  const p: EndpointPreview = cluster.preview(opts, random);
  const e = p.endpoint;
  if (e) {
    out.endpoint = { address: e.address, port: e.port, ...(e.locality ? { locality: e.locality } : {}), health: e.ejected ? 'ejected' : e.healthy ? 'healthy' : 'unhealthy', weight: e.weight };
    why.push(`Cluster ${clusterName}: ${p.how}; the next request goes to ${e.address}:${e.port}${e.locality ? ` in ${e.locality}` : ''} (${out.endpoint.health}).`);
  } else why.push(`Cluster ${clusterName}: ${p.how}; no endpoint: the request fails with 503 (UH).`);
  return out;
}
