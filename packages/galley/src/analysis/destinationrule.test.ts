import { describe, expect, it } from 'vitest';
import { destinationRuleHostAnalyzer, subsetSelectsPodsAnalyzer } from './destinationrule.ts';
import { lineOf, reviewsPlatform, run } from './test-support.ts';

const rule = (host: string, subsets = '') => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: ${host}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}${subsets}
`;

describe('destinationrule.HostAnalyzer', () => {
  it('reports a host no Service or ServiceEntry defines (IST0101)', () => {
    const text = rule('reveiws');
    expect(run([reviewsPlatform, text], [destinationRuleHostAnalyzer])).toEqual([
      expect.objectContaining({
        subject: 'DestinationRule default/reviews',
        code: 'IST0101',
        severity: 'error',
        path: 'spec.host',
        message: 'Referenced host not found: "reveiws.default.svc.cluster.local" (no Service or ServiceEntry defines it)',
        line: lineOf(text, 'host:'),
      }),
    ]);
  });

  it('accepts Service hosts in any spelling, ServiceEntry hosts and wildcards', () => {
    for (const host of ['reviews', 'reviews.default', 'reviews.default.svc.cluster.local', '"*.example.com"']) {
      expect(run([reviewsPlatform, rule(host)], [destinationRuleHostAnalyzer]), host).toEqual([]);
    }
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ext
spec:
  hosts: [example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
`;
    expect(run([se, rule('example.com')], [destinationRuleHostAnalyzer])).toEqual([]);
  });
});

describe('destinationrule.SubsetSelectPodAnalyzer', () => {
  const subsets = `
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v3
    labels: {version: v3}`;

  it('warns about a subset whose labels select no workload of the service (IST0173)', () => {
    const text = rule('reviews', subsets);
    expect(run([reviewsPlatform, text], [subsetSelectsPodsAnalyzer])).toEqual([
      expect.objectContaining({
        code: 'IST0173',
        severity: 'warning',
        path: 'spec.subsets[1].labels',
        message:
          'The subset "v3" (version=v3) selects no workload of reviews.default.svc.cluster.local, so traffic routed to it fails with 503 (workloads of Service default/reviews have version: v1, v2)',
        line: lineOf(text, 'labels: {version: v3}'),
      }),
    ]);
  });

  it('stays quiet when the input does not show the workloads of the service', () => {
    const serviceOnly = reviewsPlatform.split('---')[0]!;
    expect(run([serviceOnly, rule('reviews', subsets)], [subsetSelectsPodsAnalyzer])).toEqual([]);
  });

  it('checks ServiceEntry subsets against its WorkloadEntries', () => {
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: vms
spec:
  hosts: [legacy.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector:
    labels: {app: legacy}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-1
spec:
  address: 10.0.0.1
  labels: {app: legacy, version: v1}
`;
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: legacy
spec:
  host: legacy.internal
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
`;
    const fs = run([se, dr], [subsetSelectsPodsAnalyzer]);
    expect(fs.map((f) => [f.code, f.path])).toEqual([['IST0173', 'spec.subsets[1].labels']]);
  });
});
