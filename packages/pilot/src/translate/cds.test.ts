import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, networking, productpage, pushFrom, reviewsV1, router, typed } from './test-support.ts';

const CDS = TypeUrl.Cluster;
const reviewsHost = 'reviews.default.svc.cluster.local';

function clusters(texts: string[], proxy = productpage(), mesh = {}) {
  return generate(pushFrom([bookinfoPlatform(), ...texts], mesh), proxy, CDS);
}

describe('sidecar CDS', () => {
  it('has one EDS cluster per service port and DestinationRule subset, plus passthrough and blackhole', () => {
    const all = clusters([networking('destination-rule-all.yaml')]);
    for (const name of [
      `outbound|9080||${reviewsHost}`,
      `outbound|9080|v1|${reviewsHost}`,
      `outbound|9080|v2|${reviewsHost}`,
      `outbound|9080|v3|${reviewsHost}`,
      'outbound|9080|v2-mysql|ratings.default.svc.cluster.local',
      'outbound|9080||details.default.svc.cluster.local',
      'outbound|9080|v1|productpage.default.svc.cluster.local',
    ]) {
      expect(all.has(name), name).toBe(true);
    }
    const v1 = must(all.get(`outbound|9080|v1|${reviewsHost}`));
    expect(v1.type).toBe('EDS');
    expect(v1.eds_cluster_config?.service_name).toBe(`outbound|9080|v1|${reviewsHost}`);
    expect(v1.eds_cluster_config?.eds_config?.ads).not.toBeNull();
    expect(v1.lb_policy).toBe('LEAST_REQUEST');
    expect(v1.connect_timeout).toEqual({ seconds: '10', nanos: 0 });
    expect(v1.circuit_breakers?.thresholds[0]?.max_connections?.value).toBe(4294967295);
    expect(must(all.get('PassthroughCluster')).type).toBe('ORIGINAL_DST');
    expect(must(all.get('BlackHoleCluster')).type).toBe('STATIC');
  });

  it("never panics onto not-ready endpoints: healthy_panic_threshold 0 unless outlier detection's minHealthPercent sets one (Istio's applyLoadBalancer)", () => {
    const plain = clusters([networking('destination-rule-all.yaml')]);
    for (const name of [`outbound|9080||${reviewsHost}`, `outbound|9080|v2|${reviewsHost}`, 'outbound|9080||details.default.svc.cluster.local']) {
      expect(must(plain.get(name)).common_lb_config?.healthy_panic_threshold?.value, name).toBe(0);
    }
    expect(must(plain.get('PassthroughCluster')).common_lb_config?.healthy_panic_threshold).toBeFalsy();
    const od = (extra: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5${extra}}}
`;
    expect(must(clusters([od('')]).get(`outbound|9080||${reviewsHost}`)).common_lb_config?.healthy_panic_threshold?.value).toBe(0);
    expect(must(clusters([od(', minHealthPercent: 40')]).get(`outbound|9080||${reviewsHost}`)).common_lb_config?.healthy_panic_threshold?.value).toBe(40);
    // A passthrough service (resolution NONE): ORIGINAL_DST with CLUSTER_PROVIDED, set after the threshold, as Istio does.
    const none = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: direct, namespace: default}
spec: {hosts: [direct.example.com], location: MESH_EXTERNAL, resolution: NONE, ports: [{number: 80, name: http, protocol: HTTP}]}
`;
    const direct = must(clusters([none]).get('outbound|80||direct.example.com'));
    expect([direct.type, direct.lb_policy, direct.common_lb_config?.healthy_panic_threshold?.value]).toEqual(['ORIGINAL_DST', 'CLUSTER_PROVIDED', 0]);
  });

  it('uses ISTIO_MUTUAL with SDS default/ROOTCA, the SPIFFE SANs and Istio SNI (destination-rule-all-mtls.yaml)', () => {
    const c = must(clusters([networking('destination-rule-all-mtls.yaml')]).get(`outbound|9080|v2|${reviewsHost}`));
    expect(c.transport_socket?.name).toBe('envoy.transport_sockets.tls');
    const tls = typed(c.transport_socket?.typed_config, TypeUrl.UpstreamTlsContext);
    expect(tls.sni).toBe(`outbound_.9080_.v2_.${reviewsHost}`);
    const common = must(tls.common_tls_context);
    expect(common.alpn_protocols).toEqual(['istio-peer-exchange', 'istio']);
    expect(common.tls_certificate_sds_secret_configs.map((s) => s.name)).toEqual(['default']);
    const sds = must(common.tls_certificate_sds_secret_configs[0]?.sds_config);
    expect(sds.api_config_source?.api_type).toBe('GRPC');
    expect(sds.api_config_source?.grpc_services[0]?.envoy_grpc?.cluster_name).toBe('sds-grpc');
    const validation = must(common.combined_validation_context);
    expect(validation.validation_context_sds_secret_config?.name).toBe('ROOTCA');
    expect(validation.default_validation_context?.match_subject_alt_names.map((m) => m.exact)).toEqual(['spiffe://cluster.local/ns/default/sa/bookinfo-reviews']);
    expect(c.transport_socket_matches).toEqual([]);
  });

  it('uses auto mTLS (tlsMode-istio) when no DestinationRule sets TLS, and plaintext with DISABLE', () => {
    const auto = must(clusters([]).get(`outbound|9080||${reviewsHost}`));
    expect(auto.transport_socket).toBeNull();
    expect(auto.transport_socket_matches.map((m) => m.name)).toEqual(['tlsMode-istio', 'tlsMode-disabled']);
    expect(auto.transport_socket_matches[0]?.match?.fields?.tlsMode?.stringValue).toBe('istio');
    const tls = typed(auto.transport_socket_matches[0]?.transport_socket?.typed_config, TypeUrl.UpstreamTlsContext);
    expect(tls.common_tls_context?.combined_validation_context?.validation_context_sds_secret_config?.name).toBe('ROOTCA');
    expect(auto.transport_socket_matches[1]?.transport_socket?.name).toBe('envoy.transport_sockets.raw_buffer');
    const off = clusters([], productpage(), { enableAutoMtls: false }).get(`outbound|9080||${reviewsHost}`);
    expect(off?.transport_socket_matches).toEqual([]);
    const disabled = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, trafficPolicy: {tls: {mode: DISABLE}}}
`;
    const plain = must(clusters([disabled]).get(`outbound|9080||${reviewsHost}`));
    expect(plain.transport_socket).toBeNull();
    expect(plain.transport_socket_matches).toEqual([]);
  });

  it('applies load balancer, connection pool and outlier detection, with subset and port-level overrides', () => {
    const dr = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 5, maxRetries: 3, idleTimeout: 30s}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5s, baseEjectionTime: 15m, maxEjectionPercent: 50, minHealthPercent: 20}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 2048}}}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}
`;
    const all = clusters([dr]);
    const base = must(all.get(`outbound|9080||${reviewsHost}`));
    expect(base.lb_policy).toBe('RANDOM');
    expect(base.connect_timeout).toEqual({ seconds: '2', nanos: 0 });
    const t = must(base.circuit_breakers?.thresholds[0]);
    expect([t.max_connections?.value, t.max_pending_requests?.value, t.max_requests?.value, t.max_retries?.value]).toEqual([100, 10, 1000, 3]);
    const http = typed(base.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'], TypeUrl.UpstreamHttpProtocolOptions);
    expect(http.common_http_protocol_options?.max_requests_per_connection?.value).toBe(5);
    expect(http.common_http_protocol_options?.idle_timeout).toEqual({ seconds: '30', nanos: 0 });
    expect(http.explicit_http_config?.http_protocol_options).not.toBeNull();
    const od = must(base.outlier_detection);
    expect(od.consecutive_5xx?.value).toBe(7);
    expect(od.enforcing_consecutive_5xx?.value).toBe(100);
    expect(od.interval).toEqual({ seconds: '5', nanos: 0 });
    expect(od.base_ejection_time).toEqual({ seconds: '900', nanos: 0 });
    expect(od.max_ejection_percent?.value).toBe(50);
    expect(base.common_lb_config?.healthy_panic_threshold?.value).toBe(20);
    const v1 = must(all.get(`outbound|9080|v1|${reviewsHost}`));
    expect(v1.lb_policy).toBe('ROUND_ROBIN');
    expect(v1.outlier_detection?.consecutive_5xx?.value).toBe(7);
    const v2 = must(all.get(`outbound|9080|v2|${reviewsHost}`));
    expect(v2.lb_policy).toBe('RING_HASH');
    expect(v2.ring_hash_lb_config?.minimum_ring_size?.value).toBe('2048');
    const v3 = must(all.get(`outbound|9080|v3|${reviewsHost}`));
    expect(v3.lb_policy).toBe('MAGLEV');
    expect(v3.maglev_lb_config?.table_size?.value).toBe('65537');
    // A port-level policy replaces the connection pool and outlier detection too (Istio: no inheritance).
    expect(v3.outlier_detection).toBeNull();
  });

  it('uses STRICT_DNS / LOGICAL_DNS for DNS services and ORIGINAL_DST for resolution NONE', () => {
    const se = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rr, namespace: default}
spec:
  hosts: [rr.example.com]
  location: MESH_EXTERNAL
  resolution: DNS_ROUND_ROBIN
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: any, namespace: default}
spec:
  hosts: ["*.wild.example.com"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: external, namespace: default}
spec:
  host: api.example.com
  trafficPolicy: {tls: {mode: SIMPLE, sni: api.example.com, caCertificates: /etc/ca.pem, subjectAltNames: [api.example.com]}}
`;
    const all = clusters([se]);
    const dns = must(all.get('outbound|443||api.example.com'));
    expect(dns.type).toBe('STRICT_DNS');
    expect(dns.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint?.address?.socket_address).toMatchObject({ address: 'api.example.com', port_value: 443 });
    const tls = typed(dns.transport_socket?.typed_config, TypeUrl.UpstreamTlsContext);
    expect(tls.sni).toBe('api.example.com');
    expect(tls.common_tls_context?.validation_context?.trusted_ca?.filename).toBe('/etc/ca.pem');
    expect(tls.common_tls_context?.validation_context?.match_subject_alt_names.map((m) => m.exact)).toEqual(['api.example.com']);
    expect(must(all.get('outbound|80||rr.example.com')).type).toBe('LOGICAL_DNS');
    const none = must(all.get('outbound|80||*.wild.example.com'));
    expect(none.type).toBe('ORIGINAL_DST');
    expect(none.lb_policy).toBe('CLUSTER_PROVIDED');
  });

  it('a gateway balances a passthrough (headless) service over its endpoints: it has no original destination', () => {
    const headless = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: headless, namespace: default}
spec:
  hosts: [headless.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: NONE
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.7}]
`;
    const gateway = router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' });
    const c = must(clusters([headless], gateway).get('outbound|8080||headless.default.svc.cluster.local'));
    expect(c.type).toBe('EDS');
    expect(c.lb_policy).not.toBe('CLUSTER_PROVIDED');
    expect(must(clusters([headless]).get('outbound|8080||headless.default.svc.cluster.local')).type).toBe('ORIGINAL_DST');
  });

  it('takes MUTUAL credentials from credentialName over SDS (kubernetes://)', () => {
    const dr = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, trafficPolicy: {tls: {mode: MUTUAL, credentialName: reviews-client}}}
`;
    const tls = typed(must(clusters([dr]).get(`outbound|9080||${reviewsHost}`)).transport_socket?.typed_config, TypeUrl.UpstreamTlsContext);
    expect(tls.common_tls_context?.tls_certificate_sds_secret_configs[0]?.name).toBe('kubernetes://reviews-client');
    expect(tls.common_tls_context?.tls_certificate_sds_secret_configs[0]?.sds_config?.ads).not.toBeNull();
    expect(tls.common_tls_context?.combined_validation_context?.validation_context_sds_secret_config?.name).toBe('kubernetes://reviews-client-cacert');
  });

  it('has an inbound cluster to the application on 127.0.0.1 for each port the workload serves', () => {
    const all = clusters([], reviewsV1());
    const inbound = must(all.get('inbound|9080||'));
    expect(inbound.type).toBe('STATIC');
    expect(inbound.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint?.address?.socket_address).toMatchObject({ address: '127.0.0.1', port_value: 9080 });
    expect(all.has('InboundPassthroughCluster')).toBe(true);
  });
});
