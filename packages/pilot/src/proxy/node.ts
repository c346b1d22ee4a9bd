// Who is connecting: the xDS node (id and metadata) as Istio's agent, Envoy or a proxyless gRPC
// client sends it, turned into a Proxy.
import { isIP } from 'node:net';
import { defaultDomainSuffix, type NodeId, NodeIdError, parseNodeId as parseMeshNodeId } from '@weft/mesh';
import { WeftError } from '@weft/model';
import { ClientFeature } from '@weft/xds';
import type { Proxy as MeshProxy, NodeMetadata } from '../core/types.ts';
import { stringMap } from '../registry/labels.ts';

function parse(id: string, requireIp: boolean): NodeId {
  try {
    return parseMeshNodeId(id, { requireIp });
  } catch (e) {
    throw e instanceof NodeIdError ? new WeftError('INVALID_ARGUMENT', e.message) : e;
  }
}

/** Parses an Istio node id; throws `WeftError('INVALID_ARGUMENT')` saying what is wrong. */
export function parseNodeId(id: string): NodeId {
  return parse(id, true);
}

/** A `google.protobuf.Struct` as protobufjs decodes it (snake_case or camelCase field names). */
export interface StructLike {
  fields: Record<string, unknown>;
}

/** The node of a DiscoveryRequest: what `proxyFromNode` reads. */
export interface XdsNode {
  id?: string | null;
  metadata?: Record<string, unknown> | StructLike | null;
  client_features?: readonly string[] | null;
  locality?: { region?: string | null; zone?: string | null; sub_zone?: string | null } | null;
}

const valueKinds = ['null_value', 'number_value', 'string_value', 'bool_value', 'struct_value', 'list_value'] as const;
const camel: Record<string, string> = {
  null_value: 'nullValue',
  number_value: 'numberValue',
  string_value: 'stringValue',
  bool_value: 'boolValue',
  struct_value: 'structValue',
  list_value: 'listValue',
};

function isStruct(v: unknown): v is StructLike {
  if (!v || typeof v !== 'object') return false;
  const keys = Object.keys(v);
  if (keys.length !== 1 || keys[0] !== 'fields') return false;
  const fields = (v as { fields: unknown }).fields;
  return !!fields && typeof fields === 'object' && Object.values(fields).every(isValue);
}

function isValue(v: unknown): boolean {
  if (!v || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  return typeof o.kind === 'string' || valueKinds.some((k) => k in o || camel[k]! in o);
}

function valueToJson(v: unknown): unknown {
  const o = v as Record<string, unknown>;
  const kind = typeof o.kind === 'string' ? o.kind : valueKinds.find((k) => o[k] !== undefined || o[camel[k]!] !== undefined);
  if (!kind) return null;
  const snake = kind.includes('_') ? kind : (valueKinds.find((k) => camel[k] === kind) ?? kind);
  const raw = o[snake] ?? o[camel[snake] ?? snake];
  switch (snake) {
    case 'null_value':
      return null;
    case 'number_value':
      return Number(raw);
    case 'string_value':
      return String(raw ?? '');
    case 'bool_value':
      return Boolean(raw);
    case 'struct_value':
      return structToJson(raw);
    case 'list_value': {
      const values = (raw as { values?: unknown[] } | undefined)?.values ?? [];
      return values.map(valueToJson);
    }
    default:
      return null;
  }
}

function structToJson(s: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = (s as StructLike | undefined)?.fields ?? {};
  for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
  return out;
}

/** Node metadata as plain JSON, whether it arrived as a decoded `Struct` or as an object already. */
export function nodeMetadata(metadata: XdsNode['metadata']): NodeMetadata {
  if (!metadata) return {};
  if (isStruct(metadata)) return structToJson(metadata);
  return { ...metadata };
}

function instanceIps(value: unknown): string[] {
  const list = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : [];
  return list.map((x) => String(x).trim()).filter((x) => x !== '');
}

/**
 * The Proxy behind an xDS node. Labels come from metadata `LABELS`, the namespace from
 * `NAMESPACE` or else the id, IPs from `INSTANCE_IPS` or else the id; `GENERATOR: grpc` marks a
 * proxyless gRPC client, whose id need not follow the sidecar form (its namespace then comes
 * from metadata, or is `default`). Throws `WeftError('INVALID_ARGUMENT')` for an Envoy-style
 * node whose id cannot be parsed or that has no IP address.
 */
export function proxyFromNode(node: XdsNode, opts: { domainSuffix?: string } = {}): MeshProxy {
  const id = node.id ?? '';
  const metadata = nodeMetadata(node.metadata);
  const generator = metadata.GENERATOR === 'grpc' ? 'grpc' : 'envoy';
  const ips = instanceIps(metadata.INSTANCE_IPS);
  const labels = stringMap(metadata.LABELS);
  const metaNamespace = typeof metadata.NAMESPACE === 'string' && metadata.NAMESPACE ? metadata.NAMESPACE : undefined;
  const suffix = opts.domainSuffix ?? defaultDomainSuffix;

  let parsed: NodeId | undefined;
  if (generator === 'grpc') {
    try {
      parsed = parse(id, false);
    } catch {
      parsed = undefined;
    }
  } else {
    parsed = parse(id, ips.length === 0);
  }
  if (parsed && ips.length === 0 && isIP(parsed.ipAddress) !== 0) ips.push(parsed.ipAddress);

  const namespace = metaNamespace ?? parsed?.namespace ?? 'default';
  const proxy: MeshProxy = {
    id,
    type: parsed?.type ?? 'sidecar',
    ipAddresses: ips,
    podName: parsed?.podName ?? (typeof metadata.WORKLOAD_NAME === 'string' && metadata.WORKLOAD_NAME ? metadata.WORKLOAD_NAME : id),
    namespace,
    dnsDomain: parsed?.dnsDomain || `${namespace}.svc.${suffix}`,
    labels,
    metadata: { ...metadata, ...(Object.keys(labels).length > 0 ? { LABELS: labels } : {}) },
    generator,
  };
  if (typeof metadata.SERVICE_ACCOUNT === 'string' && metadata.SERVICE_ACCOUNT) proxy.serviceAccount = metadata.SERVICE_ACCOUNT;
  const l = node.locality;
  if (l && (l.region || l.zone || l.sub_zone)) {
    proxy.locality = { ...(l.region ? { region: l.region } : {}), ...(l.zone ? { zone: l.zone } : {}), ...(l.sub_zone ? { subzone: l.sub_zone } : {}) };
  }
  if (generator === 'envoy' && node.client_features?.includes(ClientFeature.vhds)) proxy.vhds = true;
  return proxy;
}
