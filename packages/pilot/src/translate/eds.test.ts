import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { defaultMeshConfig } from '../core/types.ts';
import { buildPushContext } from '../push/context.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { storeFrom } from '../registry/test-support.ts';
import { bookinfoPlatform, generate, must, networking, productpage, pushFrom } from './test-support.ts';

const EDS = TypeUrl.ClusterLoadAssignment;
const reviewsHost = 'reviews.default.svc.cluster.local';

describe('EDS', () => {
  const push = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml')]);

  it('answers the requested clusters with the endpoints of their subset', () => {
    const got = generate(push, productpage(), EDS, [`outbound|9080|v2|${reviewsHost}`, `outbound|9080||${reviewsHost}`]);
    expect([...got.keys()]).toEqual([`outbound|9080|v2|${reviewsHost}`, `outbound|9080||${reviewsHost}`]);
    const v2 = must(got.get(`outbound|9080|v2|${reviewsHost}`));
    expect(v2.cluster_name).toBe(`outbound|9080|v2|${reviewsHost}`);
    const addresses = (cla: typeof v2) => cla.endpoints.flatMap((l) => l.lb_endpoints.map((e) => `${e.endpoint?.address?.socket_address?.address}:${e.endpoint?.address?.socket_address?.port_value}`));
    expect(addresses(v2)).toEqual(['127.0.0.14:9080']);
    expect(addresses(must(got.get(`outbound|9080||${reviewsHost}`))).sort()).toEqual(['127.0.0.13:9080', '127.0.0.14:9080', '127.0.0.15:9080']);
  });

  it('marks endpoints with Istio metadata: tlsMode for auto mTLS, workload for telemetry; health and weights', () => {
    const cla = must(generate(push, productpage(), EDS, [`outbound|9080|v1|${reviewsHost}`]).get(`outbound|9080|v1|${reviewsHost}`));
    const locality = must(cla.endpoints[0]);
    expect(locality.locality).not.toBeNull();
    expect(locality.load_balancing_weight?.value).toBe(1);
    const ep = must(locality.lb_endpoints[0]);
    expect(ep.health_status).toBe('HEALTHY');
    expect(ep.load_balancing_weight?.value).toBe(1);
    expect(ep.metadata?.filter_metadata['envoy.transport_socket_match']?.fields?.tlsMode?.stringValue).toBe('istio');
    expect(ep.metadata?.filter_metadata.istio?.fields?.workload?.stringValue).toBe('reviews-v1;default;reviews;v1;Kubernetes');
  });

  it('groups endpoints by locality with summed weights', () => {
    const se = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: geo, namespace: default}
spec:
  hosts: [geo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, locality: us-east/us-east-1a/rack1, weight: 3}
  - {address: 10.0.0.2, locality: us-east/us-east-1a/rack1, weight: 2}
  - {address: 10.0.0.3, locality: eu-west/eu-west-1b}
`;
    const p = pushFrom([se]);
    const cla = must(generate(p, productpage(), EDS, ['outbound|80||geo.default.svc.cluster.local']).get('outbound|80||geo.default.svc.cluster.local'));
    const byRegion = new Map(cla.endpoints.map((l) => [l.locality?.region, l]));
    expect(byRegion.get('us-east')?.locality).toMatchObject({ zone: 'us-east-1a', sub_zone: 'rack1' });
    expect(byRegion.get('us-east')?.load_balancing_weight?.value).toBe(5);
    expect(byRegion.get('us-east')?.lb_endpoints.map((e) => e.load_balancing_weight?.value)).toEqual([3, 2]);
    expect(byRegion.get('eu-west')?.locality?.zone).toBe('eu-west-1b');
  });

  it("sends a not-ready endpoint as UNHEALTHY, and leaves it out where outlier detection asks for a minHealthPercent (Istio's panic guard)", () => {
    const platform = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}]
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-ready, namespace: default}
spec: {address: 10.0.0.1, labels: {app: api, track: a}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-starting, namespace: default}
spec: {address: 10.0.0.2, labels: {app: api, track: b}}
`;
    const withUnready = (texts: string[]) => {
      const store = storeFrom(platform, ...texts);
      const we = must(store.get('networking.istio.io/WorkloadEntry', 'default', 'api-starting'));
      store.upsert({ ...we, status: { conditions: [{ type: 'Healthy', status: 'False' }] } });
      return buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: defaultMeshConfig, version: 'test' });
    };
    const health = (push: ReturnType<typeof withUnready>, cluster: string) =>
      must(generate(push, productpage(), EDS, [cluster]).get(cluster)).endpoints.flatMap((l) => l.lb_endpoints.map((e) => `${e.endpoint?.address?.socket_address?.address} ${e.health_status}`));
    const all = 'outbound|80||api.default.svc.cluster.local';
    expect(health(withUnready([]), all)).toEqual(['10.0.0.1 HEALTHY', '10.0.0.2 UNHEALTHY']);
    const dr = (od: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api.default.svc.cluster.local
  trafficPolicy: {outlierDetection: {${od}}}
  subsets:
  - {name: b, labels: {track: b}, trafficPolicy: {outlierDetection: {consecutive5xxErrors: 3}}}
`;
    expect(health(withUnready([dr('consecutive5xxErrors: 3')]), all)).toEqual(['10.0.0.1 HEALTHY', '10.0.0.2 UNHEALTHY']);
    const guarded = withUnready([dr('consecutive5xxErrors: 3, minHealthPercent: 50')]);
    expect(health(guarded, all)).toEqual(['10.0.0.1 HEALTHY']);
    // The subset's own policy replaces the service's: no minimum there.
    expect(health(guarded, 'outbound|80|b|api.default.svc.cluster.local')).toEqual(['10.0.0.2 UNHEALTHY']);
  });

  it('answers unknown services and subsets with an empty assignment, and only EDS clusters when asked for all', () => {
    const got = generate(push, productpage(), EDS, ['outbound|9080|v9|reviews.default.svc.cluster.local', 'outbound|9080||nope.default.svc.cluster.local']);
    for (const cla of got.values()) expect(cla.endpoints).toEqual([]);
    const all = generate(push, productpage(), EDS);
    expect(all.has('PassthroughCluster')).toBe(false);
    expect(all.has('inbound|9080||')).toBe(false);
    expect(all.has(`outbound|9080|v3|${reviewsHost}`)).toBe(true);
  });
});
