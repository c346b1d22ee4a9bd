import { describe, expect, it } from 'vitest';
import { names, pushFrom, router, sidecar } from './test-support.ts';
import { resolveGatewayName } from './virtual-services.ts';

function vs(name: string, namespace: string, body: string, created?: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${namespace}${created ? `, creationTimestamp: "${created}"` : ''}}
spec:
${body}`;
}

describe('resolveGatewayName', () => {
  it('resolves gateway references as Istio does', () => {
    expect(resolveGatewayName('mesh', 'shop')).toBe('mesh');
    expect(resolveGatewayName('public', 'shop')).toBe('shop/public');
    expect(resolveGatewayName('./public', 'shop')).toBe('shop/public');
    expect(resolveGatewayName('edge/public', 'shop')).toBe('edge/public');
    expect(resolveGatewayName('public.edge.svc.cluster.local', 'shop')).toBe('edge/public');
    expect(resolveGatewayName('public.edge', 'shop')).toBe('edge/public');
  });
});

describe('VirtualServices for a proxy (Istio)', () => {
  it('binds to `mesh` when no gateway is named, and to each named gateway', () => {
    const push = pushFrom([
      vs('sidecars', 'shop', '  hosts: [web]'),
      vs('both', 'shop', '  hosts: [web.example.com]\n  gateways: [public, mesh]'),
      vs('edge-only', 'shop', '  hosts: [web.example.com]\n  gateways: [edge/public]'),
    ]);
    const proxy = sidecar('shop', '10.0.0.1');
    expect(names(push.virtualServices(proxy, ['mesh']))).toEqual(['shop/both', 'shop/sidecars']);
    const gw = router('edge', '10.0.0.2', { istio: 'ingressgateway' });
    expect(names(push.virtualServices(gw, ['shop/public']))).toEqual(['shop/both']);
    expect(names(push.virtualServices(gw, ['shop/public', 'edge/public']))).toEqual(['shop/both', 'shop/edge-only']);
  });

  it('honours exportTo and lists private, then exported-to, then public VirtualServices', () => {
    const push = pushFrom([
      vs('a-public', 'other', '  hosts: [a.example.com]'),
      vs('b-private', 'shop', '  hosts: [b.example.com]\n  exportTo: ["."]'),
      vs('c-to-shop', 'other', '  hosts: [c.example.com]\n  exportTo: [shop]'),
      vs('d-nobody', 'shop', '  hosts: [d.example.com]\n  exportTo: ["~"]'),
      vs('e-own-name', 'shop', '  hosts: [e.example.com]\n  exportTo: [shop, third]'),
    ]);
    expect(names(push.virtualServices(sidecar('shop', '10.0.0.1'), ['mesh']))).toEqual(['shop/b-private', 'shop/e-own-name', 'other/c-to-shop', 'other/a-public']);
    expect(names(push.virtualServices(sidecar('other', '10.0.0.1'), ['mesh']))).toEqual(['other/a-public']);
    expect(names(push.virtualServices(sidecar('third', '10.0.0.1'), ['mesh']))).toEqual(['shop/e-own-name', 'other/a-public']);
  });

  it('orders by creation time, then name, then namespace', () => {
    const push = pushFrom([
      vs('z-old', 'b', '  hosts: [z.example.com]', '2024-01-01T00:00:00Z'),
      vs('a-new', 'a', '  hosts: [a.example.com]', '2024-03-01T00:00:00Z'),
      vs('same', 'b', '  hosts: [s.example.com]'),
      vs('same', 'a', '  hosts: [s.example.com]'),
    ]);
    expect(names(push.virtualServices(sidecar('x', '10.0.0.1'), ['mesh']))).toEqual(['a/same', 'b/same', 'b/z-old', 'a/a-new']);
  });

  it('keeps delegates (no hosts) out of the list and finds them by name', () => {
    const push = pushFrom([
      vs('root', 'shop', '  hosts: [web]\n  http:\n  - match: [{uri: {prefix: /api}}]\n    delegate: {name: api, namespace: team}'),
      vs('api', 'team', '  http:\n  - route: [{destination: {host: api.team.svc.cluster.local}}]'),
    ]);
    expect(names(push.virtualServices(sidecar('shop', '10.0.0.1'), ['mesh']))).toEqual(['shop/root']);
    expect(push.delegate('team', 'api')?.spec.http?.[0]?.route?.[0]?.destination.host).toBe('api.team.svc.cluster.local');
    expect(push.delegate('shop', 'api')).toBeUndefined();
  });
});
