// One upstream endpoint of a cluster and what the data path keeps about it: load balancing weight
// and health, requests in flight, outlier-detection state and its connection pools. A host keeps
// its identity (`address:port`) across EDS updates, so its pools and ejection state survive them.
import type { ClusterLoadAssignment__Output } from '@weft/xds';
import type { TransportChoice } from './config.ts';
import type { LbHost } from './lb.ts';
import type { HttpPool } from './pool.ts';

/** `10.0.0.1:9080`, `[::1]:9080`: how endpoints are named in responses, logs and retries. */
export function endpointKey(address: string, port: number): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** One endpoint as EDS (or an inline load_assignment) describes it. */
export interface EndpointSpec {
  address: string;
  port: number;
  weight: number;
  healthy: boolean;
  priority: number;
  locality: string | undefined;
  localityWeight: number | undefined;
  /** filter_metadata['envoy.transport_socket_match'] as strings (tlsMode: istio). */
  transportMatch: ReadonlyMap<string, string>;
}

const noMatch: ReadonlyMap<string, string> = new Map();

type StructFields = Record<string, { stringValue?: string; numberValue?: number; boolValue?: boolean } | undefined>;

function structStrings(fields: StructFields | undefined): ReadonlyMap<string, string> {
  if (!fields) return noMatch;
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(fields)) {
    if (v) m.set(k, v.stringValue ?? (v.numberValue !== undefined ? String(v.numberValue) : v.boolValue !== undefined ? String(v.boolValue) : ''));
  }
  return m;
}

/** The endpoints of an assignment. Only HEALTHY and UNKNOWN endpoints count as healthy (as Envoy); pipes are skipped. */
export function endpointsOf(cla: ClusterLoadAssignment__Output | undefined): EndpointSpec[] {
  const out: EndpointSpec[] = [];
  for (const group of cla?.endpoints ?? []) {
    const l = group.locality;
    const locality = l && (l.region || l.zone || l.sub_zone) ? `${l.region ?? ''}/${l.zone ?? ''}/${l.sub_zone ?? ''}` : undefined;
    const localityWeight = group.load_balancing_weight?.value ?? undefined;
    for (const e of group.lb_endpoints ?? []) {
      const sa = e.endpoint?.address?.socket_address;
      if (!sa?.address) continue;
      const status = e.health_status ?? 'UNKNOWN';
      out.push({
        address: sa.address,
        port: sa.port_value ?? 0,
        weight: Math.max(1, e.load_balancing_weight?.value ?? 1),
        healthy: status === 'HEALTHY' || status === 'UNKNOWN',
        priority: group.priority ?? 0,
        locality,
        localityWeight,
        transportMatch: structStrings(e.metadata?.filter_metadata?.['envoy.transport_socket_match']?.fields as StructFields | undefined),
      });
    }
  }
  return out;
}

export class Host implements LbHost {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  /** Where connections go: the address, or for LOGICAL_DNS the latest resolved address. */
  dialAddress: string;
  weight = 1;
  edsHealthy = true;
  priority = 0;
  locality: string | undefined;
  localityWeight: number | undefined;
  transport: TransportChoice | undefined;
  usable = false;
  removed = false;
  lastUsed = 0;

  active = 0;
  total = 0;
  failures = 0;

  // Outlier detection: consecutive counters and ejection state (Envoy's DetectorHostMonitor).
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  consecutiveLocalOriginFailure = 0;
  ejected = false;
  ejectedAt = 0;
  ejectionBackoff = 0;
  ejectionJitterMs = 0;
  lastUnejectedAt: number | undefined;
  ejections = 0;

  h1: HttpPool | undefined;
  h2: HttpPool | undefined;

  constructor(address: string, port: number, key = endpointKey(address, port)) {
    this.key = key;
    this.address = address;
    this.port = port;
    this.dialAddress = address;
  }

  /** Drops this host's pools: idle connections close now, busy ones after their requests. */
  drainPools(): void {
    this.h1?.drain();
    this.h2?.drain();
    this.h1 = undefined;
    this.h2 = undefined;
  }

  destroyPools(): Promise<void> {
    const p = Promise.all([this.h1?.destroy(), this.h2?.destroy()]).then(() => undefined);
    this.h1 = undefined;
    this.h2 = undefined;
    return p;
  }
}

/** Envoy-named counters and gauges of one cluster (`cluster.<name>.<stat>` on /stats). */
export class ClusterStats {
  upstream_rq_total = 0;
  upstream_rq_completed = 0;
  upstream_rq_2xx = 0;
  upstream_rq_3xx = 0;
  upstream_rq_4xx = 0;
  upstream_rq_5xx = 0;
  upstream_rq_pending_total = 0;
  upstream_rq_pending_overflow = 0;
  upstream_rq_per_try_timeout = 0;
  upstream_rq_retry_overflow = 0;
  /** Requests replayed on a fresh connection after a reused one was found closed (Weft-specific). */
  upstream_rq_stale_connection_retry = 0;
  upstream_cx_total = 0;
  upstream_cx_connect_fail = 0;
  upstream_cx_connect_timeout = 0;
  upstream_cx_overflow = 0;
  upstream_cx_none_healthy = 0;
  upstream_cx_destroy_with_active_rq = 0;
  outlier_detection_ejections_enforced_total = 0;
  outlier_detection_ejections_overflow = 0;
  /** Upstream TLS, as Envoy's `cluster.<name>.ssl.*`: handshakes, and failures by cause. */
  'ssl.handshake' = 0;
  'ssl.fail_verify_san' = 0;
  'ssl.fail_verify_error' = 0;
  'ssl.connection_error' = 0;

  /** Counters plus the gauges read from the cluster's live state. */
  snapshot(gauges: Record<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this)) out[k.replace('outlier_detection_', 'outlier_detection.')] = v as number;
    for (const [k, v] of Object.entries(gauges)) out[k] = v;
    return out;
  }
}
