// A workload as Istio's telemetry sees it: the fields of its node metadata that become metric labels
// (WORKLOAD_NAME, NAMESPACE, CLUSTER_ID, the canonical service labels, app, version). The local one
// comes from this proxy's node identity; a peer's from metadata exchange or endpoint metadata.
import type { Cluster__Output } from '@weft/xds';
import { type NodeIdentity, nodeMetadata } from '../xds/node.ts';

export const canonicalNameLabel = 'service.istio.io/canonical-name';
export const canonicalRevisionLabel = 'service.istio.io/canonical-revision';

/** Empty strings mean "not known"; label computation turns them into `unknown` (or `latest`). */
export interface WorkloadInfo {
  /** Pod (instance) name: NAME. */
  readonly instance: string;
  readonly namespace: string;
  readonly workloadName: string;
  /** CLUSTER_ID. */
  readonly cluster: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  /** The `app` and `version` labels. */
  readonly app: string;
  readonly version: string;
  /** OWNER (`kubernetes://apis/apps/v1/namespaces/<ns>/deployments/<name>`), when known. */
  readonly owner: string;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * The canonical service labels Istio's injector puts on every pod when the pod has none:
 * name from `app.kubernetes.io/name`, then `app`, then the workload name; revision from
 * `app.kubernetes.io/version`, then `version`, then `latest`.
 */
export function canonicalLabels(labels: Readonly<Record<string, string>>, workloadName: string): { name: string; revision: string } {
  return {
    name: labels[canonicalNameLabel] || labels['app.kubernetes.io/name'] || labels.app || workloadName,
    revision: labels[canonicalRevisionLabel] || labels['app.kubernetes.io/version'] || labels.version || 'latest',
  };
}

/** This proxy's workload, from the node metadata it sends pilot (with the injector's canonical label defaults). */
export function localWorkload(node: NodeIdentity): WorkloadInfo {
  const md = nodeMetadata(node);
  const labels = (typeof md.LABELS === 'object' && md.LABELS !== null ? md.LABELS : {}) as Record<string, string>;
  const workloadName = str(md.WORKLOAD_NAME);
  const canonical = canonicalLabels(labels, workloadName);
  return {
    instance: str(md.NAME),
    namespace: str(md.NAMESPACE),
    workloadName,
    cluster: str(md.CLUSTER_ID),
    canonicalName: canonical.name,
    canonicalRevision: canonical.revision,
    app: labels.app ?? '',
    version: labels.version ?? '',
    owner: str(md.OWNER),
  };
}

/**
 * Pilot's endpoint metadata `istio.workload`: `<workload>;<namespace>;<canonical name>;<canonical revision>;<cluster>`.
 * It carries no app or version (Istio reports those as unknown for this fallback).
 */
export function parseEndpointWorkload(text: string): WorkloadInfo | undefined {
  const parts = text.split(';');
  if (parts.length < 5) return undefined;
  return {
    instance: '',
    workloadName: parts[0]!,
    namespace: parts[1]!,
    canonicalName: parts[2]!,
    canonicalRevision: parts[3]!,
    cluster: parts[4]!,
    app: '',
    version: '',
    owner: '',
  };
}

/** A decoded google.protobuf.Struct, as in `Metadata.filter_metadata`. */
export type Struct__Output = NonNullable<Cluster__Output['metadata']>['filter_metadata'][string];

/** A decoded google.protobuf.Struct (as the xDS decoder spells it) as plain JSON. */
export function structToJson(s: Struct__Output | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

type Value = NonNullable<Struct__Output['fields']>[string];

function valueToJson(v: Value): unknown {
  switch (v.kind) {
    case 'stringValue':
      return v.stringValue;
    case 'numberValue':
      return v.numberValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return structToJson(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}
