import { conversionOptions, decodeMessage, encodeAny, encodeMessage, messageType, type Node__Output, type Status__Output, TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { decodeDiscoveryRequest, deltaResourceField, deltaResponse, encodeRouteConfiguration, sotwResourceField, sotwResponse } from './wire.ts';

const nested = {
  node: (b: Buffer) => messageType('envoy.config.core.v3.Node').toObject(messageType('envoy.config.core.v3.Node').decode(b), conversionOptions) as Node__Output,
  status: (b: Buffer) => messageType('google.rpc.Status').toObject(messageType('google.rpc.Status').decode(b), conversionOptions) as Status__Output,
};

describe('hand-written responses', () => {
  it('decode as the DiscoveryResponse the generated codec expects', () => {
    const a = encodeAny(TypeUrl.Cluster, { name: 'outbound|80||a.default.svc.cluster.local', type: 'EDS' });
    const b = encodeAny(TypeUrl.Cluster, { name: 'outbound|80||b.default.svc.cluster.local' });
    const bytes = sotwResponse('7', [sotwResourceField(a), sotwResourceField(b)], TypeUrl.Cluster, 'n-1');
    const decoded = decodeMessage('envoy.service.discovery.v3.DiscoveryResponse', bytes);
    expect(decoded).toMatchObject({ version_info: '7', type_url: TypeUrl.Cluster, nonce: 'n-1' });
    expect(decoded.resources.map((r) => [r.type_url, Buffer.from(r.value).equals(a.value) || Buffer.from(r.value).equals(b.value)])).toEqual([
      [TypeUrl.Cluster, true],
      [TypeUrl.Cluster, true],
    ]);
  });

  it('decode as the DeltaDiscoveryResponse the generated codec expects', () => {
    const a = encodeAny(TypeUrl.ClusterLoadAssignment, { cluster_name: 'c' });
    const bytes = deltaResponse('3', [deltaResourceField('c', 'v-abc', a)], TypeUrl.ClusterLoadAssignment, ['gone', 'also-gone'], 'n-2');
    const decoded = decodeMessage('envoy.service.discovery.v3.DeltaDiscoveryResponse', bytes);
    expect(decoded).toMatchObject({ system_version_info: '3', type_url: TypeUrl.ClusterLoadAssignment, nonce: 'n-2', removed_resources: ['gone', 'also-gone'] });
    expect(decoded.resources).toHaveLength(1);
    expect(decoded.resources[0]).toMatchObject({ name: 'c', version: 'v-abc' });
    expect(Buffer.from(decoded.resources[0]!.resource!.value).equals(a.value)).toBe(true);
  });
});

describe('decodeDiscoveryRequest', () => {
  it('reads every field the server uses, as the generated codec does', () => {
    const request = {
      version_info: '4',
      node: { id: 'sidecar~10.0.0.1~a.default~default.svc.cluster.local', metadata: { fields: { GENERATOR: { stringValue: 'grpc', kind: 'stringValue' as const } } } },
      resource_names: ['outbound|80||a.default.svc.cluster.local', 'outbound|80||é.default.svc.cluster.local'],
      type_url: TypeUrl.ClusterLoadAssignment,
      response_nonce: 'abc-1',
      error_detail: { code: 3, message: 'rejected' },
    };
    const bytes = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', request);
    const mine = decodeDiscoveryRequest(bytes, nested);
    const generated = decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', bytes);
    expect({ ...mine, resource_names: mine.resource_names, namesKey: undefined }).toEqual({ ...generated, namesKey: undefined });
  });

  it('gives equal name keys to equal subscriptions and different keys otherwise', () => {
    const enc = (names: string[], nonce: string) => encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { type_url: TypeUrl.ClusterLoadAssignment, resource_names: names, response_nonce: nonce });
    const k = (names: string[], nonce = 'x') => decodeDiscoveryRequest(enc(names, nonce), nested).namesKey;
    expect(k(['a', 'b'], 'n1')).toBe(k(['a', 'b'], 'n2'));
    expect(k(['a', 'b'])).not.toBe(k(['b', 'a']));
    expect(k(['a', 'b'])).not.toBe(k(['a']));
    expect(k([])).toBe('');
  });
});

describe('route configurations spliced from cached virtual hosts', () => {
  it('decode as the generated codec encodes them, also when proxies share a route list under other domains', () => {
    const routes = [
      { name: 'canary', match: { prefix: '/v2', headers: [{ name: 'x-canary', string_match: { exact: 'true' } }] }, route: { cluster: 'outbound|9080||reviews.default.svc.cluster.local', timeout: { seconds: '5', nanos: 0 } } },
      { match: { prefix: '/' }, route: { cluster: 'outbound|9080||ratings.default.svc.cluster.local' } },
    ];
    const config = (domains: string[]) => ({
      name: '80',
      virtual_hosts: [
        { name: 'api.example.com:80', domains, routes, include_request_attempt_count: true },
        { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: 'PassthroughCluster' } }] },
      ],
      validate_clusters: { value: false },
    });
    for (const domains of [['api.example.com', 'api.example.com:80'], ['api.example.com'], ['api.example.com', 'api.example.com:80']]) {
      const rc = config(domains);
      const spliced = decodeMessage('envoy.config.route.v3.RouteConfiguration', encodeRouteConfiguration(rc));
      expect(spliced).toEqual(decodeMessage('envoy.config.route.v3.RouteConfiguration', encodeMessage('envoy.config.route.v3.RouteConfiguration', rc)));
      expect(spliced.virtual_hosts[0]!.domains).toEqual(domains);
    }
  });
});
