// Tracing as Envoy's connection manager does it with `envoy.tracers.opentelemetry`: a
// connection-manager filter compiled from the HCM's `tracing` block. One span per request per
// proxy: the outbound sidecar's span is a CLIENT span, the inbound sidecar's a SERVER span, and a
// gateway (`spawn_upstream_span`) makes a SERVER span for the downstream request plus a CLIENT
// span per upstream attempt (`router <cluster> egress`). The span is named after the route's
// decorator (`reviews.default.svc.cluster.local:9080/*` in Istio's routes), else `ingress` /
// `egress <authority>` as Envoy names undecorated spans; an inbound `x-envoy-decorator-operation`
// renames the SERVER span and is removed, and the outbound side sends its decorator in it.
//
// Sampling: a caller's decision (W3C flags, B3 sampled) is followed; without one, the connection
// manager decides (tracing-context.ts samplingDecision). Unsampled requests cost a header parse,
// two ids and the injected headers: the trace id still goes upstream with sampled=0. No
// OpenTelemetry object is created for them, and chains without a tracing provider get no filter.
//
// Tags are Envoy's (strings, as Envoy sets them): node_id, zone, guid:x-request-id, http.url,
// http.method, http.protocol, downstream_cluster, user_agent, peer.address, request_size,
// response_size, component, http.status_code, response_flags, upstream_cluster(.name),
// upstream_address, error, plus the HCM's custom tags (Istio's istio.canonical_service,
// istio.namespace...). Not done: gRPC tags (grpc.status_code...), `verbose` stream events.
import type { Attributes, Span } from '@opentelemetry/api';
import type { HttpConnectionManager__Output, OpenTelemetryConfig__Output } from '@weft/xds';
import { decodeAny, TypeUrl } from '@weft/xds';
import type { ConnectionManagerFilterFactory, FilterHeaders, HttpFilter, HttpFilterContext, HttpStreamHooks } from '../core/filters.ts';
import { formatResponseFlags } from '../core/types.ts';
import {
  extractTrace,
  injectTrace,
  newSpanId,
  newTraceId,
  percentToBasisPoints,
  type SamplingSettings,
  samplingDecision,
} from './tracing-context.ts';
import { exportTargetOf, type SpanFactory, spanFactory, type TracingRuntime } from './tracing-export.ts';

export const openTelemetryTracer = 'envoy.tracers.opentelemetry';

/** Who this proxy is, for the node_id and zone tags. */
export interface TracingNode {
  id: string;
  zone: string;
}

type CustomTag = NonNullable<HttpConnectionManager__Output['tracing']>['custom_tags'][number];

/** A custom tag compiled: a constant, or a request header with its default. */
type CompiledTag = { tag: string; value: string } | { tag: string; header: string; fallback: string | undefined };

function compileTags(tags: readonly CustomTag[]): CompiledTag[] {
  const out: CompiledTag[] = [];
  for (const t of tags) {
    if (!t.tag) continue;
    if (t.literal) out.push({ tag: t.tag, value: t.literal.value });
    else if (t.environment) {
      const v = process.env[t.environment.name] ?? t.environment.default_value;
      if (v) out.push({ tag: t.tag, value: v });
    } else if (t.request_header) out.push({ tag: t.tag, header: t.request_header.name.toLowerCase(), fallback: t.request_header.default_value || undefined });
    // Metadata tags (Istio's authorization dry-run ones) read filter metadata Weft does not keep:
    // with a default they give it, else nothing, as Envoy does when the metadata is absent.
    else if (t.metadata?.default_value) out.push({ tag: t.tag, value: t.metadata.default_value });
  }
  return out;
}

/** The tracing settings of one connection manager. */
export interface CompiledTracing {
  sampling: SamplingSettings;
  maxPathTagLength: number;
  tags: readonly CompiledTag[];
  spawnUpstreamSpan: boolean;
  direction: 'inbound' | 'outbound' | 'gateway';
  /** The span kind of the downstream span. */
  serverSpan: boolean;
  factory: SpanFactory;
  node: TracingNode;
}

/** Compiles the HCM's tracing block; undefined when it has no provider (nothing to export to). Throws the NACK reason. */
export function compileTracing(
  hcm: HttpConnectionManager__Output,
  where: string,
  direction: CompiledTracing['direction'],
  node: TracingNode,
  runtime: TracingRuntime,
): CompiledTracing | undefined {
  const t = hcm.tracing;
  if (!t?.provider) return undefined;
  const p = t.provider;
  if (p.name !== openTelemetryTracer && p.typed_config?.type_url !== TypeUrl.OpenTelemetryConfig) {
    throw new Error(`${where}: tracing provider ${p.name || p.typed_config?.type_url || '(unnamed)'} is not supported; Weft exports traces with ${openTelemetryTracer} only`);
  }
  if (!p.typed_config) throw new Error(`${where}: tracing provider ${p.name} has no typed_config`);
  const config = decodeAny(p.typed_config, TypeUrl.OpenTelemetryConfig) as OpenTelemetryConfig__Output;
  if (config.sampler) throw new Error(`${where}: opentelemetry sampler ${config.sampler.name} is not supported (use the connection manager's sampling)`);
  const target = exportTargetOf(config, where);
  const spawnUpstreamSpan = t.spawn_upstream_span?.value ?? false;
  return {
    sampling: {
      client: percentToBasisPoints(t.client_sampling?.value),
      random: percentToBasisPoints(t.random_sampling?.value),
      overall: percentToBasisPoints(t.overall_sampling?.value),
    },
    maxPathTagLength: t.max_path_tag_length?.value ?? 256,
    tags: compileTags(t.custom_tags ?? []),
    spawnUpstreamSpan,
    direction,
    // Envoy: span kind from the listener's direction (INBOUND ingress -> SERVER), or SERVER when upstream spans are spawned.
    serverSpan: spawnUpstreamSpan || direction === 'inbound',
    factory: spanFactory(target, runtime),
    node,
  };
}

function header(h: FilterHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** One request's trace: the hooks the router calls. */
class RequestTrace implements HttpStreamHooks {
  readonly #c: CompiledTracing;
  readonly #traceId: string;
  readonly #spanId: string;
  readonly #parentSpanId: string | undefined;
  readonly #sampled: boolean;
  readonly #traceState: string | undefined;
  readonly #b3Single: boolean;
  readonly #span: Span | undefined;
  /** Inbound `x-envoy-decorator-operation`: the span's name. */
  #operationOverride: string | undefined;
  #child: Span | undefined;
  #childStatus = 0;
  #url = '';

  constructor(c: CompiledTracing, ctx: HttpFilterContext) {
    this.#c = c;
    const h = ctx.requestHeaders;
    const incoming = extractTrace(h);
    const sampled = incoming?.sampled ?? samplingDecision(h, c.sampling);
    this.#sampled = sampled;
    this.#parentSpanId = incoming?.parentSpanId;
    this.#traceState = incoming?.traceState;
    this.#b3Single = incoming?.format === 'b3-single';
    if (c.direction === 'inbound') {
      const op = header(h, 'x-envoy-decorator-operation');
      if (op !== undefined) {
        if (op) this.#operationOverride = op;
        delete h['x-envoy-decorator-operation'];
      }
    }
    if (!sampled) {
      this.#traceId = incoming?.traceId ?? newTraceId();
      this.#spanId = newSpanId();
      return;
    }
    const api = c.factory.api;
    const scheme = header(h, 'x-forwarded-proto') ?? ctx.scheme;
    const path = ctx.path.length > c.maxPathTagLength ? ctx.path.slice(0, c.maxPathTagLength) : ctx.path;
    this.#url = `${scheme}://${ctx.authority}${path}`;
    const attributes: Attributes = { node_id: c.node.id, zone: c.node.zone };
    const span = c.factory.start(
      this.#operationOverride ?? (c.direction === 'inbound' ? 'ingress' : `egress ${ctx.authority}`),
      { kind: c.serverSpan ? api.SpanKind.SERVER : api.SpanKind.CLIENT, startTime: now(), attributes },
      incoming?.traceId && incoming.parentSpanId ? { traceId: incoming.traceId, spanId: incoming.parentSpanId, traceState: incoming.traceState } : undefined,
    );
    this.#span = span;
    const sc = span.spanContext();
    this.#traceId = sc.traceId;
    this.#spanId = sc.spanId;
  }

  onUpstreamRequest(ctx: HttpFilterContext, headers: FilterHeaders): void {
    const c = this.#c;
    // Egress with a decorated route tells the next hop the operation (Envoy's decorator `propagate`, on by default).
    if (c.direction !== 'inbound' && ctx.routeOperation) headers['x-envoy-decorator-operation'] = ctx.routeOperation;
    let spanId = this.#spanId;
    let parentSpanId = this.#parentSpanId;
    if (c.spawnUpstreamSpan && this.#span) {
      this.#endChild();
      const api = c.factory.api;
      const cluster = ctx.upstreamCluster ?? '-';
      const child = c.factory.start(
        `router ${cluster} egress`,
        {
          kind: api.SpanKind.CLIENT,
          startTime: now(),
          attributes: { component: 'proxy', 'http.method': ctx.method, 'http.url': this.#url, upstream_cluster: cluster, 'upstream_cluster.name': cluster },
        },
        { traceId: this.#traceId, spanId: this.#spanId, traceState: this.#traceState },
      );
      this.#child = child;
      this.#childStatus = 0;
      spanId = child.spanContext().spanId;
      parentSpanId = this.#spanId;
    }
    injectTrace(headers, { traceId: this.#traceId, spanId, parentSpanId, sampled: this.#sampled, traceState: this.#traceState, b3Single: this.#b3Single });
  }

  onUpstreamResponse(_ctx: HttpFilterContext, status: number): void {
    if (this.#child) this.#childStatus = status;
  }

  #endChild(): void {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    const status = this.#childStatus;
    child.setAttribute('http.status_code', String(status));
    if (status === 0 || status >= 400) {
      child.setAttribute('error', 'true');
      child.setStatus({ code: this.#c.factory.api.SpanStatusCode.ERROR });
    }
    child.end(now());
  }

  onComplete(ctx: HttpFilterContext): void {
    const span = this.#span;
    if (!span) return;
    const c = this.#c;
    const r = ctx.record;
    const h = ctx.requestHeaders;
    if (this.#child) {
      if (r.upstreamHost) this.#child.setAttribute('upstream_address', r.upstreamHost);
      this.#endChild();
    }
    const name = this.#operationOverride ?? ctx.routeOperation;
    if (name) span.updateName(name);
    const a: Attributes = {
      'http.url': this.#url,
      'http.method': ctx.method,
      downstream_cluster: header(h, 'x-envoy-downstream-service-cluster') ?? '-',
      user_agent: header(h, 'user-agent') ?? '-',
      'http.protocol': r.protocol,
      'peer.address': ctx.connection.remoteAddress,
      request_size: String(r.bytesReceived),
      response_size: String(r.bytesSent),
      component: 'proxy',
      'http.status_code': String(r.responseCode),
      response_flags: formatResponseFlags(r.responseFlags),
    };
    const rid = header(h, 'x-request-id') ?? r.requestId;
    if (rid) a['guid:x-request-id'] = rid;
    const ctid = header(h, 'x-client-trace-id');
    if (ctid) a['guid:x-client-trace-id'] = ctid;
    for (const t of c.tags) {
      if ('value' in t) a[t.tag] = t.value;
      else {
        const v = header(h, t.header) ?? t.fallback;
        if (v !== undefined) a[t.tag] = v;
      }
    }
    if (r.upstreamHost) {
      a.upstream_address = r.upstreamHost;
      if (r.upstreamCluster) {
        a.upstream_cluster = r.upstreamCluster;
        a['upstream_cluster.name'] = r.upstreamCluster;
      }
    }
    const code = r.responseCode;
    if (code === 0 || code >= 500) a.error = 'true';
    span.setAttributes(a);
    // OpenTelemetry's HTTP conventions: a server span errs on 5xx, a client span on 4xx too.
    if (code === 0 || code >= 500 || (!c.serverSpan && code >= 400)) span.setStatus({ code: c.factory.api.SpanStatusCode.ERROR });
    span.end(now());
  }
}

/** The connection manager's tracing filter, or undefined when the chain does not trace. */
export function tracingFilter(compiled: CompiledTracing): HttpFilter {
  return {
    name: 'envoy.tracing',
    begin: (ctx) => new RequestTrace(compiled, ctx),
  };
}

/** Registers as a connection-manager filter: `registry.registerConnectionManager(tracingFilterFactory(node, runtime))`. */
export function tracingFilterFactory(node: TracingNode, runtime: TracingRuntime): ConnectionManagerFilterFactory {
  return (hcm, site) => {
    if (!hcm.tracing?.provider) return undefined;
    const compiled = compileTracing(hcm, site.where, site.direction === 'gateway' ? 'gateway' : site.direction, node, runtime);
    return compiled ? tracingFilter(compiled) : undefined;
  };
}
