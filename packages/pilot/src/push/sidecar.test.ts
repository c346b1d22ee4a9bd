import { describe, expect, it } from 'vitest';
import { defaultMeshConfig } from '../core/types.ts';
import { names, pushFrom, router, serviceEntry, sidecar } from './test-support.ts';

const services = [
  serviceEntry('web', 'shop', 'web.shop.svc.cluster.local'),
  serviceEntry('cart', 'shop', 'cart.shop.svc.cluster.local', { port: 8080 }),
  serviceEntry('db', 'data', 'db.data.svc.cluster.local', { port: 5432 }),
  serviceEntry('private-db', 'data', 'secret.data.svc.cluster.local', { exportTo: ['.'] }),
  serviceEntry('telemetry', 'istio-system', 'telemetry.istio-system.svc.cluster.local'),
  serviceEntry('ext', 'shop', 'api.example.com', { port: 443 }),
];

function sidecarResource(name: string, namespace: string, body: string): string {
  return `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${body}`;
}

const hostsOf = (s: { services: readonly { hostname: string }[] }) => s.services.map((x) => x.hostname).sort();

describe('Sidecar scoping (Istio)', () => {
  it('lets a proxy see every service exported to its namespace when there is no Sidecar', () => {
    const push = pushFrom(services);
    expect(hostsOf(push.sidecarScope(sidecar('shop', '10.0.0.9')))).toEqual([
      'api.example.com',
      'cart.shop.svc.cluster.local',
      'db.data.svc.cluster.local',
      'telemetry.istio-system.svc.cluster.local',
      'web.shop.svc.cluster.local',
    ]);
    expect(hostsOf(push.sidecarScope(sidecar('data', '10.0.0.9')))).toContain('secret.data.svc.cluster.local');
  });

  it('restricts a namespace to its Sidecar egress hosts: `./*`, `ns/*`, `*/host`', () => {
    const push = pushFrom([
      ...services,
      sidecarResource('default', 'shop', '  egress:\n  - hosts: ["./*", "istio-system/*", "*/db.data.svc.cluster.local", "*/secret.data.svc.cluster.local"]'),
    ]);
    const scope = push.sidecarScope(sidecar('shop', '10.0.0.9'));
    expect(scope.config?.metadata.name).toBe('default');
    // secret.data is exported only to data, so the import cannot reach it.
    expect(hostsOf(scope)).toEqual([
      'api.example.com',
      'cart.shop.svc.cluster.local',
      'db.data.svc.cluster.local',
      'telemetry.istio-system.svc.cluster.local',
      'web.shop.svc.cluster.local',
    ]);
    const narrow = pushFrom([...services, sidecarResource('default', 'shop', '  egress:\n  - hosts: ["./web.shop.svc.cluster.local", "~/*"]')]);
    expect(hostsOf(narrow.sidecarScope(sidecar('shop', '10.0.0.9')))).toEqual(['web.shop.svc.cluster.local']);
  });

  it('gives an explicit `ns/...` import for a namespace precedence over `*/...`', () => {
    const push = pushFrom([...services, sidecarResource('default', 'shop', '  egress:\n  - hosts: ["*/*", "data/nothing.example.com"]')]);
    const hosts = hostsOf(push.sidecarScope(sidecar('shop', '10.0.0.9')));
    expect(hosts).not.toContain('db.data.svc.cluster.local');
    expect(hosts).toContain('web.shop.svc.cluster.local');
  });

  it('prefers a workload-selecting Sidecar, then the namespace Sidecar, then the root namespace Sidecar', () => {
    const push = pushFrom([
      ...services,
      sidecarResource('root', 'istio-system', '  egress:\n  - hosts: ["./*", "istio-system/*"]\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}'),
      sidecarResource('shop-default', 'shop', '  egress:\n  - hosts: ["./*"]'),
      sidecarResource('web-only', 'shop', '  workloadSelector: {labels: {app: web}}\n  egress:\n  - hosts: ["data/*"]'),
    ]);
    const web = push.sidecarScope(sidecar('shop', '10.0.0.1', { app: 'web' }));
    expect(web.config?.metadata.name).toBe('web-only');
    // `data/*` cannot reach secret.data, which data exports only to itself.
    expect(hostsOf(web)).toEqual(['db.data.svc.cluster.local']);
    const cart = push.sidecarScope(sidecar('shop', '10.0.0.2', { app: 'cart' }));
    expect(cart.config?.metadata.name).toBe('shop-default');
    expect(cart.outboundTrafficPolicy).toBe('ALLOW_ANY');
    // In data (no Sidecar of its own) the root Sidecar applies, `.` meaning data.
    const db = push.sidecarScope(sidecar('data', '10.0.0.3'));
    expect(db.config?.metadata.name).toBe('root');
    expect(hostsOf(db)).toEqual(['db.data.svc.cluster.local', 'secret.data.svc.cluster.local', 'telemetry.istio-system.svc.cluster.local']);
    expect(db.outboundTrafficPolicy).toBe('REGISTRY_ONLY');
  });

  it('takes the outbound traffic policy from the mesh when the Sidecar gives none', () => {
    const push = pushFrom([...services], { ...defaultMeshConfig, outboundTrafficPolicy: 'REGISTRY_ONLY' });
    expect(push.sidecarScope(sidecar('shop', '10.0.0.9')).outboundTrafficPolicy).toBe('REGISTRY_ONLY');
  });

  it('keeps only the listener port of services imported by an egress listener with a port', () => {
    const twoPorts = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: multi, namespace: shop}
spec:
  hosts: [multi.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http}, {number: 9090, name: http-metrics}, {number: 5000, name: tcp}]
`;
    const push = pushFrom([
      twoPorts,
      sidecarResource('default', 'shop', '  egress:\n  - port: {number: 9090, name: http, protocol: HTTP}\n    hosts: ["./*"]\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["./*"]'),
    ]);
    const multi = push.sidecarScope(sidecar('shop', '10.0.0.9')).services.find((s) => s.hostname === 'multi.shop.svc.cluster.local')!;
    expect(multi.ports.map((p) => p.port)).toEqual([9090, 80]);
  });

  it('imports the VirtualServices of the egress hosts, and the services they route to', () => {
    const vs = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web-routes, namespace: shop}
spec:
  hosts: [web]
  http:
  - route: [{destination: {host: db.data.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: data-routes, namespace: data}
spec:
  hosts: [db]
  http:
  - route: [{destination: {host: db}}]
`;
    const push = pushFrom([...services, vs, sidecarResource('default', 'shop', '  egress:\n  - hosts: ["./web.shop.svc.cluster.local"]')]);
    const proxy = sidecar('shop', '10.0.0.9');
    expect(hostsOf(push.sidecarScope(proxy))).toEqual(['db.data.svc.cluster.local', 'web.shop.svc.cluster.local']);
    expect(names(push.virtualServices(proxy, ['mesh']))).toEqual(['shop/web-routes']);
    // Without a Sidecar, every visible mesh VirtualService applies.
    expect(names(pushFrom([...services, vs]).virtualServices(proxy, ['mesh']))).toEqual(['data/data-routes', 'shop/web-routes']);
  });

  it('ignores Sidecars for gateways: they see everything exported to their namespace', () => {
    const push = pushFrom([...services, sidecarResource('default', 'shop', '  egress:\n  - hosts: ["./web.shop.svc.cluster.local"]')]);
    const gw = push.sidecarScope(router('shop', '10.0.0.50', { istio: 'ingressgateway' }));
    expect(gw.config).toBeUndefined();
    expect(hostsOf(gw)).toHaveLength(5);
  });
});
