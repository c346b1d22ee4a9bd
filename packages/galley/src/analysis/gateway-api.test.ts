import { describe, expect, it } from 'vitest';
import { httpRouteBackendAnalyzer } from './gateway-api.ts';
import { lineOf, reviewsPlatform, run } from './test-support.ts';

const route = (backends: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs:
  - name: public
  rules:
  - backendRefs:
${backends}`;

describe('gatewayapi.BackendRefAnalyzer', () => {
  it('reports a backendRef Service that does not exist (IST0101)', () => {
    const text = route('    - {name: reviews, port: 9080}\n    - name: ratings\n      namespace: prod\n      port: 9080\n');
    expect(run([reviewsPlatform, text], [httpRouteBackendAnalyzer])).toEqual([
      expect.objectContaining({
        subject: 'HTTPRoute default/reviews',
        code: 'IST0101',
        severity: 'error',
        path: 'spec.rules[0].backendRefs[1].name',
        message: 'Referenced Service not found: "prod/ratings" (the backendRef names no Service in the input)',
        line: lineOf(text, 'name: ratings'),
      }),
    ]);
  });

  it('reports a port the Service does not expose', () => {
    const text = route('    - {name: reviews, port: 80}\n');
    expect(run([reviewsPlatform, text], [httpRouteBackendAnalyzer]).map((f) => [f.path, f.message])).toEqual([
      ['spec.rules[0].backendRefs[0].port', 'Referenced host:port not found: "reviews.default.svc.cluster.local:80" (the Service default/reviews exposes port 9080)'],
    ]);
  });

  it('accepts existing Services and backends of other kinds', () => {
    expect(run([reviewsPlatform, route('    - {name: reviews, port: 9080}\n    - {group: example.com, kind: Bucket, name: b}\n')], [httpRouteBackendAnalyzer])).toEqual([]);
  });
});
