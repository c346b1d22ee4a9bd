// A cluster object becomes a Config through model's own decoder (the one YAML files go through),
// so an object from the API server equals the same object read from a file: same apiVersion,
// kind, spec, status and the metadata a user or the API server gives meaning to.
import type { KubernetesObject } from '@kubernetes/client-node';
import { type Config, decodeResource, type KindRegistry, type LoadedResource, SourceLocation } from '@weft/model';

/**
 * The metadata kept. The rest is the API server's bookkeeping (uid, managedFields,
 * ownerReferences, finalizers): a file never carries it, and keeping it would make every write
 * of a manager look like a change. creationTimestamp orders conflicts (DESIGN.md §1);
 * resourceVersion is the object's version in the cluster, as istiod keeps it; generation (which
 * moves only with the spec) is what Gateway API status conditions report as observedGeneration.
 */
const keptMetadata = ['name', 'namespace', 'labels', 'annotations', 'creationTimestamp', 'resourceVersion', 'generation'] as const;

/** `/apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews`: where an object lives, for messages. */
export function objectPath(group: string, version: string, plural: string, namespace: string | undefined, name: string): string {
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return `${base}${namespace ? `/namespaces/${namespace}` : ''}/${plural}/${name}`;
}

/**
 * Decodes one object as listed or watched. Structural problems are reported as a file's would
 * be, located at the object's API path (there is no text to point into).
 */
export function decodeClusterObject(obj: KubernetesObject, registry: KindRegistry, location: string): LoadedResource {
  const raw = obj as Record<string, unknown>;
  const meta = (raw.metadata ?? {}) as Record<string, unknown>;
  const metadata: Record<string, unknown> = {};
  for (const k of keptMetadata) if (meta[k] !== undefined && meta[k] !== null) metadata[k] = meta[k];
  // Typed clients turn timestamps into Dates; the watch stream (and files) carry RFC 3339 text.
  if (metadata.creationTimestamp instanceof Date) metadata.creationTimestamp = `${metadata.creationTimestamp.toISOString().slice(0, 19)}Z`;
  const value: Record<string, unknown> = { ...raw, metadata };
  return decodeResource({ value, source: new SourceLocation(location, 0, '', 0) }, { registry });
}

/** The Config as the store keeps it: without a source (no text to point into). */
export function withoutSource(config: Config): Config {
  const { source: _source, ...rest } = config;
  return rest;
}
