import { describe, expect, it } from 'vitest';
import { names, pushFrom, router, sidecar } from './test-support.ts';

function pa(name: string, namespace: string, body: string, created?: string): string {
  return `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: ${namespace}${created ? `, creationTimestamp: "${created}"` : ''}}
spec:
${body}`;
}

function ap(name: string, namespace: string, body: string): string {
  return `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${body}`;
}

const reviews = sidecar('default', '10.0.0.1', { app: 'reviews', version: 'v1' });
const ratings = sidecar('default', '10.0.0.2', { app: 'ratings' });
const elsewhere = sidecar('prod', '10.0.0.3', { app: 'reviews' });

describe('PeerAuthentication merging (Istio)', () => {
  it('is PERMISSIVE when no policy exists', () => {
    expect(pushFrom([]).peerAuthentication(reviews)).toEqual({ mode: 'PERMISSIVE', portLevel: new Map(), sources: [] });
  });

  it('lets the namespace override the mesh, and the workload override both', () => {
    const push = pushFrom([
      pa('mesh', 'istio-system', '  mtls: {mode: STRICT}'),
      pa('ns', 'default', '  mtls: {mode: DISABLE}'),
      pa('reviews', 'default', '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: PERMISSIVE}'),
    ]);
    const r = push.peerAuthentication(reviews);
    expect(r.mode).toBe('PERMISSIVE');
    expect(names(r.sources)).toEqual(['default/reviews', 'default/ns', 'istio-system/mesh']);
    expect(push.peerAuthentication(ratings).mode).toBe('DISABLE');
    expect(push.peerAuthentication(elsewhere).mode).toBe('STRICT');
  });

  it('inherits from the level above when a mode is UNSET or absent', () => {
    const push = pushFrom([
      pa('mesh', 'istio-system', '  mtls: {mode: STRICT}'),
      pa('ns', 'default', '  mtls: {mode: UNSET}'),
      pa('reviews', 'default', '  selector: {matchLabels: {app: reviews}}'),
    ]);
    expect(push.peerAuthentication(reviews).mode).toBe('STRICT');
    expect(push.peerAuthentication(ratings).mode).toBe('STRICT');
  });

  it('takes port-level modes from the workload policy only, an UNSET port inheriting the workload mode', () => {
    const push = pushFrom([
      pa('ns', 'default', '  mtls: {mode: STRICT}\n  portLevelMtls: {"8080": {mode: DISABLE}}'),
      pa('reviews', 'default', '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: PERMISSIVE}\n  portLevelMtls:\n    "9080": {mode: DISABLE}\n    "9090": {mode: UNSET}'),
    ]);
    const r = push.peerAuthentication(reviews);
    expect(r.mode).toBe('PERMISSIVE');
    expect([...r.portLevel]).toEqual([
      [9080, 'DISABLE'],
      [9090, 'PERMISSIVE'],
    ]);
    expect(push.peerAuthentication(ratings).portLevel.size).toBe(0);
  });

  it('ignores workload policies in the root namespace and picks the oldest policy of a level', () => {
    const push = pushFrom([
      pa('root-selecting', 'istio-system', '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: DISABLE}'),
      pa('a-newer', 'default', '  mtls: {mode: DISABLE}', '2024-06-01T00:00:00Z'),
      pa('b-older', 'default', '  mtls: {mode: STRICT}', '2024-01-01T00:00:00Z'),
    ]);
    const r = push.peerAuthentication(reviews);
    expect(r.mode).toBe('STRICT');
    expect(names(r.sources)).toEqual(['default/b-older']);
  });

  it('uses the labels of the workload behind the proxy when its agent sent none', () => {
    const push = pushFrom([
      `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 10.0.0.1, labels: {app: reviews}}
`,
      pa('reviews', 'default', '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: STRICT}'),
    ]);
    expect(push.peerAuthentication(sidecar('default', '10.0.0.1')).mode).toBe('STRICT');
    expect(push.peerAuthentication(sidecar('default', '10.0.0.99')).mode).toBe('PERMISSIVE');
  });
});

describe('AuthorizationPolicy selection (Istio)', () => {
  const policies = [
    ap('mesh-deny', 'istio-system', '  action: DENY\n  rules: [{from: [{source: {namespaces: [blocked]}}]}]'),
    ap('mesh-reviews-audit', 'istio-system', '  selector: {matchLabels: {app: reviews}}\n  action: AUDIT\n  rules: [{}]'),
    ap('ns-allow', 'default', '  rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}}]}]'),
    ap('reviews-only', 'default', '  selector: {matchLabels: {app: reviews}}\n  action: ALLOW\n  rules: [{}]'),
    ap('ext-authz', 'default', '  selector: {matchLabels: {app: ratings}}\n  action: CUSTOM\n  provider: {name: opa}\n  rules: [{}]'),
    ap('targets-gateway', 'default', '  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: web}]\n  action: DENY\n  rules: [{}]'),
  ];
  const push = pushFrom(policies);

  it('applies root namespace policies mesh-wide (or where their selector matches) and namespace policies in their namespace', () => {
    const r = push.authorization(reviews);
    expect(names(r.deny)).toEqual(['istio-system/mesh-deny']);
    expect(names(r.audit)).toEqual(['istio-system/mesh-reviews-audit']);
    expect(names(r.allow)).toEqual(['default/ns-allow', 'default/reviews-only']);
    expect(r.custom).toEqual([]);
    const t = push.authorization(ratings);
    expect(names(t.allow)).toEqual(['default/ns-allow']);
    expect(names(t.custom)).toEqual(['default/ext-authz']);
    expect(t.audit).toEqual([]);
    const p = push.authorization(elsewhere);
    expect(names(p.deny)).toEqual(['istio-system/mesh-deny']);
    expect(names(p.audit)).toEqual(['istio-system/mesh-reviews-audit']);
    expect(p.allow).toEqual([]);
  });

  it('attaches targetRef policies to the Gateway API gateway they name, and never to sidecars', () => {
    const gw = router('default', '10.0.0.50', { 'gateway.networking.k8s.io/gateway-name': 'web' });
    const r = push.authorization(gw);
    expect(names(r.deny)).toEqual(['istio-system/mesh-deny', 'default/targets-gateway']);
    // Selector policies still apply to Gateway API gateways when they have no targetRefs.
    expect(names(r.allow)).toEqual(['default/ns-allow']);
    const other = router('default', '10.0.0.51', { 'gateway.networking.k8s.io/gateway-name': 'admin' });
    expect(names(push.authorization(other).deny)).toEqual(['istio-system/mesh-deny']);
  });

  it('attaches a targetRef to an Istio Gateway to the routers that Gateway selects', () => {
    const withGateway = pushFrom([
      `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`,
      ap('edge-deny', 'edge', '  targetRefs: [{group: networking.istio.io, kind: Gateway, name: public}]\n  action: DENY\n  rules: [{}]'),
    ]);
    const ingress = router('istio-system', '10.0.0.60', { istio: 'ingressgateway' });
    expect(names(withGateway.gateways(ingress))).toEqual(['edge/public']);
    expect(names(withGateway.authorization(ingress).deny)).toEqual(['edge/edge-deny']);
    expect(withGateway.authorization(router('istio-system', '10.0.0.61', { istio: 'egressgateway' })).deny).toEqual([]);
  });
});
