import { describe, expect, it } from 'vitest';
import { pushFrom, serviceEntry, sidecar } from './test-support.ts';

const host = 'svc.backend.svc.cluster.local';

function dr(name: string, namespace: string, ruleHost: string, extra = ''): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  host: "${ruleHost}"
${extra}`;
}

const backend = serviceEntry('svc', 'backend', host);
const from = (namespace: string, labels: Record<string, string> = {}) => sidecar(namespace, '10.9.9.9', labels);

describe('DestinationRule precedence (Istio)', () => {
  it("prefers the proxy's namespace, then the service's namespace, then the root namespace", () => {
    const rules = [dr('in-root', 'istio-system', host), dr('in-service-ns', 'backend', host), dr('in-client-ns', 'frontend', host)];
    expect(pushFrom([backend, ...rules]).destinationRule(from('frontend'), host)?.metadata.name).toBe('in-client-ns');
    expect(pushFrom([backend, ...rules]).destinationRule(from('other'), host)?.metadata.name).toBe('in-service-ns');
    expect(pushFrom([backend, rules[0]!]).destinationRule(from('other'), host)?.metadata.name).toBe('in-root');
  });

  it('resolves short hosts in the rule namespace: `svc` in backend is the backend service', () => {
    const push = pushFrom([backend, dr('short', 'backend', 'svc'), dr('short-elsewhere', 'frontend', 'svc')]);
    // In frontend, `svc` means svc.frontend.svc.cluster.local, which is another host.
    expect(push.destinationRule(from('frontend'), host)?.metadata.name).toBe('short');
  });

  it('lets an exact host beat a wildcard in the same namespace, while namespace order beats specificity', () => {
    const other = serviceEntry('x', 'backend', 'x.backend.svc.cluster.local');
    const push = pushFrom([backend, other, dr('wild', 'backend', '*.backend.svc.cluster.local'), dr('exact', 'backend', host), dr('client-wild', 'frontend', '*.svc.cluster.local')]);
    expect(push.destinationRule(from('other'), host)?.metadata.name).toBe('exact');
    expect(push.destinationRule(from('other'), 'x.backend.svc.cluster.local')?.metadata.name).toBe('wild');
    expect(push.destinationRule(from('frontend'), host)?.metadata.name).toBe('client-wild');
  });

  it('picks the most specific wildcard', () => {
    const push = pushFrom([backend, dr('broad', 'backend', '*.cluster.local'), dr('narrow', 'backend', '*.svc.cluster.local')]);
    expect(push.destinationRule(from('other'), host)?.metadata.name).toBe('narrow');
  });

  it('honours exportTo: a rule exported to `.` serves only its own namespace', () => {
    const rules = [dr('private', 'backend', host, '  exportTo: ["."]'), dr('to-frontend', 'istio-system', host, '  exportTo: [frontend]'), dr('root-public', 'istio-system', '*.svc.cluster.local')];
    const push = pushFrom([backend, ...rules]);
    expect(push.destinationRule(from('backend'), host)?.metadata.name).toBe('private');
    expect(push.destinationRule(from('frontend'), host)?.metadata.name).toBe('to-frontend');
    expect(push.destinationRule(from('other'), host)?.metadata.name).toBe('root-public');
  });

  it('applies a rule with a workloadSelector only to matching proxies of its namespace', () => {
    const selecting = dr('canary-clients', 'frontend', host, '  workloadSelector: {matchLabels: {track: canary}}\n  subsets: [{name: canary, labels: {v: "2"}}]');
    const push = pushFrom([backend, selecting, dr('everyone', 'frontend', host), dr('service-default', 'backend', host)]);
    expect(push.destinationRule(from('frontend', { track: 'canary', app: 'web' }), host)?.metadata.name).toBe('canary-clients');
    expect(push.destinationRule(from('frontend', { app: 'web' }), host)?.metadata.name).toBe('everyone');
    // Never exported: proxies elsewhere with the same labels do not get it.
    expect(push.destinationRule(from('other', { track: 'canary' }), host)?.metadata.name).toBe('service-default');
    // With no catch-all in the namespace, non-matching proxies fall through to the next level.
    const onlySelecting = pushFrom([backend, selecting, dr('service-default', 'backend', host)]);
    expect(onlySelecting.destinationRule(from('frontend', { app: 'web' }), host)?.metadata.name).toBe('service-default');
  });

  it('lets a proxy in the root namespace prefer the service namespace over public root rules', () => {
    const push = pushFrom([backend, dr('root-public', 'istio-system', host), dr('service-default', 'backend', host), dr('root-private', 'istio-system', 'other.example.com', '  exportTo: ["."]')]);
    const gatewayInRoot = from('istio-system');
    expect(push.destinationRule(gatewayInRoot, host)?.metadata.name).toBe('service-default');
    expect(push.destinationRule(gatewayInRoot, 'other.example.com')?.metadata.name).toBe('root-private');
    expect(push.destinationRule(from('frontend'), 'other.example.com')).toBeUndefined();
  });

  it('merges rules for the same host in a namespace: subsets added, the first traffic policy kept', () => {
    const push = pushFrom([
      backend,
      dr('a-first', 'backend', host, '  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n  subsets: [{name: v1, labels: {version: v1}}]'),
      dr('b-second', 'backend', host, '  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets: [{name: v1, labels: {version: other}}, {name: v2, labels: {version: v2}}]'),
    ]);
    const rule = push.destinationRule(from('other'), host)!;
    expect(rule.metadata.name).toBe('a-first');
    expect(rule.spec.subsets).toEqual([
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ]);
    expect(rule.spec.trafficPolicy?.loadBalancer).toEqual({ simple: 'ROUND_ROBIN' });
  });

  it('orders by creation time before name', () => {
    const push = pushFrom([
      backend,
      `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a-newer, namespace: backend, creationTimestamp: "2024-05-01T00:00:00Z"}
spec: {host: ${host}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: z-older, namespace: backend, creationTimestamp: "2024-01-01T00:00:00Z"}
spec: {host: ${host}, trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}}
`,
    ]);
    const rule = push.destinationRule(from('other'), host)!;
    expect(rule.metadata.name).toBe('z-older');
    expect(rule.spec.trafficPolicy?.loadBalancer).toEqual({ simple: 'LEAST_REQUEST' });
  });
});
