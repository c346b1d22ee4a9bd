import { describe, expect, it } from 'vitest';
import { decodeAny, decodeMessage, encodeAny, encodeMessage, messageType } from './codec.ts';
import { adsServiceDefinition, sdsServiceDefinition } from './services.ts';
import { messageNameOf, TypeUrl, typeUrlOf } from './type-urls.ts';

describe('type URLs', () => {
  it('every constant names a message in the loaded protos', () => {
    for (const url of Object.values(TypeUrl)) expect(messageType(messageNameOf(url)).fullName).toBe(`.${messageNameOf(url)}`);
  });
  it('round-trips names and URLs', () => {
    expect(typeUrlOf('envoy.config.cluster.v3.Cluster')).toBe(TypeUrl.Cluster);
    expect(messageNameOf(TypeUrl.Secret)).toBe('envoy.extensions.transport_sockets.tls.v3.Secret');
  });
});

describe('encode and decode', () => {
  it('round-trips a Listener with a typed filter config inside an Any', () => {
    const hcm = encodeAny(TypeUrl.HttpConnectionManager, {
      stat_prefix: 'inbound_0.0.0.0_9080',
      rds: { route_config_name: '9080', config_source: { ads: {}, resource_api_version: 'V3' } },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: encodeAny(TypeUrl.Router, {}) }],
    });
    const bytes = encodeMessage('envoy.config.listener.v3.Listener', {
      name: 'virtualInbound',
      address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
      filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }],
    });
    const listener = decodeMessage('envoy.config.listener.v3.Listener', bytes);
    expect(listener.name).toBe('virtualInbound');
    expect(listener.address?.socket_address?.port_value).toBe(15006);
    expect(listener.address?.address).toBe('socket_address');
    const filter = listener.filter_chains[0]!.filters[0]!;
    expect(filter.typed_config?.type_url).toBe(TypeUrl.HttpConnectionManager);
    const decoded = decodeAny(filter.typed_config!, TypeUrl.HttpConnectionManager);
    expect(decoded.stat_prefix).toBe('inbound_0.0.0.0_9080');
    expect(decoded.rds?.config_source?.resource_api_version).toBe('V3');
    expect(decoded.route_specifier).toBe('rds');
  });

  it('carries 64-bit integers and enums as strings and bytes as Buffers', () => {
    const secret = decodeAny(
      encodeAny(TypeUrl.Secret, { name: 'default', tls_certificate: { certificate_chain: { inline_bytes: Buffer.from('PEM') } } }),
      TypeUrl.Secret,
    );
    expect(Buffer.isBuffer(secret.tls_certificate?.certificate_chain?.inline_bytes)).toBe(true);
    expect(secret.tls_certificate?.certificate_chain?.inline_bytes?.toString()).toBe('PEM');
    const cla = decodeMessage(
      'envoy.config.endpoint.v3.ClusterLoadAssignment',
      encodeMessage('envoy.config.endpoint.v3.ClusterLoadAssignment', {
        cluster_name: 'outbound|9080||reviews.default.svc.cluster.local',
        endpoints: [{ lb_endpoints: [{ health_status: 'HEALTHY', load_balancing_weight: { value: 3 } }] }],
      }),
    );
    expect(cla.endpoints[0]!.lb_endpoints[0]!.health_status).toBe('HEALTHY');
    expect(cla.endpoints[0]!.lb_endpoints[0]!.load_balancing_weight?.value).toBe(3);
  });

  it('refuses an Any of another type than expected, and an unknown message name', () => {
    const any = encodeAny(TypeUrl.Router, {});
    expect(() => decodeAny(any, TypeUrl.Cluster)).toThrow(/expected .*Cluster/);
    expect(() => encodeMessage('envoy.nope.v3.Nothing', {})).toThrow();
  });
});

describe('service definitions', () => {
  it('ADS and SDS have the xDS methods with their wire paths', () => {
    expect(adsServiceDefinition().StreamAggregatedResources.path).toBe('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
    expect(adsServiceDefinition().DeltaAggregatedResources.requestStream).toBe(true);
    const sds = sdsServiceDefinition();
    expect(sds.StreamSecrets.path).toBe('/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets');
    expect(sds.FetchSecrets.requestStream).toBe(false);
    const req = sds.StreamSecrets.requestDeserialize(sds.StreamSecrets.requestSerialize({ type_url: TypeUrl.Secret, resource_names: ['default'] }));
    expect(req.resource_names).toEqual(['default']);
    expect(req.version_info).toBe('');
  });
});
