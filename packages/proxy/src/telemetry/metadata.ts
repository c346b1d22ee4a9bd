// What telemetry reads from the accepted xDS config: a cluster's `istio` metadata (the service it
// stands for: `services[0].host/name/namespace`; `external`/`disable_mx` to keep metadata exchange
// away from it) and an endpoint's `istio.workload` metadata (the fallback peer when no exchange
// happened). Computed once per resource object: resources are immutable and shared by snapshots.
import { PassthroughCluster } from '@weft/mesh';
import type { Cluster__Output, ClusterLoadAssignment__Output } from '@weft/xds';
import type { XdsSnapshot } from '../core/types.ts';
import { edsName } from '../xds/resources.ts';
import { parseEndpointWorkload, structToJson, type WorkloadInfo } from './workload.ts';

/** The destination service a request or connection is counted under; empty strings mean unknown. */
export interface ServiceInfo {
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

export interface ClusterTelemetry {
  /** From `istio.services[0]`; undefined when the cluster has none. */
  readonly service: ServiceInfo | undefined;
  /** Metadata exchange headers must not go to this cluster (PassthroughCluster, `external`, `disable_mx`). */
  readonly skipMx: boolean;
}

const clusterCache = new WeakMap<Cluster__Output, ClusterTelemetry>();
const endpointCache = new WeakMap<ClusterLoadAssignment__Output, Map<string, WorkloadInfo>>();
const noCluster: ClusterTelemetry = { service: undefined, skipMx: false };
const passthrough: ClusterTelemetry = { service: undefined, skipMx: true };

function readCluster(c: Cluster__Output): ClusterTelemetry {
  const istio = structToJson(c.metadata?.filter_metadata?.istio);
  const skipMx = istio.external === true || istio.disable_mx === true;
  const services = Array.isArray(istio.services) ? istio.services : [];
  const first = services[0] as Record<string, unknown> | undefined;
  let service: ServiceInfo | undefined;
  if (first && typeof first === 'object') {
    const host = typeof first.host === 'string' ? first.host : '';
    const name = typeof first.name === 'string' ? first.name : host.split('.')[0]!;
    const namespace = typeof first.namespace === 'string' ? first.namespace : '';
    service = { host, name, namespace };
  }
  return { service, skipMx };
}

function readEndpoints(cla: ClusterLoadAssignment__Output): Map<string, WorkloadInfo> {
  const out = new Map<string, WorkloadInfo>();
  for (const group of cla.endpoints ?? []) {
    for (const e of group.lb_endpoints ?? []) {
      const sa = e.endpoint?.address?.socket_address;
      if (!sa) continue;
      const workload = structToJson(e.metadata?.filter_metadata?.istio).workload;
      if (typeof workload !== 'string') continue;
      const w = parseEndpointWorkload(workload);
      if (w) out.set(`${sa.address}:${sa.port_value}`, w);
    }
  }
  return out;
}

/** Cluster and endpoint metadata of the proxy's current snapshot. */
export class TelemetryMetadata {
  readonly #snapshot: () => XdsSnapshot | undefined;
  constructor(snapshot: () => XdsSnapshot | undefined) {
    this.#snapshot = snapshot;
  }

  cluster(name: string | undefined): ClusterTelemetry {
    if (!name) return noCluster;
    if (name === PassthroughCluster) return passthrough;
    const c = this.#snapshot()?.clusters.get(name);
    if (!c) return noCluster;
    let t = clusterCache.get(c);
    if (!t) {
      t = readCluster(c);
      clusterCache.set(c, t);
    }
    return t;
  }

  /** The workload behind `address:port` of a cluster, from EDS (or the cluster's inline endpoints). */
  endpoint(clusterName: string | undefined, hostPort: string | undefined): WorkloadInfo | undefined {
    if (!clusterName || !hostPort) return undefined;
    const s = this.#snapshot();
    const c = s?.clusters.get(clusterName);
    if (!c) return undefined;
    const cla = c.type === 'EDS' ? s?.endpoints.get(edsName(c)) : (c.load_assignment ?? undefined);
    if (!cla) return undefined;
    let m = endpointCache.get(cla);
    if (!m) {
      m = readEndpoints(cla);
      endpointCache.set(cla, m);
    }
    return m.get(hostPort);
  }
}
