import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import type { MeshConfig } from '../core/types.ts';
import { bookinfoPlatform, generate, must, networking, productpage, pushFrom, router, sidecar, typed } from './test-support.ts';

const collector = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: otel-collector, namespace: observability}
spec:
  hosts: [otel-collector.observability.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 4317, name: grpc-otlp, protocol: GRPC}, {number: 4318, name: http-otlp, protocol: HTTP}]
  endpoints: [{address: 127.0.0.40}]
`;

const otelGrpc: Partial<MeshConfig> = {
  enableTracing: true,
  tracingSampling: 25,
  extensionProviders: [{ name: 'otel', opentelemetry: { service: 'observability/otel-collector.observability.svc.cluster.local', port: 4317 } }],
  defaultTracingProviders: ['otel'],
};

type Chain = { name?: string; filters: { name: string; typed_config?: unknown }[] };

function hcmOf(chain: Chain | undefined) {
  const f = must(chain?.filters.find((x) => x.name === 'envoy.filters.network.http_connection_manager'), 'http_connection_manager');
  return typed(f.typed_config as never, TypeUrl.HttpConnectionManager);
}

function sidecarHcms(mesh: Partial<MeshConfig>, texts: string[] = [], proxy = productpage()) {
  const lds = generate(pushFrom([bookinfoPlatform(), ...texts], mesh), proxy, TypeUrl.Listener);
  const outbound = hcmOf(must(lds.get('0.0.0.0_9080'), '0.0.0.0_9080').filter_chains[0] as Chain);
  const vi = must(lds.get('virtualInbound'), 'virtualInbound');
  const inbound = vi.filter_chains.filter((c) => c.filters.some((f) => f.name === 'envoy.filters.network.http_connection_manager')).map((c) => hcmOf(c as Chain));
  return { outbound, inbound };
}

function otelConfigOf(tracing: { provider: { name: string; typed_config?: unknown } | null } | null) {
  const provider = must(must(tracing, 'tracing').provider, 'provider');
  expect(provider.name).toBe('envoy.tracers.opentelemetry');
  return typed(provider.typed_config as never, TypeUrl.OpenTelemetryConfig);
}

describe('tracing on the connection managers', () => {
  it('is absent when the mesh config neither enables tracing nor names a provider', () => {
    const { outbound, inbound } = sidecarHcms({});
    expect(outbound.tracing).toBeNull();
    for (const hcm of inbound) expect(hcm.tracing).toBeNull();
  });

  it('enableTracing alone: sampling and Istio tags, no provider (the bootstrap tracer in Istio)', () => {
    const { outbound } = sidecarHcms({ enableTracing: true, tracingSampling: 10 });
    const t = must(outbound.tracing);
    expect(t.random_sampling?.value).toBe(10);
    expect(t.client_sampling?.value).toBe(100);
    expect(t.overall_sampling?.value).toBe(100);
    expect(t.provider).toBeNull();
  });

  it('reads sampling 0 as unset and uses 1%, as Istio does', () => {
    const { outbound } = sidecarHcms({ enableTracing: true, tracingSampling: 0 });
    expect(outbound.tracing?.random_sampling?.value).toBe(1);
  });

  it("emits Istio's custom tags: canonical service and revision, mesh id, namespace, cluster id, dry-run policy tags", () => {
    const proxy = sidecar('127.0.0.10', 'productpage-v1', { app: 'productpage', version: 'v1' }, 'default', { MESH_ID: 'mesh1', CLUSTER_ID: 'Kubernetes' });
    const { outbound } = sidecarHcms({ enableTracing: true }, [], proxy);
    const tags = must(outbound.tracing).custom_tags;
    expect(tags.map((t) => t.tag)).toEqual([
      'istio.authorization.dry_run.allow_policy.name',
      'istio.authorization.dry_run.allow_policy.result',
      'istio.authorization.dry_run.deny_policy.name',
      'istio.authorization.dry_run.deny_policy.result',
      'istio.canonical_revision',
      'istio.canonical_service',
      'istio.cluster_id',
      'istio.mesh_id',
      'istio.namespace',
    ]);
    const literals = Object.fromEntries(tags.filter((t) => t.literal).map((t) => [t.tag, t.literal!.value]));
    expect(literals).toEqual({
      'istio.canonical_revision': 'v1',
      'istio.canonical_service': 'productpage',
      'istio.cluster_id': 'Kubernetes',
      'istio.mesh_id': 'mesh1',
      'istio.namespace': 'default',
    });
    const dryRun = must(tags.find((t) => t.tag === 'istio.authorization.dry_run.deny_policy.result'));
    expect(dryRun.metadata?.metadata_key).toMatchObject({ key: 'envoy.filters.http.rbac', path: [{ key: 'istio_dry_run_deny_shadow_engine_result' }] });
  });

  it('an opentelemetry default provider exports over gRPC to the collector cluster, on outbound and every inbound HTTP chain', () => {
    const { outbound, inbound } = sidecarHcms(otelGrpc, [collector]);
    for (const hcm of [outbound, ...inbound]) {
      expect(hcm.tracing?.random_sampling?.value).toBe(25);
      const otel = otelConfigOf(hcm.tracing);
      expect(otel.service_name).toBe('productpage.default');
      expect(otel.http_service).toBeNull();
      expect(otel.grpc_service?.envoy_grpc).toMatchObject({
        cluster_name: 'outbound|4317||otel-collector.observability.svc.cluster.local',
        authority: 'otel-collector.observability.svc.cluster.local',
      });
      // Sidecars make one span per hop; only gateways spawn an upstream span.
      expect(hcm.tracing?.spawn_upstream_span).toBeNull();
    }
    expect(inbound.length).toBeGreaterThan(1);
  });

  it('with http.path the provider exports OTLP/HTTP: uri <host><path> and the cluster', () => {
    const mesh: Partial<MeshConfig> = {
      ...otelGrpc,
      extensionProviders: [{ name: 'otel', opentelemetry: { service: 'otel-collector.observability.svc.cluster.local', port: 4318, http: { path: '/v1/traces' } } }],
    };
    const { outbound } = sidecarHcms(mesh, [collector]);
    const otel = otelConfigOf(outbound.tracing);
    expect(otel.grpc_service).toBeNull();
    expect(otel.http_service?.http_uri).toMatchObject({
      uri: 'otel-collector.observability.svc.cluster.local/v1/traces',
      cluster: 'outbound|4318||otel-collector.observability.svc.cluster.local',
    });
  });

  it('a collector outside the registry (local mode) keeps the provider: the host as written and the cluster name built alike', () => {
    const mesh: Partial<MeshConfig> = {
      ...otelGrpc,
      extensionProviders: [{ name: 'otel', opentelemetry: { service: '127.0.0.1', port: 14318, http: { path: '/v1/traces' } } }],
    };
    const { outbound } = sidecarHcms(mesh);
    expect(otelConfigOf(outbound.tracing).http_service?.http_uri).toMatchObject({ uri: '127.0.0.1/v1/traces', cluster: 'outbound|14318||127.0.0.1' });
  });

  it('a default provider that is not an opentelemetry one leaves the block without a provider', () => {
    const { outbound } = sidecarHcms({ ...otelGrpc, defaultTracingProviders: ['nope'] });
    expect(outbound.tracing?.random_sampling?.value).toBe(25);
    expect(outbound.tracing?.provider).toBeNull();
  });

  it('gateways spawn an upstream span (PILOT_SPAWN_UPSTREAM_SPAN_FOR_GATEWAY)', () => {
    const push = pushFrom([bookinfoPlatform(), networking('bookinfo-gateway.yaml'), collector], otelGrpc);
    const gw = router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway', app: 'istio-ingressgateway' });
    const l = must(generate(push, gw, TypeUrl.Listener).get('0.0.0.0_80'));
    const hcm = hcmOf(l.filter_chains[0] as Chain);
    expect(hcm.tracing?.spawn_upstream_span?.value).toBe(true);
    expect(otelConfigOf(hcm.tracing).service_name).toBe('istio-ingressgateway.istio-system');
  });
});
