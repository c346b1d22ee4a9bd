// Span export for `envoy.tracers.opentelemetry`: OpenTelemetry's SDK (a TracerProvider with a
// BatchSpanProcessor) and its OTLP exporters, over gRPC (`grpc_service`) or HTTP/protobuf
// (`http_service`). The OpenTelemetry modules are loaded on first use, when a filter chain has a
// tracing provider, so a proxy without tracing never pays their memory (about 8 MB; the proxy
// already has @grpc/grpc-js). One provider per distinct configuration, shared by every chain.
// `@opentelemetry/sdk-node` is not loaded: it brings metrics, logs and every exporter (about
// 60 MB more) for nothing the proxy uses; its tracing part is this same sdk-trace.
//
// Where spans go. Envoy sends them through the named cluster. Weft's exporters are OpenTelemetry's
// own clients, so the proxy resolves the collector itself, at each export: the first endpoint of
// that cluster in the current xDS snapshot (EDS or a static/DNS load assignment) when it has one,
// else the host the provider names (grpc `authority`, or the host of the http `uri`) at the port
// in the cluster name `outbound|<port>||<host>`. That second way is local mode's: pilot keeps the
// provider for a collector outside the registry. Export is plaintext (no mTLS to the collector).
import { parseClusterKey, protoDurationMs } from '@weft/mesh';
import { createRequire } from 'node:module';
import type { Context, Span, SpanOptions, Tracer } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import type { OpenTelemetryConfig__Output } from '@weft/xds';
import type { XdsSnapshot } from '../core/types.ts';

type ApiModule = typeof import('@opentelemetry/api');
type SdkModule = typeof import('@opentelemetry/sdk-trace');
type ResourcesModule = typeof import('@opentelemetry/resources');
type ProtoExporterModule = typeof import('@opentelemetry/exporter-trace-otlp-proto');
type GrpcExporterModule = typeof import('@opentelemetry/exporter-trace-otlp-grpc');

/** Where and how one provider exports, from its OpenTelemetryConfig. */
export interface ExportTarget {
  protocol: 'grpc' | 'http';
  /** The collector's host as the provider names it (authority, or the uri's host). */
  host: string;
  /** Port: from the uri when it has one, else from the cluster name; undefined when neither says. */
  port: number | undefined;
  /** OTLP/HTTP path (`/v1/traces`). */
  path: string;
  cluster: string;
  serviceName: string;
  /** `http_service.request_headers_to_add` or `grpc_service.initial_metadata`. */
  headers: Readonly<Record<string, string>>;
  timeoutMs: number | undefined;
}

/** Reads the provider's config; throws (the NACK reason) for what Weft cannot export to. */
export function exportTargetOf(c: OpenTelemetryConfig__Output, where: string): ExportTarget {
  const serviceName = c.service_name || 'unknown_service:envoy';
  if (c.http_service) {
    const uri = c.http_service.http_uri;
    if (!uri?.uri) throw new Error(`${where}: opentelemetry http_service without http_uri.uri`);
    const cluster = uri.cluster ?? '';
    // Istio writes `<host><path>` without a scheme; Envoy also takes a full URL.
    const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(uri.uri) ? uri.uri : `http://${uri.uri}`);
    if (u.protocol !== 'http:') throw new Error(`${where}: opentelemetry http_service uri ${uri.uri}: only plaintext http is supported`);
    const headers: Record<string, string> = {};
    for (const h of c.http_service.request_headers_to_add ?? []) if (h.header?.key) headers[h.header.key] = h.header.value ?? '';
    return {
      protocol: 'http',
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port ? Number(u.port) : parseClusterKey(cluster)?.port,
      path: u.pathname || '/v1/traces',
      cluster,
      serviceName,
      headers,
      timeoutMs: protoDurationMs(uri.timeout) || undefined,
    };
  }
  const grpc = c.grpc_service;
  if (grpc) {
    if (!grpc.envoy_grpc) throw new Error(`${where}: opentelemetry grpc_service must use envoy_grpc (google_grpc is not supported)`);
    const cluster = grpc.envoy_grpc.cluster_name;
    const authority = grpc.envoy_grpc.authority || (parseClusterKey(cluster)?.hostname ?? '');
    const colon = authority.lastIndexOf(':');
    const hasPort = colon > 0 && /^\d+$/.test(authority.slice(colon + 1)) && !authority.endsWith(']');
    const headers: Record<string, string> = {};
    for (const h of grpc.initial_metadata ?? []) if (h.key) headers[h.key] = h.value ?? '';
    return {
      protocol: 'grpc',
      host: (hasPort ? authority.slice(0, colon) : authority).replace(/^\[|\]$/g, ''),
      port: hasPort ? Number(authority.slice(colon + 1)) : parseClusterKey(cluster)?.port,
      path: '',
      cluster,
      serviceName,
      headers,
      timeoutMs: protoDurationMs(grpc.timeout) || undefined,
    };
  }
  throw new Error(`${where}: opentelemetry provider has neither grpc_service nor http_service`);
}

/** The first endpoint of a cluster in the snapshot (EDS assignment, else the cluster's own load assignment). */
export function clusterEndpoint(snapshot: XdsSnapshot | undefined, cluster: string): { address: string; port: number } | undefined {
  const c = snapshot?.clusters.get(cluster);
  if (!c || !snapshot) return undefined;
  const eds = c.type === 'EDS' ? snapshot.endpoints.get(c.eds_cluster_config?.service_name || cluster) : undefined;
  const assignment = eds ?? c.load_assignment;
  for (const group of assignment?.endpoints ?? []) {
    for (const e of group.lb_endpoints ?? []) {
      const sa = e.endpoint?.address?.socket_address;
      if (sa?.address && sa.port_value) return { address: sa.address, port: sa.port_value };
    }
  }
  return undefined;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The collector's URL for one export: the cluster's endpoint when the snapshot has one, else the provider's host. */
export function exportUrl(t: ExportTarget, snapshot: XdsSnapshot | undefined): string | undefined {
  const ep = clusterEndpoint(snapshot, t.cluster);
  const addr = ep ? hostPort(ep.address, ep.port) : t.port !== undefined && t.host ? hostPort(t.host, t.port) : undefined;
  if (!addr) return undefined;
  return t.protocol === 'http' ? `http://${addr}${t.path}` : `http://${addr}`;
}

interface Modules {
  api: ApiModule;
  sdk: SdkModule;
  resources: ResourcesModule;
}

let modules: Modules | undefined;

/** Loads the OpenTelemetry API and SDK (synchronously: filter chains compile synchronously). */
export function otel(): Modules {
  if (!modules) {
    const require = createRequire(import.meta.url);
    modules = {
      api: require('@opentelemetry/api') as ApiModule,
      sdk: require('@opentelemetry/sdk-trace') as SdkModule,
      resources: require('@opentelemetry/resources') as ResourcesModule,
    };
  }
  return modules;
}

/** True once a tracing provider has been configured in this process (the modules are loaded). */
export function tracingLoaded(): boolean {
  return modules !== undefined;
}

type ExporterModules = { protocol: 'http'; proto: ProtoExporterModule } | { protocol: 'grpc'; grpc: GrpcExporterModule; grpcJs: typeof import('@grpc/grpc-js') };
const exporterCache = new Map<string, ExporterModules>();

/** The OTLP exporter's modules for a protocol, loaded once per process (synchronously: see ResolvingExporter). */
function exporterModules(protocol: ExportTarget['protocol']): ExporterModules {
  const cached = exporterCache.get(protocol);
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const m: ExporterModules =
    protocol === 'http'
      ? { protocol, proto: require('@opentelemetry/exporter-trace-otlp-proto') as ProtoExporterModule }
      : { protocol: 'grpc', grpc: require('@opentelemetry/exporter-trace-otlp-grpc') as GrpcExporterModule, grpcJs: require('@grpc/grpc-js') as typeof import('@grpc/grpc-js') };
  exporterCache.set(protocol, m);
  return m;
}

/** Exports through OpenTelemetry's OTLP exporter for the collector's current address. */
class ResolvingExporter implements SpanExporter {
  readonly #target: ExportTarget;
  readonly #snapshot: () => XdsSnapshot | undefined;
  readonly #exporters = new Map<string, SpanExporter>();
  readonly #onError: (message: string) => void;

  constructor(target: ExportTarget, snapshot: () => XdsSnapshot | undefined, onError: (message: string) => void) {
    this.#target = target;
    this.#snapshot = snapshot;
    this.#onError = onError;
    // The exporter's modules are loaded now, with the provider's configuration (at start: before the
    // proxy is ready), not at the first export: loading them is ~140 ms of one synchronous task, and at
    // the first export it stalled every request in flight (the mesh hop bench's p99 of +130 to +250 ms
    // at 1,000 req/s was that one stall, a few seconds into the traffic, on both sidecars).
    exporterModules(target.protocol);
  }

  #exporter(url: string): SpanExporter {
    let e = this.#exporters.get(url);
    if (e) return e;
    const t = this.#target;
    const timeout = t.timeoutMs !== undefined ? { timeoutMillis: t.timeoutMs } : {};
    const m = exporterModules(t.protocol);
    if (m.protocol === 'http') {
      const { OTLPTraceExporter } = m.proto;
      e = new OTLPTraceExporter({ url, headers: { ...t.headers }, ...timeout });
    } else {
      const { grpc } = m;
      const { Metadata, credentials } = m.grpcJs;
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(t.headers)) metadata.set(k, v);
      e = new grpc.OTLPTraceExporter({ url, credentials: credentials.createInsecure(), metadata, ...timeout });
    }
    this.#exporters.set(url, e);
    return e;
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const url = exportUrl(this.#target, this.#snapshot());
    if (!url) {
      this.#onError(`no address for the trace collector (cluster ${this.#target.cluster}, host ${this.#target.host || '-'}); ${spans.length} spans dropped`);
      done({ code: 1 });
      return;
    }
    this.#exporter(url).export(spans, (result) => {
      if (result.code !== 0) this.#onError(`exporting ${spans.length} spans to ${url} failed: ${result.error?.message ?? 'unknown error'}`);
      done(result);
    });
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this.#exporters.values()].map((e) => e.forceFlush?.()));
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.#exporters.values()].map((e) => e.shutdown()));
  }
}

/** What the tracing filter starts spans with. */
export interface SpanFactory {
  readonly api: ApiModule;
  readonly tracer: Tracer;
  /** Starts a span under `parent` (remote) or as a root. */
  start(name: string, options: SpanOptions, parent: { traceId: string; spanId: string; traceState: string | undefined } | undefined): Span;
}

/** How the proxy runtime feeds exporters. */
export interface TracingRuntime {
  /** The current xDS snapshot (to resolve the collector's cluster). */
  snapshot(): XdsSnapshot | undefined;
  /** Export problems (at most one every 10 s). */
  warn(message: string): void;
  /** A tracer provider was created (once per distinct provider configuration). */
  info?(message: string, fields: Record<string, unknown>): void;
  /** BatchSpanProcessor's scheduled delay, ms (OTEL_BSP_SCHEDULE_DELAY; default 5000). */
  scheduledDelayMs?: number;
}

interface Entry {
  provider: TracerProvider;
  factory: SpanFactory;
}

const providers = new Map<string, Entry>();

/** The span factory for one export target, created on first use and shared. */
export function spanFactory(target: ExportTarget, runtime: TracingRuntime): SpanFactory {
  const key = JSON.stringify(target);
  const found = providers.get(key);
  if (found) return found.factory;
  const { api, sdk, resources } = otel();
  let lastWarn = 0;
  const warn = (m: string) => {
    // At most one warning every 10 s: a collector that is down must not flood the log.
    const now = Date.now();
    if (now - lastWarn < 10_000) return;
    lastWarn = now;
    runtime.warn(m);
  };
  const exporter = new ResolvingExporter(target, () => runtime.snapshot(), warn);
  const delay = runtime.scheduledDelayMs;
  const processor = new sdk.BatchSpanProcessor({ exporter, ...(delay !== undefined ? { scheduledDelayMillis: delay } : {}) });
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': target.serviceName }),
    sampler: new sdk.AlwaysOnSampler(),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('weft-proxy');
  const factory: SpanFactory = {
    api,
    tracer,
    start(name, options, parent) {
      let ctx: Context = api.ROOT_CONTEXT;
      if (parent) {
        ctx = api.trace.setSpanContext(ctx, {
          traceId: parent.traceId,
          spanId: parent.spanId,
          traceFlags: api.TraceFlags.SAMPLED,
          isRemote: true,
          ...(parent.traceState ? { traceState: api.createTraceState(parent.traceState) } : {}),
        });
      }
      return tracer.startSpan(name, options, ctx);
    },
  };
  providers.set(key, { provider, factory });
  runtime.info?.('tracing: exporting spans', {
    protocol: target.protocol,
    cluster: target.cluster,
    collector: exportUrl(target, runtime.snapshot()) ?? `${target.host}:${target.port ?? '?'}`,
    serviceName: target.serviceName,
  });
  return factory;
}

/**
 * How long a proxy's shutdown waits for its last spans to go out. The exporter retries an
 * unreachable collector for up to its timeout (10 s by default), and in a mesh that stops as a
 * whole the collector often stops first (`weftctl up`'s dashboard): a shutdown must not wait for it.
 */
export const tracingShutdownMs = 1000;

/** Exports what is buffered and stops every provider (proxy shutdown), giving up after `waitMs`. */
export async function shutdownTracing(waitMs = tracingShutdownMs): Promise<void> {
  const all = [...providers.values()];
  providers.clear();
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, waitMs);
    timer.unref();
  });
  await Promise.race([Promise.all(all.map((e) => e.provider.shutdown().catch(() => {}))), gaveUp]);
  clearTimeout(timer);
}

/** Exports what is buffered now, keeping the providers (tests, admin). */
export async function flushTracing(): Promise<void> {
  await Promise.all([...providers.values()].map((e) => e.provider.forceFlush().catch(() => {})));
}
