import { describe, expect, it } from 'vitest';
import { clusterKey, inboundClusterKey, outboundClusterKey, parseClusterKey, sniClusterKey } from './cluster-key.ts';
import { isSpecialCluster } from './names.ts';

describe('cluster keys', () => {
  it('builds Istio’s names', () => {
    expect(outboundClusterKey('reviews.default.svc.cluster.local', 9080, 'v1')).toBe('outbound|9080|v1|reviews.default.svc.cluster.local');
    expect(outboundClusterKey('reviews.default.svc.cluster.local', 9080)).toBe('outbound|9080||reviews.default.svc.cluster.local');
    expect(inboundClusterKey(9080)).toBe('inbound|9080||');
    expect(clusterKey('inbound', 80, 'v2', 'a')).toBe('inbound|80|v2|a');
    expect(sniClusterKey('reviews.default.svc.cluster.local', 9080, 'v1')).toBe('outbound_.9080_.v1_.reviews.default.svc.cluster.local');
  });

  it('parses what it builds', () => {
    expect(parseClusterKey('outbound|9080|v1|reviews.default.svc.cluster.local')).toEqual({ direction: 'outbound', port: 9080, subset: 'v1', hostname: 'reviews.default.svc.cluster.local' });
    expect(parseClusterKey('outbound|9080||*.example.com')).toEqual({ direction: 'outbound', port: 9080, subset: '', hostname: '*.example.com' });
    expect(parseClusterKey(inboundClusterKey(15021))).toEqual({ direction: 'inbound', port: 15021, subset: '', hostname: '' });
  });

  it('gives undefined for other names instead of a half-parsed key', () => {
    for (const name of ['PassthroughCluster', 'BlackHoleCluster', 'outbound|x|v1|a', 'outbound|0||a', 'outbound|70000||a', 'sideways|80||a', 'outbound|80|a', 'inbound|http|9080', ''])
      expect(parseClusterKey(name), name).toBeUndefined();
  });

  it('knows the special clusters', () => {
    expect(isSpecialCluster('PassthroughCluster')).toBe(true);
    expect(isSpecialCluster('InboundPassthroughClusterIpv6')).toBe(true);
    expect(isSpecialCluster('outbound|80||a')).toBe(false);
  });
});
