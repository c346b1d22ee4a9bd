import { describe, expect, it } from 'vitest';
import { policySelectorAnalyzer } from './security.ts';
import { lineOf, reviewsPlatform, run } from './test-support.ts';

const policy = (kind: string, labels: string, ns = 'default') => `apiVersion: security.istio.io/v1
kind: ${kind}
metadata:
  name: p
  namespace: ${ns}
spec:
  selector:
    matchLabels: ${labels}
`;

describe('security.SelectorAnalyzer', () => {
  it('warns about a policy whose selector matches no workload (IST0127)', () => {
    const text = policy('AuthorizationPolicy', '{app: ratings}');
    expect(run([reviewsPlatform, text], [policySelectorAnalyzer])).toEqual([
      expect.objectContaining({
        subject: 'AuthorizationPolicy default/p',
        code: 'IST0127',
        severity: 'warning',
        path: 'spec.selector.matchLabels',
        message: 'No matching workloads for this resource with the following labels: app=ratings (no Deployment, Pod or WorkloadEntry in namespace default has them, so this AuthorizationPolicy applies to nothing)',
        line: lineOf(text, 'matchLabels'),
      }),
    ]);
    expect(run([reviewsPlatform, policy('PeerAuthentication', '{app: reviews, version: v3}')], [policySelectorAnalyzer]).map((f) => f.code)).toEqual(['IST0127']);
  });

  it('accepts selectors that match, root-namespace policies matching anywhere, and namespaces without workloads in the input', () => {
    expect(run([reviewsPlatform, policy('AuthorizationPolicy', '{app: reviews}')], [policySelectorAnalyzer])).toEqual([]);
    expect(run([reviewsPlatform, policy('RequestAuthentication', '{version: v2}', 'istio-system')], [policySelectorAnalyzer])).toEqual([]);
    expect(run([reviewsPlatform, policy('AuthorizationPolicy', '{app: x}', 'other')], [policySelectorAnalyzer])).toEqual([]);
  });
});
