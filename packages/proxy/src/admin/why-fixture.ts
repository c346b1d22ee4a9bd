// Test fixture (tests only; not exported from the package): the xDS pilot really generates for a
// BookInfo sidecar from examples/bookinfo (all four types, through the Envoy protos), the proxy's
// own cluster and listener managers over it, and /debug/why's source on top.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Config, defaultKindRegistry, loadText, MemoryConfigStore } from '@weft/model';
import { buildPushContext, defaultMeshConfig, envoyGenerators, proxyFromNode, ServiceEntryRegistry } from '@weft/pilot';
import { decodeAny, decodeMessage, encodeMessage, type HttpConnectionManager__Output, TypeUrl } from '@weft/xds';
import { createClusterManager, type WeftClusterManager } from '../cluster/manager.ts';
import type { XdsSnapshot } from '../core/types.ts';
import { ListenerManager } from '../listener/manager.ts';
import { createHttpRouting } from '../runtime/routing.ts';
import type { WhySource } from './why.ts';

const examples = new URL('../../../../examples/bookinfo/', import.meta.url);
export const bookinfoFile = (path: string) => readFileSync(fileURLToPath(new URL(path, examples)), 'utf8');

const messages: Record<string, string> = {
  [TypeUrl.Listener]: 'envoy.config.listener.v3.Listener',
  [TypeUrl.RouteConfiguration]: 'envoy.config.route.v3.RouteConfiguration',
  [TypeUrl.Cluster]: 'envoy.config.cluster.v3.Cluster',
  [TypeUrl.ClusterLoadAssignment]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};

const nodes = {
  productpage: { id: 'sidecar~127.0.0.10~productpage-v1.default~default.svc.cluster.local', metadata: { LABELS: { app: 'productpage', version: 'v1' }, NAMESPACE: 'default' } },
  ingress: { id: 'router~127.0.0.100~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local', metadata: { LABELS: { istio: 'ingressgateway' }, NAMESPACE: 'istio-system' } },
};

/** What pilot sends productpage-v1's sidecar (127.0.0.10), or the ingress gateway, with BookInfo's local platform YAML plus `networking` files (or YAML text). */
export function bookinfoSnapshot(networking: readonly string[], node: keyof typeof nodes = 'productpage'): XdsSnapshot {
  const store = new MemoryConfigStore();
  const texts = [bookinfoFile('platform/local/bookinfo.yaml'), ...networking.map((n) => (n.includes('\n') ? n : bookinfoFile(`networking/${n}`)))];
  texts.forEach((text, i) => {
    const r = loadText(text, `bookinfo-${i}.yaml`, { registry: defaultKindRegistry() });
    for (const x of r.resources) if (x.config) store.upsert(x.config as Config);
  });
  const push = buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: defaultMeshConfig, version: 'test' });
  const proxy = proxyFromNode(nodes[node]);
  const gen = <T>(typeUrl: string, names?: string[]): Map<string, T> => {
    const out = new Map<string, T>();
    for (const r of envoyGenerators[typeUrl]!(push, proxy, { typeUrl, ...(names ? { names } : {}) })) {
      out.set(r.name, decodeMessage(messages[typeUrl]!, encodeMessage(messages[typeUrl]!, r.resource as Record<string, unknown>)) as T);
    }
    return out;
  };
  const listeners = gen<XdsSnapshot['listeners'] extends ReadonlyMap<string, infer L> ? L : never>(TypeUrl.Listener);
  const clusters = gen<XdsSnapshot['clusters'] extends ReadonlyMap<string, infer C> ? C : never>(TypeUrl.Cluster);
  const edsNames = [...clusters.values()].filter((c) => c.type === 'EDS').map((c) => c.eds_cluster_config?.service_name || c.name);
  const endpoints = gen<XdsSnapshot['endpoints'] extends ReadonlyMap<string, infer E> ? E : never>(TypeUrl.ClusterLoadAssignment, edsNames);
  const routeNames = new Set<string>();
  for (const l of listeners.values()) {
    for (const fc of l.filter_chains) {
      for (const f of fc.filters) {
        const any = f.typed_config;
        if (any?.type_url !== TypeUrl.HttpConnectionManager) continue;
        const hcm: HttpConnectionManager__Output = decodeAny(any, TypeUrl.HttpConnectionManager);
        if (hcm.rds?.route_config_name) routeNames.add(hcm.rds.route_config_name);
      }
    }
  }
  const routes = gen<XdsSnapshot['routes'] extends ReadonlyMap<string, infer R> ? R : never>(TypeUrl.RouteConfiguration, [...routeNames]);
  return { versions: {}, listeners, routes, clusters, endpoints, secrets: new Map() };
}

export interface WhyFixture {
  source: WhySource;
  clusters: WeftClusterManager;
  listeners: ListenerManager;
}

/** The proxy's own managers over `snap` (nothing bound: listeners are only asked where requests go). */
export function whyFixture(snap: XdsSnapshot, mode: 'local' | 'capture' | 'gateway' = 'local', random: () => number = Math.random): WhyFixture {
  const clusters = createClusterManager({ random });
  clusters.update(snap);
  const listeners = new ListenerManager({ kind: mode === 'gateway' ? 'router' : 'sidecar', mode: mode === 'gateway' ? 'local' : mode, clusters, routing: createHttpRouting(clusters), ...(mode === 'local' ? { bindAddress: '127.0.0.10' } : {}) });
  return {
    clusters,
    listeners,
    source: { snapshot: snap, target: (s, a, p, l) => listeners.outboundTarget(s, a, p, l), clusters, sourceAddress: '127.0.0.10' },
  };
}
