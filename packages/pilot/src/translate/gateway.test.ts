import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, networking, pushFrom, router, typed } from './test-support.ts';

const ingress = () => router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' });

const httpsGateway = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-cred}
  - port: {number: 443, name: https-files, protocol: HTTPS}
    hosts: [files.example.com]
    tls: {mode: MUTUAL, serverCertificate: /certs/cert.pem, privateKey: /certs/key.pem, caCertificates: /certs/ca.pem}
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [bookinfo.example.com]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [bookinfo.example.com]
  gateways: [secure]
  http:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
`;

function hcmOf(chain: { filters: { name: string; typed_config?: unknown }[] } | undefined) {
  return typed(must(chain?.filters[0]).typed_config as never, TypeUrl.HttpConnectionManager);
}

describe('gateway', () => {
  it('listens on 0.0.0.0_80 for bookinfo-gateway with RDS http.80', () => {
    const push = pushFrom([bookinfoPlatform(), networking('bookinfo-gateway.yaml')]);
    const lds = generate(push, ingress(), TypeUrl.Listener);
    expect([...lds.keys()]).toEqual(['0.0.0.0_80']);
    const l = must(lds.get('0.0.0.0_80'));
    expect(l.address?.socket_address).toMatchObject({ address: '0.0.0.0', port_value: 80 });
    const hcm = hcmOf(l.filter_chains[0]);
    expect(hcm.rds?.route_config_name).toBe('http.80');
    expect(hcm.use_remote_address?.value).toBe(true);
    expect(hcm.http_filters.at(-1)?.name).toBe('envoy.filters.http.router');
  });

  it('routes the product page URLs of bookinfo to productpage:9080 and nothing else', () => {
    const push = pushFrom([bookinfoPlatform(), networking('bookinfo-gateway.yaml')]);
    const rc = must(generate(push, ingress(), TypeUrl.RouteConfiguration).get('http.80'));
    expect(rc.virtual_hosts.map((v) => [v.name, v.domains])).toEqual([['*:80', ['*']]]);
    const routes = must(rc.virtual_hosts[0]).routes;
    expect(routes.map((r) => r.match?.path ?? `${r.match?.prefix}*`)).toEqual(['/productpage', '/static*', '/login', '/logout', '/api/v1/products*']);
    for (const r of routes) expect(r.route?.cluster).toBe('outbound|9080||productpage.default.svc.cluster.local');
  });

  it('answers 404 through an empty virtual host when no VirtualService binds', () => {
    const gw = networking('bookinfo-gateway.yaml').split('---')[0]!;
    const rc = must(generate(pushFrom([bookinfoPlatform(), gw]), ingress(), TypeUrl.RouteConfiguration).get('http.80'));
    expect(rc.virtual_hosts).toEqual([expect.objectContaining({ name: 'blackhole:80', domains: ['*'], routes: [] })]);
  });

  it('terminates HTTPS per server: SNI match, credential over SDS (kubernetes://) or files, own route configuration', () => {
    const push = pushFrom([bookinfoPlatform(), httpsGateway]);
    const l = must(generate(push, ingress(), TypeUrl.Listener).get('0.0.0.0_443'));
    expect(l.listener_filters.map((f) => f.name)).toEqual(['envoy.filters.listener.tls_inspector']);
    const [simple, mutual] = l.filter_chains;
    expect(simple?.filter_chain_match?.server_names).toEqual(['bookinfo.example.com']);
    const simpleTls = typed(simple?.transport_socket?.typed_config, TypeUrl.DownstreamTlsContext);
    expect(simpleTls.common_tls_context?.tls_certificate_sds_secret_configs.map((s) => s.name)).toEqual(['kubernetes://bookinfo-cred']);
    expect(simpleTls.common_tls_context?.tls_certificate_sds_secret_configs[0]?.sds_config?.ads).not.toBeNull();
    expect(simpleTls.require_client_certificate?.value).toBe(false);
    expect(hcmOf(simple).rds?.route_config_name).toBe('https.443.https.secure.default');
    const mutualTls = typed(mutual?.transport_socket?.typed_config, TypeUrl.DownstreamTlsContext);
    expect(mutualTls.require_client_certificate?.value).toBe(true);
    expect(mutualTls.common_tls_context?.tls_certificates[0]?.certificate_chain?.filename).toBe('/certs/cert.pem');
    expect(mutualTls.common_tls_context?.validation_context?.trusted_ca?.filename).toBe('/certs/ca.pem');
    const rc = must(generate(push, ingress(), TypeUrl.RouteConfiguration).get('https.443.https.secure.default'));
    expect(rc.virtual_hosts.map((v) => [v.name, v.domains])).toEqual([['bookinfo.example.com:443', ['bookinfo.example.com', 'bookinfo.example.com:*']]]);
    expect(rc.virtual_hosts[0]?.routes[0]?.route?.cluster).toBe('outbound|9080||productpage.default.svc.cluster.local');
  });

  it('redirects plain HTTP to HTTPS with httpsRedirect', () => {
    const push = pushFrom([bookinfoPlatform(), httpsGateway]);
    const rc = must(generate(push, ingress(), TypeUrl.RouteConfiguration).get('http.8080'));
    expect(rc.virtual_hosts.map((v) => [v.name, v.require_tls])).toEqual([['bookinfo.example.com:8080', 'ALL']]);
  });

  it('has the outbound clusters of the services it can reach, and no inbound clusters', () => {
    const push = pushFrom([bookinfoPlatform(), networking('bookinfo-gateway.yaml')]);
    const cds = generate(push, ingress(), TypeUrl.Cluster);
    expect(cds.has('outbound|9080||productpage.default.svc.cluster.local')).toBe(true);
    expect([...cds.keys()].some((n) => n.startsWith('inbound|'))).toBe(false);
  });

  it("listens on the target port of the gateway's own service (Istio's port translation: 80 -> 8080)", () => {
    const gatewayService = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  hosts: [istio-ingressgateway.istio-system.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http2, protocol: HTTP, targetPort: 18080}
  workloadSelector: {labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway-1, namespace: istio-system}
spec:
  address: 127.0.0.100
  labels: {istio: ingressgateway}
`;
    const push = pushFrom([bookinfoPlatform(), networking('bookinfo-gateway.yaml'), gatewayService]);
    const lds = generate(push, ingress(), TypeUrl.Listener);
    expect([...lds.keys()]).toEqual(['0.0.0.0_18080']);
    expect(must(lds.get('0.0.0.0_18080')).address?.socket_address?.port_value).toBe(18080);
    expect(hcmOf(must(lds.get('0.0.0.0_18080')).filter_chains[0]).rds?.route_config_name).toBe('http.18080');
    // VirtualServices still match the Gateway's port (80), as the virtual host names say.
    const rc = must(generate(push, ingress(), TypeUrl.RouteConfiguration).get('http.18080'));
    expect(rc.virtual_hosts.map((v) => v.name)).toEqual(['*:80']);
    expect(must(rc.virtual_hosts[0]).routes.length).toBe(5);
    // Another gateway workload (no service of its own) keeps port 80.
    const other = router('127.0.0.101', 'other-gateway-1', { istio: 'ingressgateway' });
    expect([...generate(push, other, TypeUrl.Listener).keys()]).toEqual(['0.0.0.0_80']);
  });
});
