// /config_dump: the active snapshot as Envoy prints it (envoy.admin.v3.*ConfigDump), nested Any
// values decoded and tagged with `@type`, defaults left out so it reads like Envoy's output.
import { RootCertSecret, WorkloadCertSecret } from '@weft/mesh';
import { decodeAny, TypeUrl } from '@weft/xds';
import type { XdsSnapshot } from '../core/types.ts';

export interface DumpSource {
  snapshot: XdsSnapshot | undefined;
  /** Version and time of a resource's last change. */
  resourceInfo(typeUrl: string, name: string): { version: string; lastUpdated: Date } | undefined;
  /** Names still warming, by kind. */
  warming: { listeners: readonly string[]; clusters: readonly string[] };
  /** Accepted (possibly warming) resources, for the warming entries. */
  accepted?: { listeners: ReadonlyMap<string, unknown>; clusters: ReadonlyMap<string, unknown> };
  /** The workload identity's secrets (SDS `default` and `ROOTCA` from the mesh CA), when it has one. */
  workloadSecrets?: () => { certChainPem: string; rootCertPem: string; version: string; lastUpdated: Date } | undefined;
  /** Static config (bootstrap, local secrets...) shown as `bootstrap`. */
  bootstrap?: Record<string, unknown>;
}

function isAny(v: object): v is { type_url: string; value: Buffer | Uint8Array } {
  const o = v as Record<string, unknown>;
  return typeof o.type_url === 'string' && (Buffer.isBuffer(o.value) || o.value instanceof Uint8Array);
}

/** A decoded message as JSON: Any unpacked with `@type`, bytes in base64, defaults and oneof markers dropped. */
export function messageToJson(v: unknown): unknown {
  if (v === null || v === undefined) return undefined;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return v.length > 0 ? Buffer.from(v).toString('base64') : undefined;
  if (Array.isArray(v)) {
    const out = v.map(messageToJson).filter((x) => x !== undefined);
    return out.length > 0 ? out : undefined;
  }
  if (typeof v === 'object') {
    if (isAny(v)) {
      try {
        const decoded = messageToJson(decodeAny(v)) as Record<string, unknown> | undefined;
        return { '@type': v.type_url, ...(decoded ?? {}) };
      } catch {
        return { '@type': v.type_url, value: Buffer.from(v.value).toString('base64') };
      }
    }
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) {
      // `oneofs: true` names the member that is set in a sibling key; the member itself says it.
      if (typeof x === 'string' && x !== k && x in o && o[x] !== undefined && o[x] !== null) continue;
      const j = messageToJson(x);
      if (j === undefined || j === '' || j === false) continue;
      if (typeof j === 'object' && !Array.isArray(j) && Object.keys(j as object).length === 0) continue;
      out[k] = j;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return v;
}

function withType(typeUrl: string, resource: unknown): Record<string, unknown> {
  return { '@type': typeUrl, ...((messageToJson(resource) as Record<string, unknown> | undefined) ?? {}) };
}

/** Envoy's /config_dump body for the active snapshot. */
export function configDump(src: DumpSource): Record<string, unknown> {
  const s = src.snapshot;
  const info = (t: string, name: string) => {
    const i = src.resourceInfo(t, name);
    return i ? { version_info: i.version, last_updated: i.lastUpdated.toISOString() } : {};
  };
  const configs: Record<string, unknown>[] = [];
  configs.push({ '@type': 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump', bootstrap: src.bootstrap ?? {} });
  const clusters = [...(s?.clusters.entries() ?? [])];
  const warmingClusters = src.warming.clusters.map((name) => ({ name, cluster: src.accepted?.clusters.get(name) }));
  configs.push({
    '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
    version_info: s?.versions[TypeUrl.Cluster] ?? '',
    dynamic_active_clusters: clusters.map(([name, c]) => ({ ...info(TypeUrl.Cluster, name), cluster: withType(TypeUrl.Cluster, c) })),
    dynamic_warming_clusters: warmingClusters.map((w) => ({ ...info(TypeUrl.Cluster, w.name), cluster: withType(TypeUrl.Cluster, w.cluster) })),
  });
  const listeners = [...(s?.listeners.entries() ?? [])];
  configs.push({
    '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
    version_info: s?.versions[TypeUrl.Listener] ?? '',
    dynamic_listeners: [
      ...listeners.map(([name, l]) => ({ name, active_state: { ...info(TypeUrl.Listener, name), listener: withType(TypeUrl.Listener, l) } })),
      ...src.warming.listeners.map((name) => ({ name, warming_state: { ...info(TypeUrl.Listener, name), listener: withType(TypeUrl.Listener, src.accepted?.listeners.get(name)) } })),
    ],
  });
  configs.push({
    '@type': 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
    dynamic_route_configs: [...(s?.routes.entries() ?? [])].map(([name, rc]) => ({
      ...info(TypeUrl.RouteConfiguration, name),
      route_config: withType(TypeUrl.RouteConfiguration, rc),
    })),
  });
  configs.push({
    '@type': 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump',
    dynamic_endpoint_configs: [...(s?.endpoints.entries() ?? [])].map(([name, cla]) => ({
      ...info(TypeUrl.ClusterLoadAssignment, name),
      endpoint_config: withType(TypeUrl.ClusterLoadAssignment, cla),
    })),
  });
  configs.push({
    '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
    // Key material is never shown, as Envoy redacts it.
    dynamic_active_secrets: [
      ...[...(s?.secrets.keys() ?? [])].map((name) => ({ name, secret: { '@type': TypeUrl.Secret, name, tls_certificate: { certificate_chain: '[redacted]', private_key: '[redacted]' } } })),
      ...workloadSecretsDump(src),
    ],
  });
  return { configs };
}

/** The workload certificate and trust bundle as Envoy dumps SDS secrets: certificates shown (base64), the private key redacted. */
function workloadSecretsDump(src: DumpSource): Record<string, unknown>[] {
  const w = src.workloadSecrets?.();
  if (!w) return [];
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');
  const common = { version_info: w.version, last_updated: w.lastUpdated.toISOString() };
  return [
    { name: WorkloadCertSecret, ...common, secret: { '@type': TypeUrl.Secret, name: WorkloadCertSecret, tls_certificate: { certificate_chain: { inline_bytes: b64(w.certChainPem) }, private_key: { inline_string: '[redacted]' } } } },
    { name: RootCertSecret, ...common, secret: { '@type': TypeUrl.Secret, name: RootCertSecret, validation_context: { trusted_ca: { inline_bytes: b64(w.rootCertPem) } } } },
  ];
}
