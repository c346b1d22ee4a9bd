// Helpers for the push context tests: proxies made the way the server makes them, from xDS nodes.
import { nodeId } from '@weft/mesh';
import type { MeshConfig, Proxy as MeshProxy, PushContext } from '../core/types.ts';
import { proxyFromNode } from '../proxy/node.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { storeFrom } from '../registry/test-support.ts';
import { buildPushContext } from './context.ts';

export function sidecar(namespace: string, ip: string, labels: Record<string, string> = {}, pod = 'pod'): MeshProxy {
  return proxyFromNode({ id: nodeId({ type: 'sidecar', ip, pod, namespace }), metadata: { LABELS: labels } });
}

export function router(namespace: string, ip: string, labels: Record<string, string>, pod = 'gateway'): MeshProxy {
  return proxyFromNode({ id: nodeId({ type: 'router', ip, pod, namespace }), metadata: { LABELS: labels } });
}

/** A push context over a store loaded from YAML texts, with a ServiceEntry registry on the same store. */
export function pushFrom(texts: string[], mesh?: MeshConfig): PushContext {
  const store = storeFrom(...texts);
  const registry = new ServiceEntryRegistry(store);
  const push = buildPushContext(mesh ? { store, registry, version: 'test', mesh } : { store, registry, version: 'test' });
  registry.close();
  return push;
}

/** `namespace/name` of configs, for compact assertions. */
export function names(configs: readonly { metadata: { namespace: string; name: string } }[]): string[] {
  return configs.map((c) => `${c.metadata.namespace}/${c.metadata.name}`);
}

/** A ServiceEntry for `host` in `namespace` (MESH_INTERNAL, one http port), optionally with exportTo. */
export function serviceEntry(name: string, namespace: string, host: string, opts: { exportTo?: string[]; port?: number; address?: string } = {}): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  hosts: ["${host}"]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${opts.port ?? 80}, name: http}]
  endpoints: [{address: ${opts.address ?? '10.0.0.1'}}]
${opts.exportTo ? `  exportTo: ${JSON.stringify(opts.exportTo)}\n` : ''}`;
}
