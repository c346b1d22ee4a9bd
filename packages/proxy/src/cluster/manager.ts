// The cluster manager: follows xDS snapshots, keeping every cluster whose definition did not
// change (with its pools, rings and outlier state), replacing changed ones and draining removed
// ones. An EDS-only push touches only the clusters whose assignment object changed.
import { lookup as dnsLookup } from 'node:dns/promises';
import { type Logger, silentLogger } from '@weft/model';
import type { Cluster__Output, Secret__Output } from '@weft/xds';
import type { ClusterManager, EndpointStatus, UpstreamCluster, XdsSnapshot } from '../core/types.ts';
import { ClusterImpl, type ClusterContext, type DnsLookup } from './cluster.ts';
import { clusterSettings, sameMessage } from './config.ts';

export interface ClusterManagerOptions {
  logger?: Logger;
  /**
   * SDS secrets that do not travel in the xDS snapshot (the workload certificate `default` and the
   * mesh root `ROOTCA` from the agent's SDS); consulted before `snapshot.secrets`.
   */
  secrets?: (name: string) => Secret__Output | undefined;
  /**
   * While the secrets for auto mTLS (transport_socket_matches toward `tlsMode: istio` endpoints)
   * are missing, talk plaintext to those endpoints instead of failing (default true). Clusters whose
   * own transport_socket is TLS (DestinationRule ISTIO_MUTUAL/SIMPLE/MUTUAL) always require TLS.
   */
  autoMtlsPlaintextFallback?: boolean;
  /** DNS for STRICT_DNS/LOGICAL_DNS clusters; defaults to `dns.promises.lookup` (hosts file included). */
  lookup?: DnsLookup;
  random?: () => number;
  now?: () => number;
}

/** The manager plus what admin pages read. */
export interface WeftClusterManager extends ClusterManager {
  /** Per cluster: Envoy-named counters and gauges (`upstream_rq_total`, `upstream_cx_active`, `outlier_detection.ejections_active`, ...). */
  stats(): ReadonlyMap<string, Readonly<Record<string, number>>>;
}

/** Why a cluster definition cannot be served, or undefined when it can (for NACKs). */
export function checkCluster(c: Cluster__Output): string | undefined {
  try {
    clusterSettings(c);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

const defaultLookup: DnsLookup = async (hostname, family) => {
  try {
    const all = await dnsLookup(hostname, { all: true, family });
    return all.map((a) => a.address);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOTFOUND' || (err as { code?: string }).code === 'ENODATA') return [];
    throw err;
  }
};

class Manager implements WeftClusterManager {
  #clusters = new Map<string, ClusterImpl>();
  #lastClusters: XdsSnapshot['clusters'] | undefined;
  #lastEndpoints: XdsSnapshot['endpoints'] | undefined;
  #secrets: XdsSnapshot['secrets'] = new Map();
  readonly #ctx: ClusterContext;
  readonly #logger: Logger;
  #closed = false;

  constructor(o: ClusterManagerOptions) {
    const extra = o.secrets;
    this.#logger = o.logger ?? silentLogger;
    this.#ctx = {
      logger: this.#logger,
      random: o.random ?? Math.random,
      now: o.now ?? (() => performance.now()),
      secret: (name) => extra?.(name) ?? this.#secrets.get(name),
      lookup: o.lookup ?? defaultLookup,
      plaintextFallback: o.autoMtlsPlaintextFallback ?? true,
    };
  }

  update(snapshot: XdsSnapshot): void {
    if (this.#closed) return;
    this.#secrets = snapshot.secrets;
    const clustersChanged = snapshot.clusters !== this.#lastClusters;
    if (clustersChanged) {
      const next = new Map<string, ClusterImpl>();
      for (const [name, def] of snapshot.clusters) {
        const cur = this.#clusters.get(name);
        if (cur && (cur.def === def || sameMessage(cur.def, def))) {
          cur.def = def;
          next.set(name, cur);
          continue;
        }
        try {
          next.set(name, new ClusterImpl(def, this.#ctx));
          if (cur) {
            cur.drain();
            this.#logger.info('cluster updated', { cluster: name });
          } else this.#logger.debug('cluster added', { cluster: name });
        } catch (err) {
          // The xDS client checks clusters before accepting them (checkCluster); keep serving the old one.
          this.#logger.warn('cluster rejected', { cluster: name, error: err instanceof Error ? err.message : String(err) });
          if (cur) next.set(name, cur);
        }
      }
      for (const [name, cur] of this.#clusters) {
        if (next.has(name)) continue;
        this.#logger.debug('cluster removed', { cluster: name });
        cur.drain();
      }
      this.#clusters = next;
      this.#lastClusters = snapshot.clusters;
    }
    if (clustersChanged || snapshot.endpoints !== this.#lastEndpoints) {
      const endpoints = snapshot.endpoints;
      for (const c of this.#clusters.values()) if (c.settings.kind === 'EDS') c.applyAssignment(endpoints.get(c.settings.edsName));
      this.#lastEndpoints = endpoints;
    }
  }

  get(name: string): UpstreamCluster | undefined {
    return this.#clusters.get(name);
  }

  status(): ReadonlyMap<string, readonly EndpointStatus[]> {
    const out = new Map<string, readonly EndpointStatus[]>();
    for (const [name, c] of this.#clusters) out.set(name, c.status());
    return out;
  }

  stats(): ReadonlyMap<string, Readonly<Record<string, number>>> {
    const out = new Map<string, Readonly<Record<string, number>>>();
    for (const [name, c] of this.#clusters) out.set(name, c.stats.snapshot(c.gauges()));
    return out;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#clusters.values()];
    this.#clusters = new Map();
    await Promise.all(all.map((c) => c.destroy()));
  }
}

/** A cluster manager with Envoy's semantics for the clusters pilot emits. Call `update` with each accepted snapshot. */
export function createClusterManager(options: ClusterManagerOptions = {}): WeftClusterManager {
  return new Manager(options);
}
