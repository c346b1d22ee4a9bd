// `exportTo` as each proxy receives it: ServiceEntries (clusters), VirtualServices (routes) and
// DestinationRules (cluster policy) in namespace `b`, seen from sidecars in `a`, `b` and `c`, with
// every form Istio accepts: `.`, `*`, `~`, a namespace by name, none (everyone).
import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { defaultMeshConfig } from '../core/types.ts';
import { parseMeshConfig } from '../mesh/mesh-config.ts';
import { buildPushContext } from '../push/context.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { storeFrom } from '../registry/test-support.ts';
import { generate, pushFrom, sidecar } from './test-support.ts';

const CDS = TypeUrl.Cluster;
const RDS = TypeUrl.RouteConfiguration;

const se = (name: string, exportTo?: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: b}
spec:
  hosts: [${name}.b.svc.cluster.local]
  ${exportTo ? `exportTo: ${exportTo}` : ''}
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  location: MESH_INTERNAL
  endpoints: [{address: 10.1.0.1}]
`;

const vs = (name: string, timeout: string, exportTo: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: b}
spec:
  hosts: [shared.b.svc.cluster.local]
  exportTo: ${exportTo}
  http:
  - route: [{destination: {host: shared.b.svc.cluster.local}}]
    timeout: ${timeout}
`;

const dr = (name: string, simple: string, exportTo: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: b}
spec:
  host: shared.b.svc.cluster.local
  exportTo: ${exportTo}
  trafficPolicy: {loadBalancer: {simple: ${simple}}}
`;

const push = pushFrom([
  se('shared'),
  se('public', '["*"]'),
  se('private', '["."]'),
  se('hidden', '["~"]'),
  se('to-a', '["a"]'),
  se('star-wins', '["~", "*"]'),
  vs('for-b', '7s', '["."]'),
  vs('for-a', '3s', '["a"]'),
  vs('for-none', '9s', '["~"]'),
  dr('rr-for-a', 'ROUND_ROBIN', '["a"]'),
  dr('random-for-b', 'RANDOM', '["."]'),
]);
const proxy = (ns: string) => sidecar(`10.0.0.${ns.charCodeAt(0)}`, `app-${ns}`, { app: 'app' }, ns);

function services(ns: string): string[] {
  return [...generate(push, proxy(ns), CDS).keys()]
    .filter((n) => n.startsWith('outbound|80||'))
    .map((n) => n.slice('outbound|80||'.length).split('.')[0]!)
    .sort();
}

function sharedRoute(ns: string): string | undefined {
  const rc = generate(push, proxy(ns), RDS, ['80']).get('80');
  const vh = rc?.virtual_hosts.find((v) => v.domains.includes('shared.b.svc.cluster.local'));
  const t = vh?.routes[0]?.route?.timeout;
  return t ? `${t.seconds}s` : undefined;
}

function sharedLb(ns: string): string | undefined {
  return generate(push, proxy(ns), CDS, ['outbound|80||shared.b.svc.cluster.local']).get('outbound|80||shared.b.svc.cluster.local')?.lb_policy;
}

describe('exportTo, as proxies receive it', () => {
  it('ServiceEntries: none and `*` everyone, `.` own namespace, a name that namespace only (not its own), `~` no one, `*` beats `~`', () => {
    expect(services('a')).toEqual(['public', 'shared', 'star-wins', 'to-a']);
    expect(services('b')).toEqual(['private', 'public', 'shared', 'star-wins']);
    expect(services('c')).toEqual(['public', 'shared', 'star-wins']);
  });

  it('VirtualServices: each proxy gets the one exported to it; `~` is applied nowhere', () => {
    expect(sharedRoute('a')).toBe('3s');
    expect(sharedRoute('b')).toBe('7s');
    // No VirtualService reaches c: the default route (Istio's: timeout 0s, none).
    expect(sharedRoute('c')).toBe('0s');
  });

  it("DestinationRules: the proxy's own namespace's rule, else one exported to it by name, else none", () => {
    expect(sharedLb('a')).toBe('ROUND_ROBIN');
    expect(sharedLb('b')).toBe('RANDOM');
    expect(sharedLb('c')).toBe('LEAST_REQUEST');
  });

  it('mesh defaults (defaultServiceExportTo, defaultVirtualServiceExportTo, defaultDestinationRuleExportTo) apply to configs that give none', () => {
    const mesh = parseMeshConfig('defaultServiceExportTo: ["."]\ndefaultVirtualServiceExportTo: ["a"]\ndefaultDestinationRuleExportTo: ["~"]\n', 'mesh.yaml');
    const store = storeFrom(se('shared'), se('public', '["*"]'), vs('for-default', '4s', '[]'), dr('rr-default', 'ROUND_ROBIN', '[]'));
    const registry = new ServiceEntryRegistry(store, { ...(mesh.defaultServiceExportTo ? { defaultExportTo: mesh.defaultServiceExportTo } : {}) });
    const scoped = buildPushContext({ store, registry, mesh: { ...defaultMeshConfig, ...mesh }, version: 'test' });
    const clustersOf = (ns: string) =>
      [...generate(scoped, proxy(ns), CDS).keys()].filter((n) => n.startsWith('outbound|80||')).map((n) => n.slice('outbound|80||'.length).split('.')[0]!).sort();
    // `shared` gives no exportTo: private to b now; `public` says `*` and stays public.
    expect(clustersOf('a')).toEqual(['public']);
    expect(clustersOf('b')).toEqual(['public', 'shared']);
    // The VirtualService without exportTo goes to a only (the default): b, its own namespace, keeps the default route (with `*` it would get 4s).
    const timeout = (ns: string) => {
      const vh = generate(scoped, proxy(ns), RDS, ['80'])
        .get('80')
        ?.virtual_hosts.find((v) => v.domains.includes('shared.b.svc.cluster.local'));
      const t = vh?.routes[0]?.route?.timeout;
      return t ? `${t.seconds}s` : undefined;
    };
    expect(timeout('b')).toBe('0s');
    // The DestinationRule (default `~`) applies to no one.
    expect(generate(scoped, proxy('b'), CDS, ['outbound|80||shared.b.svc.cluster.local']).get('outbound|80||shared.b.svc.cluster.local')?.lb_policy).toBe('LEAST_REQUEST');
    expect(() => parseMeshConfig('defaultServiceExportTo: "."\n', 'mesh.yaml')).toThrow(/defaultServiceExportTo must be a list/);
  });
});
