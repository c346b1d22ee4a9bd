// Helpers for the translation tests: a real push context (ServiceEntry registry + buildPushContext)
// from YAML, proxies as their xDS nodes describe them, and generated resources put through the
// real Envoy protos (encode, then decode), so a test sees what a proxy would receive.
import { nodeId } from '@weft/mesh';
import { decodeAny, decodeMessage, encodeMessage, messageNameOf, type XdsOutput } from '@weft/xds';
import { defaultMeshConfig, type MeshConfig, type Proxy as MeshProxy, type PushContext } from '../core/types.ts';
import { proxyFromNode } from '../proxy/node.ts';
import { buildPushContext } from '../push/context.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { bookinfo, storeFrom } from '../registry/test-support.ts';
import { envoyGenerators, grpcGenerators } from './index.ts';

export { bookinfo };

/** The local BookInfo services and instances (ServiceEntries + WorkloadEntries). */
export const bookinfoPlatform = () => bookinfo('platform/local/bookinfo.yaml');
export const networking = (file: string) => bookinfo(`networking/${file}`);

export function pushFrom(texts: readonly string[], mesh: Partial<MeshConfig> = {}): PushContext {
  const store = storeFrom(...texts);
  const registry = new ServiceEntryRegistry(store);
  return buildPushContext({ store, registry, mesh: { ...defaultMeshConfig, ...mesh }, version: 'test' });
}

/** A sidecar of a BookInfo instance: `sidecar~127.0.0.13~reviews-v1.default~default.svc.cluster.local`. */
export function sidecar(ip: string, pod: string, labels: Record<string, string>, namespace = 'default', extra: Record<string, unknown> = {}): MeshProxy {
  return proxyFromNode({
    id: nodeId({ type: 'sidecar', ip, pod, namespace }),
    metadata: { LABELS: labels, NAMESPACE: namespace, ...extra },
  });
}

export function router(ip: string, pod: string, labels: Record<string, string>, namespace = 'istio-system'): MeshProxy {
  return proxyFromNode({ id: nodeId({ type: 'router', ip, pod, namespace }), metadata: { LABELS: labels, NAMESPACE: namespace } });
}

export function grpcClient(namespace = 'default'): MeshProxy {
  return proxyFromNode({ id: nodeId({ type: 'sidecar', ip: '127.0.0.50', pod: 'grpc-client', namespace }), metadata: { GENERATOR: 'grpc', NAMESPACE: namespace } });
}

export const productpage = () => sidecar('127.0.0.10', 'productpage-v1', { app: 'productpage', version: 'v1' });
export const reviewsV1 = () => sidecar('127.0.0.13', 'reviews-v1', { app: 'reviews', version: 'v1' });

type Decoded<U extends string> = XdsOutput<U extends `${string}/${infer N}` ? N : string>;

/** Runs one generator and decodes every resource with the real protos; keyed by resource name. */
export function generate<U extends string>(
  push: PushContext,
  proxy: MeshProxy,
  typeUrl: U,
  names?: readonly string[],
  generators: Readonly<Record<string, (typeof envoyGenerators)[string]>> = proxy.generator === 'grpc' ? grpcGenerators : envoyGenerators,
): Map<string, Decoded<U>> {
  const gen = generators[typeUrl];
  if (!gen) throw new Error(`no generator for ${typeUrl}`);
  const name = messageNameOf(typeUrl) as string;
  const out = new Map<string, Decoded<U>>();
  for (const r of gen(push, proxy, { typeUrl, ...(names ? { names } : {}) })) {
    out.set(r.name, decodeMessage(name, encodeMessage(name, r.resource as Record<string, unknown>)) as Decoded<U>);
  }
  return out;
}

export function must<T>(value: T | undefined | null, what = 'value'): T {
  if (value === undefined || value === null) throw new Error(`expected ${what}`);
  return value;
}

/** Decodes a typed config (`Any`) into its message. */
export function typed<U extends string>(any: { type_url: string; value: Uint8Array | Buffer | string } | null | undefined, typeUrl: U) {
  return decodeAny(must(any, typeUrl), typeUrl);
}

/** A google.protobuf.Struct's string field, as protobufjs decodes it. */
export function structString(s: { fields?: Record<string, { stringValue?: string; kind?: string } | undefined> } | undefined, key: string): string | undefined {
  return s?.fields?.[key]?.stringValue;
}
