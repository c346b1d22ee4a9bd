// Who this proxy is, as Istio's agent tells pilot: the node id `sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>`
// (or `router~…` for gateways) and the node metadata pilot reads (NAMESPACE, LABELS, INSTANCE_IPS…).
import { localityOfLabels, nodeId } from '@weft/mesh';
import type { Node } from '@weft/xds';

export type ProxyKind = 'sidecar' | 'router';

export interface NodeIdentity {
  type: ProxyKind;
  /** The workload's first IP address (the one in the node id). */
  ip: string;
  /** Every address of the workload (INSTANCE_IPS); defaults to `[ip]`. */
  ips?: readonly string[];
  /** Pod (instance) name. */
  pod: string;
  namespace: string;
  /** Cluster DNS suffix; default `cluster.local`. */
  domainSuffix?: string;
  labels?: Readonly<Record<string, string>>;
  serviceAccount?: string;
  /** The workload (deployment) name; default: the `app` label, else the pod name. */
  workloadName?: string;
  /** Istio's CLUSTER_ID; default `Kubernetes`. */
  clusterId?: string;
  /** Reported as ISTIO_VERSION. */
  istioVersion?: string;
  /** `region/zone/subzone`; default: the locality label (`topology.istio.io/locality`, `istio-locality`), as Istio's agent reads it. */
  locality?: string;
  /** More metadata, merged last (strings, numbers, booleans, lists and objects). */
  metadata?: Readonly<Record<string, unknown>>;
}

/** The version Weft reports as ISTIO_VERSION (the Istio API level it speaks). */
export const defaultIstioVersion = '1.24.0';

/** Node metadata as Istio's agent sends it. */
export function nodeMetadata(n: NodeIdentity): Record<string, unknown> {
  const labels = { ...(n.labels ?? {}) };
  const workload = n.workloadName ?? labels.app ?? n.pod;
  const md: Record<string, unknown> = {
    NAME: n.pod,
    NAMESPACE: n.namespace,
    LABELS: labels,
    INSTANCE_IPS: (n.ips?.length ? n.ips : [n.ip]).join(','),
    WORKLOAD_NAME: workload,
    CLUSTER_ID: n.clusterId ?? 'Kubernetes',
    ISTIO_VERSION: n.istioVersion ?? defaultIstioVersion,
    MESH_ID: n.domainSuffix ?? 'cluster.local',
  };
  if (n.serviceAccount) md.SERVICE_ACCOUNT = n.serviceAccount;
  return { ...md, ...(n.metadata ?? {}) };
}

type StructValue =
  | { nullValue: 'NULL_VALUE' }
  | { numberValue: number }
  | { stringValue: string }
  | { boolValue: boolean }
  | { structValue: { fields: Record<string, StructValue> } }
  | { listValue: { values: StructValue[] } };

/** A JSON value as a `google.protobuf.Value` (protobufjs spells those fields in camelCase). */
export function toStructValue(v: unknown): StructValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } };
  if (typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

export function toStruct(o: Readonly<Record<string, unknown>>): { fields: Record<string, StructValue> } {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toStructValue(v);
  return { fields };
}

/** The xDS node this proxy sends with its first request. */
export function buildNode(n: NodeIdentity): Node {
  const md = nodeMetadata(n);
  const [region, zone, subZone] = (n.locality ?? localityOfLabels(n.labels ?? {}) ?? '').split('/');
  return {
    id: nodeId(n),
    ...(region || zone || subZone ? { locality: { region: region ?? '', zone: zone ?? '', sub_zone: subZone ?? '' } } : {}),
    cluster: `${String(md.WORKLOAD_NAME)}.${n.namespace}`,
    metadata: toStruct(md),
    user_agent_name: 'weft-proxy',
    user_agent_version: process.versions.node,
  };
}

/** `app=reviews,version=v1` → `{app: 'reviews', version: 'v1'}`; throws for an entry without `=`. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`label ${JSON.stringify(p)} is not key=value`);
    out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}
