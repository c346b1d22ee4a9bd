import { createRequire } from 'node:module';
import { encodeMessage, messageNameOf, TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';
import { grpcGenerators } from './index.ts';
import { proxyFromNode } from '../proxy/node.ts';
import { bookinfoPlatform, generate, grpcClient, must, networking, pushFrom, typed } from './test-support.ts';

const reviewsHost = 'reviews.default.svc.cluster.local';
const target = `${reviewsHost}:9080`;

/** grpc-js-xds's own decoders and validators: what a proxyless client accepts or NACKs. */
interface ResourceType {
  decode(context: unknown, resource: { type_url: string; value: Buffer }): { name: string; value?: object; error?: string };
}
const require = createRequire(import.meta.url);
// grpc-js-xds 1.14 knows the RBAC filter only behind this flag (read when it loads); servers that enforce policies set it.
process.env.GRPC_XDS_EXPERIMENTAL_RBAC = 'true';
// What a client's `register()` does: installs the HTTP filters (router, fault, RBAC) the validators look up.
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

describe('proxyless gRPC client targets', () => {
  const push = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml')]);
  const listeners = (client: MeshProxy, names: string[]) => [...generate(push, client, TypeUrl.Listener, names).keys()];

  it('resolves every form Istio accepts to the service, each listener named as dialled', () => {
    const forms = ['reviews', 'reviews:9080', 'reviews.default', 'reviews.default:9080', 'reviews.default.svc', 'reviews.default.svc:9080', reviewsHost, target];
    expect(listeners(grpcClient(), forms)).toEqual(forms);
    for (const name of forms) {
      const rc = must(generate(push, grpcClient(), TypeUrl.RouteConfiguration, [name]).get(name));
      expect(rc.virtual_hosts[0]?.domains).toContain(name);
      expect(rc.virtual_hosts[0]?.routes[0]?.route?.cluster).toBe(`outbound|9080||${reviewsHost}`);
    }
  });

  it('resolves name.namespace from another namespace, and refuses names that are no service or port', () => {
    expect(listeners(grpcClient('other'), ['reviews.default:9080', 'reviews.default.svc', 'reviews:9080', 'reviews.nope:9080', 'reviews.default:1234', 'reviews.default.svc.cluster:9080'])).toEqual([
      'reviews.default:9080',
      'reviews.default.svc',
    ]);
  });

  it("applies Istio's default retry policy when a VirtualService sets none, and none when it sets attempts 0", () => {
    const plain = must(generate(push, grpcClient(), TypeUrl.RouteConfiguration, [target]).get(target)).virtual_hosts[0]?.routes[0]?.route?.retry_policy;
    expect(plain).toMatchObject({ retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: { value: 2 } });
    const routed = pushFrom([bookinfoPlatform(), networking('destination-rule-all.yaml'), networking('virtual-service-reviews-v3.yaml')]);
    const r = must(generate(routed, grpcClient(), TypeUrl.RouteConfiguration, [target]).get(target)).virtual_hosts[0]?.routes[0]?.route;
    expect(r?.cluster).toBe(`outbound|9080|v3|${reviewsHost}`);
    expect(r?.retry_policy).toMatchObject({ retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: { value: 2 } });
    const none = pushFrom([
      bookinfoPlatform(),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - retries: {attempts: 0}
    route:
    - destination: {host: reviews}
`,
    ]);
    expect(must(generate(none, grpcClient(), TypeUrl.RouteConfiguration, [target]).get(target)).virtual_hosts[0]?.routes[0]?.route?.retry_policy).toBeNull();
    expect(grpcAccepts(routed, grpcClient(), TypeUrl.RouteConfiguration, [target])).toEqual([]);
  });

  it('answers an explicit empty list with nothing (a wildcard is no names at all)', () => {
    expect(listeners(grpcClient(), [])).toEqual([]);
    expect(generate(push, grpcClient(), TypeUrl.Cluster, []).size).toBe(0);
    expect(generate(push, grpcClient(), TypeUrl.Listener).size).toBeGreaterThan(1);
  });
});

describe('proxyless gRPC servers', () => {
  const greeter = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [greeter.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 7070, name: grpc, protocol: GRPC, targetPort: 50051}
  workloadSelector:
    labels: {app: greeter}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter-1, namespace: default}
spec:
  address: 127.0.0.60
  serviceAccount: greeter
  labels: {app: greeter}
`;
  const peerAuthentication = (mode: string, extra = '') => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: greeter, namespace: default}
spec:
  selector:
    matchLabels: {app: greeter}
  mtls: {mode: ${mode}}
${extra}`;
  const server = (labels: Record<string, string> = { app: 'greeter' }) =>
    proxyFromNode({ id: 'sidecar~127.0.0.60~greeter-1.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', LABELS: labels } });
  const name = 'xds.istio.io/grpc/lds/inbound/127.0.0.60:50051';
  const serverListener = (p: PushContext, proxy = server(), n = name) => generate(p, proxy, TypeUrl.Listener, [n]).get(n);

  it('answers the inbound listener grpc-go and grpc-js ask for: the address from the name, no listener filters, the route inline with non_forwarding_action, the router last', () => {
    const p = pushFrom([greeter]);
    for (const [n, address] of [
      [name, '127.0.0.60'],
      ['xds.istio.io/grpc/lds/inbound/[::]:50051', '::'],
      ['xds.istio.io/grpc/lds/inbound/0.0.0.0:50051', '0.0.0.0'],
    ] as const) {
      const l = must(serverListener(p, server(), n), n);
      expect(l.address?.socket_address).toMatchObject({ address, port_value: 50051 });
      expect(l.listener_filters).toEqual([]);
      expect(l.filter_chains).toHaveLength(1);
      const hcm = typed(l.filter_chains[0]?.filters[0]?.typed_config, TypeUrl.HttpConnectionManager);
      expect(hcm.route_config?.virtual_hosts[0]?.routes[0]?.non_forwarding_action).not.toBeNull();
      expect(hcm.http_filters.map((f) => f.name)).toEqual(['envoy.filters.http.router']);
    }
    expect(grpcAccepts(p, server(), TypeUrl.Listener, [name, 'xds.istio.io/grpc/lds/inbound/[::]:50051'])).toEqual([]);
  });

  it('has no listener for a port the workload serves no service on, or a malformed name', () => {
    const p = pushFrom([greeter]);
    expect(generate(p, server(), TypeUrl.Listener, ['xds.istio.io/grpc/lds/inbound/127.0.0.60:7071', 'xds.istio.io/grpc/lds/inbound/nohost:50051', 'xds.istio.io/grpc/lds/inbound/127.0.0.60']).size).toBe(0);
  });

  it('takes mTLS from PeerAuthentication: STRICT requires a client certificate from the certificate provider default; PERMISSIVE and DISABLE are plaintext', () => {
    const strict = must(serverListener(pushFrom([greeter, peerAuthentication('STRICT')])));
    expect(strict.filter_chains[0]?.name).toBe('inbound-mtls');
    expect(strict.filter_chains[0]?.transport_socket?.name).toBe('envoy.transport_sockets.tls');
    const tls = typed(strict.filter_chains[0]?.transport_socket?.typed_config, TypeUrl.DownstreamTlsContext);
    expect(tls.require_client_certificate?.value).toBe(true);
    expect(tls.common_tls_context?.tls_certificate_provider_instance).toMatchObject({ instance_name: 'default', certificate_name: 'default' });
    expect(tls.common_tls_context?.combined_validation_context?.default_validation_context?.ca_certificate_provider_instance).toMatchObject({ instance_name: 'default', certificate_name: 'ROOTCA' });
    expect(grpcAccepts(pushFrom([greeter, peerAuthentication('STRICT')]), server(), TypeUrl.Listener, [name])).toEqual([]);

    for (const mode of ['PERMISSIVE', 'DISABLE']) {
      const l = must(serverListener(pushFrom([greeter, peerAuthentication(mode)])));
      expect(l.filter_chains[0]?.name).toBe('inbound-plaintext');
      expect(l.filter_chains[0]?.transport_socket).toBeNull();
    }
    // No policy at all: the mesh default, PERMISSIVE.
    expect(must(serverListener(pushFrom([greeter]))).filter_chains[0]?.transport_socket).toBeNull();
  });

  it('serves PERMISSIVE as STRICT to a workload labelled for auto mTLS, and honours port-level modes', () => {
    const auto = must(serverListener(pushFrom([greeter]), server({ app: 'greeter', 'security.istio.io/tlsMode': 'istio' })));
    expect(auto.filter_chains[0]?.name).toBe('inbound-mtls');
    const portLevel = pushFrom([greeter, peerAuthentication('STRICT', '  portLevelMtls:\n    50051: {mode: DISABLE}\n')]);
    expect(must(serverListener(portLevel)).filter_chains[0]?.name).toBe('inbound-plaintext');
  });

  it('puts AuthorizationPolicies in the connection manager as RBAC filters, DENY then ALLOW, the router last', () => {
    const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-client, namespace: default}
spec:
  selector:
    matchLabels: {app: greeter}
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/greeter-client]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  selector:
    matchLabels: {app: greeter}
  action: DENY
  rules:
  - to:
    - operation:
        paths: [/admin.Admin/*]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry
  namespace: default
  annotations: {istio.io/dry-run: "true"}
spec:
  selector:
    matchLabels: {app: greeter}
  action: DENY
  rules:
  - {}
`;
    const p = pushFrom([greeter, peerAuthentication('STRICT'), policies]);
    const hcm = typed(must(serverListener(p)).filter_chains[0]?.filters[0]?.typed_config, TypeUrl.HttpConnectionManager);
    expect(hcm.http_filters.map((f) => f.name)).toEqual(['envoy.filters.http.rbac.DENY', 'envoy.filters.http.rbac', 'envoy.filters.http.router']);
    const deny = typed(hcm.http_filters[0]?.typed_config, TypeUrl.HttpRbac);
    expect(deny.rules?.action).toBe('DENY');
    expect(Object.keys(deny.rules?.policies ?? {})).toEqual(['ns[default]-policy[deny-admin]-rule[0]']);
    expect(deny.shadow_rules).toBeNull();
    const allow = typed(hcm.http_filters[1]?.typed_config, TypeUrl.HttpRbac);
    expect(allow.rules?.action).toBe('ALLOW');
    expect(JSON.stringify(allow.rules?.policies)).toContain('spiffe://cluster.local/ns/default/sa/greeter-client');
    expect(grpcAccepts(p, server(), TypeUrl.Listener, [name])).toEqual([]);
  });

  it('serves client targets and server listeners on one stream', () => {
    const p = pushFrom([greeter]);
    expect([...generate(p, server(), TypeUrl.Listener, ['greeter:7070', name]).keys()].sort()).toEqual(['greeter:7070', name].sort());
  });
});
