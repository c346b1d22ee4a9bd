import { createRequire } from 'node:module';
import { encodeMessage, messageNameOf, TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';
import { grpcGenerators } from './index.ts';
import { bookinfoPlatform, generate, grpcClient, must, networking, pushFrom, typed } from './test-support.ts';

const reviewsHost = 'reviews.default.svc.cluster.local';
const target = `${reviewsHost}:9080`;

/** grpc-js-xds's own decoders and validators: what a proxyless client accepts or NACKs. */
interface ResourceType {
  decode(context: unknown, resource: { type_url: string; value: Buffer }): { name: string; value?: object; error?: string };
}
const require = createRequire(import.meta.url);
// What a client's `register()` does: installs the HTTP filters (router, fault) the validators look up.
require('@grpc/grpc-js-xds').register();
const grpcTypes: Record<string, ResourceType> = {
  [TypeUrl.Listener]: require('@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js').ListenerResourceType.get(),
  [TypeUrl.RouteConfiguration]: require('@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js').RouteConfigurationResourceType.get(),
  [TypeUrl.Cluster]: require('@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js').ClusterResourceType.get(),
  [TypeUrl.ClusterLoadAssignment]: require('@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js').EndpointResourceType.get(),
};
const grpcContext = { server: {}, bootstrap: { certificateProviders: { default: {} } } };

/** Every resource the gRPC generators produce, as grpc-js-xds decodes and validates it. */
function grpcAccepts(push: PushContext, proxy: MeshProxy, typeUrl: string, names?: string[]): string[] {
  const errors: string[] = [];
  const resources = must(grpcGenerators[typeUrl])(push, proxy, { typeUrl, ...(names ? { names } : {}) });
  expect(resources.length).toBeGreaterThan(0);
  for (const r of resources) {
    const value = encodeMessage(messageNameOf(typeUrl) as string, r.resource as Record<string, unknown>);
    const result = must(grpcTypes[typeUrl]).decode(grpcContext, { type_url: typeUrl, value });
    if (result.error) errors.push(`${r.name}: ${result.error}`);
    else expect(result.name).toBe(r.name);
  }
  return errors;
}

describe('proxyless gRPC', () => {
  const push = pushFrom([bookinfoPlatform(), networking('destination-rule-all-mtls.yaml'), networking('virtual-service-reviews-jason-v2-v3.yaml')]);

  it('names the listener after the dialled target, an api_listener whose HCM reads RDS of the same name over ADS', () => {
    const l = must(generate(push, grpcClient(), TypeUrl.Listener, [target]).get(target));
    const hcm = typed(l.api_listener?.api_listener, TypeUrl.HttpConnectionManager);
    expect(hcm.rds?.route_config_name).toBe(target);
    expect(hcm.rds?.config_source?.ads).not.toBeNull();
    expect(hcm.http_filters.at(-1)?.name).toBe('envoy.filters.http.router');
  });

  it('resolves short targets in the client namespace', () => {
    expect([...generate(push, grpcClient(), TypeUrl.Listener, ['reviews:9080', 'nope:1']).keys()]).toEqual(['reviews:9080']);
  });

  it('routes with the header match and subsets of the VirtualService', () => {
    const rc = must(generate(push, grpcClient(), TypeUrl.RouteConfiguration, [target]).get(target));
    const vh = must(rc.virtual_hosts[0]);
    expect(vh.domains).toContain(target);
    expect(vh.routes[0]?.match?.headers[0]).toMatchObject({ name: 'end-user', string_match: expect.objectContaining({ exact: 'jason' }) });
    expect(vh.routes[0]?.route?.cluster).toBe(`outbound|9080|v2|${reviewsHost}`);
    expect(vh.routes[1]?.route?.cluster).toBe(`outbound|9080|v3|${reviewsHost}`);
    const split = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml'), networking('virtual-service-reviews-90-10.yaml')]);
    const weighted = must(generate(split, grpcClient(), TypeUrl.RouteConfiguration, [target]).get(target)).virtual_hosts[0]?.routes[0]?.route;
    expect(weighted?.weighted_clusters?.clusters.map((c) => [c.name, c.weight?.value])).toEqual([
      [`outbound|9080|v1|${reviewsHost}`, 90],
      [`outbound|9080|v2|${reviewsHost}`, 10],
    ]);
  });

  it('has EDS clusters over ADS with ROUND_ROBIN and mTLS from certificate providers', () => {
    const c = must(generate(push, grpcClient(), TypeUrl.Cluster, [`outbound|9080|v1|${reviewsHost}`]).get(`outbound|9080|v1|${reviewsHost}`));
    expect(c.type).toBe('EDS');
    expect(c.eds_cluster_config?.eds_config?.ads).not.toBeNull();
    expect(c.lb_policy).toBe('ROUND_ROBIN');
    const tls = typed(c.transport_socket?.typed_config, TypeUrl.UpstreamTlsContext);
    expect(tls.common_tls_context?.tls_certificate_provider_instance?.instance_name).toBe('default');
    expect(tls.common_tls_context?.combined_validation_context?.default_validation_context?.ca_certificate_provider_instance?.certificate_name).toBe('ROOTCA');
  });

  it('produces listeners, routes, clusters and endpoints that grpc-js-xds accepts', () => {
    const proxy = grpcClient();
    expect(grpcAccepts(push, proxy, TypeUrl.Listener, [target])).toEqual([]);
    expect(grpcAccepts(push, proxy, TypeUrl.RouteConfiguration, [target])).toEqual([]);
    expect(grpcAccepts(push, proxy, TypeUrl.Cluster)).toEqual([]);
    expect(grpcAccepts(push, proxy, TypeUrl.ClusterLoadAssignment)).toEqual([]);
    const plain = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml'), networking('virtual-service-ratings-test-delay.yaml')]);
    expect(grpcAccepts(plain, proxy, TypeUrl.RouteConfiguration, ['ratings.default.svc.cluster.local:9080'])).toEqual([]);
    expect(grpcAccepts(plain, proxy, TypeUrl.Cluster)).toEqual([]);
    const split = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml'), networking('virtual-service-reviews-90-10.yaml')]);
    expect(grpcAccepts(split, proxy, TypeUrl.RouteConfiguration, [target])).toEqual([]);
  });
});
