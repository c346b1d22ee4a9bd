import { describe, expect, it } from 'vitest';
import { sidecarEgressHostAnalyzer } from './sidecar.ts';
import { lineOf, reviewsPlatform, run } from './test-support.ts';

const sidecar = (hosts: string) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: shop
spec:
  egress:
  - hosts: ${hosts}
`;

describe('sidecar.EgressHostAnalyzer', () => {
  it('reports an egress host no Service in the named namespace defines (IST0101)', () => {
    const text = sidecar('["./*", "default/ratings.default.svc.cluster.local"]');
    expect(run([reviewsPlatform, text], [sidecarEgressHostAnalyzer])).toEqual([
      expect.objectContaining({
        subject: 'Sidecar shop/default',
        code: 'IST0101',
        path: 'spec.egress[0].hosts[1]',
        message: 'Referenced egress host not found: "default/ratings.default.svc.cluster.local" (no Service or ServiceEntry in namespace default defines ratings.default.svc.cluster.local)',
        line: lineOf(text, 'hosts'),
      }),
    ]);
  });

  it('accepts existing hosts, wildcards, and namespaces the input says nothing about', () => {
    expect(run([reviewsPlatform, sidecar('["./*", "istio-system/*", "default/reviews.default.svc.cluster.local", "default/*.example.com", "*/anything.example.com", "prod/ratings.prod.svc.cluster.local"]')], [sidecarEgressHostAnalyzer])).toEqual([]);
  });
});
