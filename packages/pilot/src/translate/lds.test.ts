import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, productpage, pushFrom, reviewsV1, typed } from './test-support.ts';

const LDS = TypeUrl.Listener;

const mysql = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mysqldb, namespace: default}
spec:
  hosts: [mysqldb.default.svc.cluster.local]
  addresses: [10.0.0.5]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 3306, name: tcp, protocol: TCP}]
  endpoints: [{address: 127.0.0.30}]
`;

function peerAuth(name: string, namespace: string, spec: string): string {
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${namespace}}
spec: ${spec}
`;
}

function listeners(texts: string[], proxy = productpage(), mesh = {}) {
  return generate(pushFrom([bookinfoPlatform(), ...texts], mesh), proxy, LDS);
}

function hcmOf(chain: { filters: { name: string; typed_config?: unknown }[] } | undefined) {
  const f = must(chain?.filters.find((x) => x.name === 'envoy.filters.network.http_connection_manager'), 'http_connection_manager');
  return typed(f.typed_config as never, TypeUrl.HttpConnectionManager);
}

function tcpProxyOf(chain: { filters: { name: string; typed_config?: unknown }[] } | undefined) {
  const f = must(chain?.filters.find((x) => x.name === 'envoy.filters.network.tcp_proxy'), 'tcp_proxy');
  return typed(f.typed_config as never, TypeUrl.TcpProxy);
}

describe('sidecar outbound listeners', () => {
  it('virtualOutbound captures 15001 with use_original_dst and passes unknown traffic through (ALLOW_ANY)', () => {
    const vo = must(listeners([]).get('virtualOutbound'));
    expect(vo.address?.socket_address).toMatchObject({ address: '0.0.0.0', port_value: 15001 });
    expect(vo.use_original_dst?.value).toBe(true);
    expect(vo.traffic_direction).toBe('OUTBOUND');
    expect(vo.filter_chains.map((c) => c.name)).toEqual(['virtualOutbound-blackhole', 'virtualOutbound-catchall-tcp']);
    expect(tcpProxyOf(vo.filter_chains[1]).cluster).toBe('PassthroughCluster');
    expect(tcpProxyOf(vo.filter_chains[0]).cluster).toBe('BlackHoleCluster');
  });

  it('sends unknown traffic to BlackHoleCluster under REGISTRY_ONLY', () => {
    const vo = must(listeners([], productpage(), { outboundTrafficPolicy: 'REGISTRY_ONLY' }).get('virtualOutbound'));
    expect(tcpProxyOf(vo.filter_chains[1]).cluster).toBe('BlackHoleCluster');
  });

  it('has 0.0.0.0_9080 for the HTTP port: not bound, HCM with RDS "9080", fault before router, router last', () => {
    const l = must(listeners([]).get('0.0.0.0_9080'));
    expect(l.bind_to_port?.value).toBe(false);
    expect(l.address?.socket_address).toMatchObject({ address: '0.0.0.0', port_value: 9080 });
    expect(l.filter_chains).toHaveLength(1);
    const hcm = hcmOf(l.filter_chains[0]);
    expect(hcm.stat_prefix).toBe('outbound_0.0.0.0_9080');
    expect(hcm.rds?.route_config_name).toBe('9080');
    expect(hcm.rds?.config_source?.ads).not.toBeNull();
    expect(hcm.http_filters.map((f) => f.name)).toEqual(['envoy.filters.http.cors', 'envoy.filters.http.fault', 'envoy.filters.http.router']);
    expect(typed(hcm.http_filters[2]?.typed_config, TypeUrl.Router)).toBeDefined();
  });

  it('has <vip>_<port> with tcp_proxy to the cluster for a TCP service, and honours VirtualService tcp routes', () => {
    expect(tcpProxyOf(must(listeners([mysql]).get('10.0.0.5_3306')).filter_chains[0]).cluster).toBe('outbound|3306||mysqldb.default.svc.cluster.local');
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mysqldb, namespace: default}
spec:
  hosts: [mysqldb]
  tcp:
  - route:
    - {destination: {host: mysqldb, subset: a}, weight: 70}
    - {destination: {host: mysqldb, subset: b}, weight: 30}
`;
    const tp = tcpProxyOf(must(listeners([mysql, vs]).get('10.0.0.5_3306')).filter_chains[0]);
    expect(tp.weighted_clusters?.clusters.map((c) => [c.name, c.weight])).toEqual([
      ['outbound|3306|a|mysqldb.default.svc.cluster.local', 70],
      ['outbound|3306|b|mysqldb.default.svc.cluster.local', 30],
    ]);
  });
});

describe('sidecar inbound listener', () => {
  function portChains(texts: string[], port = 9080) {
    const vi = must(listeners(texts, reviewsV1()).get('virtualInbound'));
    return { vi, chains: vi.filter_chains.filter((c) => c.filter_chain_match?.destination_port?.value === port) };
  }

  it('listens on 15006 with original_dst and guards against loops with a blackhole chain', () => {
    const { vi } = portChains([]);
    expect(vi.address?.socket_address).toMatchObject({ address: '0.0.0.0', port_value: 15006 });
    expect(vi.traffic_direction).toBe('INBOUND');
    expect(vi.listener_filters[0]?.name).toBe('envoy.filters.listener.original_dst');
    expect(vi.filter_chains[0]?.name).toBe('virtualInbound-blackhole');
    expect(vi.filter_chains[0]?.filter_chain_match?.destination_port?.value).toBe(15006);
  });

  it('STRICT: one TLS chain that requires a client certificate, SDS default/ROOTCA; HTTP to inbound|9080||', () => {
    const { chains } = portChains([peerAuth('default', 'istio-system', '{mtls: {mode: STRICT}}')]);
    expect(chains).toHaveLength(1);
    const chain = must(chains[0]);
    expect(chain.name).toBe('0.0.0.0_9080');
    expect(chain.filter_chain_match?.transport_protocol).toBe('tls');
    const tls = typed(chain.transport_socket?.typed_config, TypeUrl.DownstreamTlsContext);
    expect(tls.require_client_certificate?.value).toBe(true);
    expect(tls.common_tls_context?.tls_certificate_sds_secret_configs.map((s) => s.name)).toEqual(['default']);
    expect(tls.common_tls_context?.tls_certificate_sds_secret_configs[0]?.sds_config?.api_config_source?.grpc_services[0]?.envoy_grpc?.cluster_name).toBe('sds-grpc');
    expect(tls.common_tls_context?.combined_validation_context?.validation_context_sds_secret_config?.name).toBe('ROOTCA');
    const hcm = hcmOf(chain);
    expect(hcm.route_config?.name).toBe('inbound|9080||');
    expect(hcm.route_config?.virtual_hosts[0]?.routes[0]?.route?.cluster).toBe('inbound|9080||');
    expect(hcm.http_filters.at(-1)?.name).toBe('envoy.filters.http.router');
  });

  it('PERMISSIVE (the default): an mTLS chain matched on Istio ALPNs and a plaintext chain', () => {
    const { chains, vi } = portChains([]);
    expect(chains.map((c) => [c.filter_chain_match?.transport_protocol, c.transport_socket !== null])).toEqual([
      ['tls', true],
      ['raw_buffer', false],
    ]);
    expect(chains[0]?.filter_chain_match?.application_protocols).toEqual(expect.arrayContaining(['istio-peer-exchange', 'istio']));
    expect(vi.listener_filters.map((f) => f.name)).toEqual([
      'envoy.filters.listener.original_dst',
      'envoy.filters.listener.tls_inspector',
      'envoy.filters.listener.http_inspector',
    ]);
  });

  it('DISABLE: plaintext only; a port-level mode overrides the workload mode', () => {
    expect(portChains([peerAuth('default', 'default', '{mtls: {mode: DISABLE}}')]).chains.map((c) => c.filter_chain_match?.transport_protocol)).toEqual(['raw_buffer']);
    const portLevel = peerAuth('reviews', 'default', '{selector: {matchLabels: {app: reviews}}, mtls: {mode: DISABLE}, portLevelMtls: {"9080": {mode: STRICT}}}');
    expect(portChains([portLevel]).chains.map((c) => c.filter_chain_match?.transport_protocol)).toEqual(['tls']);
  });

  it('uses tcp_proxy to inbound|<port>|| for TCP ports', () => {
    const tcpService = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews-admin, namespace: default}
spec:
  hosts: [reviews-admin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 7000, name: tcp-admin, protocol: TCP}]
  workloadSelector: {labels: {app: reviews}}
`;
    const { chains } = portChains([tcpService, peerAuth('default', 'istio-system', '{mtls: {mode: STRICT}}')], 7000);
    expect(chains).toHaveLength(1);
    expect(tcpProxyOf(chains[0]).cluster).toBe('inbound|7000||');
    expect(typed(chains[0]?.transport_socket?.typed_config, TypeUrl.DownstreamTlsContext).common_tls_context?.alpn_protocols).toContain('istio-peer-exchange');
  });
});
