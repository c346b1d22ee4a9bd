import type { Locator } from '../problem.ts';

/** Kubernetes object metadata as Weft keeps it. */
export interface ObjectMeta {
  name: string;
  /** Defaults to `default` for namespaced kinds; empty for cluster-scoped kinds. */
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /**
   * Opaque version of this object: the one its source gave (the API server's, for objects from a
   * cluster), else the store's revision at its last write (changes on every write).
   */
  resourceVersion?: string;
  /** Incremented when the spec changes (not on metadata-only writes). */
  generation?: number;
  uid?: string;
  creationTimestamp?: string;
}

/** Where a resource was read from: file, document index and the position of its first line. */
export interface ConfigSource extends Locator {
  readonly index: number;
  readonly line: number;
  readonly column: number;
}

/** The envelope every resource travels in, whatever its kind. */
export interface Config<Spec = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: unknown;
  /** Present when the resource was read from text; positions of its fields resolve through it. */
  source?: ConfigSource;
}

/** `networking.istio.io/v1` -> `networking.istio.io`; `v1` -> `` (the core group). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

export function versionOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
}

/** The identity of a kind across versions: `networking.istio.io/VirtualService`, `/Service` for core. */
export type GroupKind = string;

export function groupKind(group: string, kind: string): GroupKind {
  return `${group}/${kind}`;
}

export function groupKindOf(config: Pick<Config, 'apiVersion' | 'kind'>): GroupKind {
  return groupKind(groupOf(config.apiVersion), config.kind);
}

/** `default/reviews`, or `reviews` for cluster-scoped objects. */
export function namespacedName(meta: Pick<ObjectMeta, 'name' | 'namespace'>): string {
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}

/** `VirtualService default/reviews`: how messages name a resource. */
export function describeConfig(config: Pick<Config, 'kind' | 'metadata'>): string {
  return `${config.kind} ${namespacedName(config.metadata)}`;
}
