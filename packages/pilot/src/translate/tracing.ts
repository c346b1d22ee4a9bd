// The HTTP connection manager's `tracing` block, following Istio's tracing.go (configureTracing):
// Weft has no Telemetry API yet, so what Istio does when no Telemetry resource applies.
//
// - `defaultProviders.tracing` names an extension provider: the first one is the proxy's tracer.
//   An `opentelemetry` provider becomes `envoy.tracers.opentelemetry` exporting to the collector's
//   cluster `outbound|<port>||<host>`, over gRPC (`grpc_service.envoy_grpc`, authority the host) or,
//   with `http.path`, OTLP/HTTP (`http_service.http_uri`: `<host><path>`). The span service name
//   is the proxy's service cluster (`<canonical service>.<namespace>`). Gateways spawn an upstream
//   span (Istio's PILOT_SPAWN_UPSTREAM_SPAN_FOR_GATEWAY, on by default).
// - Otherwise `enableTracing: true` alone gives the block without a provider (Istio leaves the
//   tracer to the bootstrap); Weft's proxy then creates no spans, as Envoy without a tracer.
// - Sampling: client 100%, overall 100%, random `defaultConfig.tracing.sampling` (Istio reads 0 as
//   unset and uses PILOT_TRACE_SAMPLING, 1%). Istio's custom tags: the canonical service and
//   revision, mesh id, namespace and cluster id as literals, and the authorization dry-run tags
//   (from RBAC metadata), sorted by tag.
//
// Where Weft differs: Istio drops the provider when the collector is not a service in its registry
// ("could not find cluster for tracing provider"). Weft runs collectors outside the mesh (local
// mode, a collector on the host), so it emits the provider anyway, with the host as written and
// the cluster name built the same way; the proxy exports to that cluster's endpoints when it has
// the cluster, else straight to `<host>:<port>` (see packages/proxy/src/telemetry/tracing-export.ts).
import { outboundClusterKey } from '@weft/mesh';
import type { HttpConnectionManager, OpenTelemetryConfig } from '@weft/xds';
import type { MeshExtensionProvider, Proxy as MeshProxy, PushContext } from '../core/types.ts';
import { encodeAny, TypeUrl } from '@weft/xds';

export type HcmTracing = NonNullable<HttpConnectionManager['tracing']>;
export type CustomTag = NonNullable<HcmTracing['custom_tags']>[number];

/** Which connection manager: Istio's listener classes. */
export type ListenerClass = 'sidecar-inbound' | 'sidecar-outbound' | 'gateway';

export const openTelemetryTracerName = 'envoy.tracers.opentelemetry';

/** Istio's PILOT_TRACE_SAMPLING default. */
const defaultTraceSampling = 1;

function label(proxy: MeshProxy, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = proxy.labels[k];
    if (v) return v;
  }
  return undefined;
}

function metadataString(proxy: MeshProxy, key: string): string | undefined {
  const v = proxy.metadata[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The proxy's canonical service and revision. Istio's injector puts them on every pod as labels
 * (from `app.kubernetes.io/name` or `app`, and `app.kubernetes.io/version` or `version`); Weft's
 * proxies are not injected, so the same fallbacks apply here.
 */
export function canonicalService(proxy: MeshProxy): { service: string | undefined; revision: string } {
  return {
    service: label(proxy, 'service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app'),
    revision: label(proxy, 'service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version') ?? 'latest',
  };
}

function literal(tag: string, value: string): CustomTag {
  return { tag, literal: { value } };
}

function dryRunTag(tag: string, key: string): CustomTag {
  return {
    tag,
    metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key }] } },
  };
}

/** Istio's buildServiceTags plus its optional authorization dry-run tags, sorted by tag name. */
export function istioCustomTags(proxy: MeshProxy): CustomTag[] {
  const { service, revision } = canonicalService(proxy);
  const tags: CustomTag[] = [
    literal('istio.canonical_revision', revision),
    literal('istio.canonical_service', service ?? 'unknown'),
    literal('istio.mesh_id', metadataString(proxy, 'MESH_ID') ?? 'unknown'),
    literal('istio.namespace', proxy.namespace || 'default'),
    literal('istio.cluster_id', metadataString(proxy, 'CLUSTER_ID') ?? 'unknown'),
    dryRunTag('istio.authorization.dry_run.allow_policy.name', 'istio_dry_run_allow_shadow_effective_policy_id'),
    dryRunTag('istio.authorization.dry_run.allow_policy.result', 'istio_dry_run_allow_shadow_engine_result'),
    dryRunTag('istio.authorization.dry_run.deny_policy.name', 'istio_dry_run_deny_shadow_effective_policy_id'),
    dryRunTag('istio.authorization.dry_run.deny_policy.result', 'istio_dry_run_deny_shadow_engine_result'),
  ];
  return tags.sort((a, b) => (a.tag! < b.tag! ? -1 : a.tag! > b.tag! ? 1 : 0));
}

/** Istio's LookupCluster: `namespace/host` or `host` (one namespace has it) → the service's host and cluster. */
export function lookupCollector(push: PushContext, service: string, port: number): { hostname: string; cluster: string; inRegistry: boolean } {
  const slash = service.indexOf('/');
  const namespace = slash > 0 ? service.slice(0, slash) : undefined;
  const host = slash > 0 ? service.slice(slash + 1) : service;
  const matches = push.services.filter((s) => s.hostname === host && (namespace === undefined || s.namespace === namespace));
  const found = matches.length === 1 || (namespace !== undefined && matches.length > 0) ? matches[0] : undefined;
  const hostname = found?.hostname ?? host;
  return { hostname, cluster: outboundClusterKey(hostname, port), inRegistry: !!found };
}

/** `url.JoinPath(host, path)` as Istio builds the OTLP/HTTP URI: `otel.ns.svc.cluster.local/v1/traces`. */
function joinPath(host: string, path: string): string {
  return `${host.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

function openTelemetryProvider(push: PushContext, proxy: MeshProxy, p: NonNullable<MeshExtensionProvider['opentelemetry']>): HcmTracing['provider'] {
  const { hostname, cluster } = lookupCollector(push, p.service, p.port);
  const { service } = canonicalService(proxy);
  const config: OpenTelemetryConfig = { service_name: `${service ?? 'istio-proxy'}.${proxy.namespace}` };
  if (p.http) config.http_service = { http_uri: { uri: joinPath(hostname, p.http.path), cluster } };
  else config.grpc_service = { envoy_grpc: { cluster_name: cluster, authority: hostname } };
  return { name: openTelemetryTracerName, typed_config: encodeAny(TypeUrl.OpenTelemetryConfig, config) };
}

/** The tracing block for one connection manager of `proxy`, or undefined when tracing is off. */
export function hcmTracing(push: PushContext, proxy: MeshProxy, _cls: ListenerClass): HcmTracing | undefined {
  const mesh = push.mesh;
  const providerNames = mesh.defaultTracingProviders;
  if (providerNames.length === 0 && !mesh.enableTracing) return undefined;
  const sampling = mesh.tracingSampling !== 0 ? mesh.tracingSampling : defaultTraceSampling;
  const tracing: HcmTracing = {
    client_sampling: { value: 100 },
    random_sampling: { value: sampling },
    overall_sampling: { value: 100 },
    custom_tags: istioCustomTags(proxy),
  };
  if (providerNames.length > 0) {
    // One tracer per proxy: the first provider (Istio: "only one tracing provider is supported").
    const provider = mesh.extensionProviders.find((p) => p.name === providerNames[0]);
    // A provider Weft cannot resolve leaves the block without a provider, as Istio's lookup failure does.
    if (provider?.opentelemetry) {
      tracing.provider = openTelemetryProvider(push, proxy, provider.opentelemetry);
      if (proxy.type === 'router') tracing.spawn_upstream_span = { value: true };
    }
  }
  return tracing;
}
