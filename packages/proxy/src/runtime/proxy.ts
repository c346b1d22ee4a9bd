// One proxy (sidecar or gateway), assembled: ADS client -> warming -> snapshot -> cluster manager
// and listeners, with the admin and health ports beside them. apps/proxy and apps/ingress only
// parse flags and call `startProxy`.
import { nodeId, parseClusterKey } from '@weft/mesh';
import type { Server as NetServer } from 'node:net';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { OwnerGuard } from '@weft/guard';
import { createLogger, type Logger, type LogLevel } from '@weft/model';
import { type Cluster__Output, type Listener__Output, type RouteConfiguration__Output, type Secret__Output, TypeUrl } from '@weft/xds';
import { type AdminServer, startAdmin } from '../admin/server.ts';
import { Stats } from '../admin/stats.ts';
import { checkCluster, createClusterManager, type WeftClusterManager } from '../cluster/manager.ts';
import type { FilterRegistry } from '../core/filters.ts';
import type { ClusterManager, RequestRecord, XdsSnapshot } from '../core/types.ts';
import { compileListener } from '../listener/chains.ts';
import type { HttpRouting } from '../listener/http.ts';
import { directionOf } from '../listener/dispatch.ts';
import { ListenerManager } from '../listener/manager.ts';
import { XdsClient } from '../xds/client.ts';
import { buildNode, type NodeIdentity } from '../xds/node.ts';
import { loadCredentials, watchCredentials } from './credentials.ts';
import { drainPeriod } from './drain.ts';
import type { AppProber } from '../telemetry/app-probe.ts';
import { TelemetryRuntime } from '../telemetry/runtime.ts';
import { defaultFilterRegistry } from './filters.ts';
import { type ProxyCaOptions, proxyIdentity } from '../security/identity.ts';
import { createHttpRouting } from './routing.ts';

export interface ClusterManagerContext {
  logger: Logger;
  /** Secrets beyond the snapshot's (upstream TLS). */
  secrets: (name: string) => Secret__Output | undefined;
  /** Auto mTLS falls back to plaintext while `default`/`ROOTCA` are missing (only without a mesh identity). */
  autoMtlsPlaintextFallback?: boolean;
}

export interface ProxyOptions {
  /** Pilot's xDS address, `host:port`. */
  xdsAddress: string;
  xdsCredentials?: ChannelCredentials;
  /** xDS over TLS to the control plane's authenticating port, with the mesh identity's credentials (needs `ca`; see WorkloadIdentity.xdsChannel). */
  xdsTls?: boolean;
  node: NodeIdentity;
  /** `capture` (iptables, SO_ORIGINAL_DST) or `local` (explicit listeners on `bindAddress`). */
  mode: 'capture' | 'local';
  /** Local mode: the workload's loopback address. Gateways: where listeners bind (default: their own address). */
  bindAddress?: string;
  outboundPort?: number;
  inboundPort?: number;
  /** Local mode: the application's address (default 127.0.0.1) and its ports by service target port. */
  appAddress?: string;
  appPorts?: ReadonlyMap<number, number>;
  adminHost?: string;
  adminPort?: number;
  healthHost?: string;
  /** -1: no health port. */
  healthPort?: number;
  /** Gateway credentials directory (local mode; see credentials.ts). */
  credentialDir?: string;
  /** The mesh CA: the proxy's certificate (`default`) and root (`ROOTCA`) for mTLS; see security/identity.ts. */
  ca?: ProxyCaOptions;
  warmingTimeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Istio's terminationDrainDuration: after close() starts (SIGTERM), how long the proxy keeps
   * serving while it drains (default 5000); see close().
   */
  drainMs?: number;
  /**
   * EXIT_ON_ZERO_ACTIVE_CONNECTIONS: leave the drain early, once `minDrainMs` has passed and no
   * downstream connection is left. Default: on in local mode (its addresses are fixed config, so
   * no caller's endpoints are still catching up), off otherwise (Istio's default).
   */
  exitOnZeroActiveConnections?: boolean;
  /** MINIMUM_DRAIN_DURATION with exitOnZeroActiveConnections (default 5000; 0 in local mode). */
  minDrainMs?: number;
  logLevel?: LogLevel;
  logSink?: (line: string) => void;
  /** The cluster manager (the package's own by default). */
  createClusterManager?: (ctx: ClusterManagerContext) => ClusterManager;
  /** Check of each cluster before it is accepted (throw to NACK); default: what the package's cluster manager cannot serve. */
  checkCluster?: (c: Cluster__Output) => void;
  /** Every finished request and connection (telemetry). */
  onRecord?: (r: RequestRecord) => void;
  /** Filters beyond routing (authorization, telemetry) the listeners may use; see core/filters.ts. */
  filters?: FilterRegistry;
  /** Istio's metrics and access logs (default on); false leaves them out. */
  telemetry?: boolean;
  /** Proxy metrics `/stats/prometheus` (Envoy's 15090); 0 picks a free port; undefined or -1: not served. Binds on `healthHost`. */
  statsPort?: number;
  /** Merged metrics and `/healthz/ready` (pilot-agent's 15020); 0 picks a free port; undefined or -1: not served. Binds on `healthHost`. */
  statusPort?: number;
  /** The application's Prometheus endpoint, merged into the status port's `/stats/prometheus`. */
  appMetricsUrl?: string;
  /** The application's probes (ISTIO_KUBE_APP_PROBERS), run against the workload's address for the status port's `/app-health/...`. */
  appProbers?: ReadonlyMap<string, AppProber>;
  /** POST /quitquitquit on the admin port. */
  onQuit?: () => void;
  /**
   * Local mode's trust boundary: every port the proxy opens (admin, health, stats, status and every
   * listener) serves only processes running as this UID; other peers are reset at connect, logged
   * and counted (`owner_guard.*` in /stats). Not for capture mode (the app's UID is not the proxy's).
   */
  ownerUid?: number;
}

export interface RunningProxy {
  readonly nodeId: string;
  readonly xds: XdsClient;
  readonly listeners: ListenerManager;
  readonly clusters: ClusterManager;
  readonly stats: Stats;
  readonly adminPort: number;
  readonly healthPort: number | undefined;
  /** Istio's metrics, access logs and their scrape ports (statsPort, statusPort); undefined with `telemetry: false`. */
  readonly telemetry: TelemetryRuntime | undefined;
  /** Resolves once the first snapshot is applied and its listeners are bound. */
  readonly ready: Promise<void>;
  isReady(): boolean;
  /**
   * Drains, then stops (pilot-agent's SIGTERM): not ready from now on; every listener keeps
   * accepting for the drain period while its connections are asked to close (sidecars: inbound
   * only, so the application's own calls keep working; gateways: all), then everything closes.
   */
  close(): Promise<void>;
  /**
   * pilot-agent's `/drain` (POST on the status port; a native sidecar's preStop hook): drains as
   * close() does, for as long as the pod needs (the kubelet stops the sidecar once the application
   * has exited); close() then stops at once.
   */
  drain(): void;
}

/**
 * Local mode: `inbound|<port>||` points at 127.0.0.1:<port> (or a Sidecar ingress defaultEndpoint's
 * port); send it where the app really listens.
 */
function rewriteInboundClusters(s: XdsSnapshot, target: (port: number) => { address: string; port: number }, cache: WeakMap<Cluster__Output, Cluster__Output>): XdsSnapshot {
  let clusters: Map<string, Cluster__Output> | undefined;
  for (const [name, c] of s.clusters) {
    const key = parseClusterKey(name);
    if (key?.direction !== 'inbound') continue;
    let r = cache.get(c);
    if (!r) {
      r = structuredClone(c);
      for (const group of r.load_assignment?.endpoints ?? []) {
        for (const e of group.lb_endpoints ?? []) {
          const sa = e.endpoint?.address?.socket_address;
          if (sa) {
            const t = target(sa.port_value || key.port);
            sa.address = t.address;
            sa.port_value = t.port;
          }
        }
      }
      cache.set(c, r);
    }
    clusters ??= new Map(s.clusters);
    clusters.set(name, r);
  }
  return clusters ? { ...s, clusters } : s;
}

export async function startProxy(o: ProxyOptions): Promise<RunningProxy> {
  const logOptions = { ...(o.logLevel ? { level: o.logLevel } : {}), ...(o.logSink ? { sink: o.logSink } : {}) };
  const id = nodeId(o.node);
  const log = createLogger({ scope: 'proxy', ...logOptions, fields: { node: id } });
  const stats = new Stats();
  if (o.ownerUid !== undefined && o.mode !== 'local') throw new Error('ownerUid is for local mode: in capture mode the application runs as another UID than the proxy');
  const guard = o.ownerUid !== undefined ? new OwnerGuard({ ownerUid: o.ownerUid, logger: createLogger({ scope: 'guard', ...logOptions, fields: { node: id } }) }) : undefined;
  const protect = guard ? (server: NetServer, port: string) => void guard.protect(server, port) : undefined;
  // Istio's metrics (with metadata exchange) and access logs read cluster and endpoint metadata from the accepted config.
  const telemetry = o.telemetry === false ? undefined : new TelemetryRuntime({ node: o.node, snapshot: () => xds.snapshot });
  // Filters beyond routing (security, telemetry): the caller's registry, else the default one.
  const filters =
    o.filters ??
    defaultFilterRegistry(o, { snapshot: () => xds.snapshot, logger: createLogger({ scope: 'telemetry', ...logOptions, fields: { node: id } }), ...(telemetry ? { telemetry } : {}) });
  const onRecord = (r: RequestRecord) => {
    stats.record(r);
    o.onRecord?.(r);
  };
  let localSecrets: ReadonlyMap<string, Secret__Output> = o.credentialDir ? loadCredentials(o.credentialDir) : new Map();
  // The workload certificate and root from the CA, as SDS `default` and `ROOTCA` (mesh mTLS).
  const identity = o.ca ? proxyIdentity(o.ca, o.node.namespace, o.node.serviceAccount, createLogger({ scope: 'identity', ...logOptions, fields: { node: id } })) : undefined;
  if (o.xdsTls && !identity) throw new Error('xDS over TLS needs the mesh identity (the CA options): its root verifies pilot, its certificate or token authenticates the proxy');
  const clusterCtx: ClusterManagerContext = {
    logger: createLogger({ scope: 'clusters', ...logOptions, fields: { node: id } }),
    secrets: identity ? (n) => identity.secret(n) ?? localSecrets.get(n) : (n) => localSecrets.get(n),
    autoMtlsPlaintextFallback: !identity,
  };
  const clusters: ClusterManager = o.createClusterManager ? o.createClusterManager(clusterCtx) : createClusterManager(clusterCtx);
  const clusterCheck =
    o.checkCluster ??
    ((c: Cluster__Output) => {
      const problem = checkCluster(c);
      if (problem) throw new Error(problem);
    });
  const routing: HttpRouting = createHttpRouting(clusters, onRecord);
  const appTarget = (port: number) => ({ address: o.appAddress ?? '127.0.0.1', port: o.appPorts?.get(port) ?? port });

  const xds = new XdsClient({
    address: o.xdsAddress,
    node: buildNode(o.node),
    ...(o.xdsCredentials ? { credentials: o.xdsCredentials } : {}),
    ...(o.xdsTls && identity ? { channel: () => identity.xdsChannel() } : {}),
    ...(o.warmingTimeoutMs !== undefined ? { warmingTimeoutMs: o.warmingTimeoutMs } : {}),
    ...(o.initialBackoffMs !== undefined ? { initialBackoffMs: o.initialBackoffMs } : {}),
    ...(o.maxBackoffMs !== undefined ? { maxBackoffMs: o.maxBackoffMs } : {}),
    logger: createLogger({ scope: 'xds', ...logOptions, fields: { node: id } }),
    validate: (typeUrl, _name, resource) => {
      if (typeUrl === TypeUrl.Listener) {
        const l = resource as Listener__Output;
        compileListener(l, { checkRoutes: (rc) => routing.check(rc), direction: directionOf(l, o.node.type), filters });
      }
      else if (typeUrl === TypeUrl.RouteConfiguration) routing.check(resource as RouteConfiguration__Output);
      else if (typeUrl === TypeUrl.Cluster) clusterCheck(resource as Cluster__Output);
    },
  });
  if (localSecrets.size > 0) xds.setLocalSecrets(localSecrets);
  const stopWatching = o.credentialDir
    ? watchCredentials(
        o.credentialDir,
        (s) => {
          localSecrets = s;
          xds.setLocalSecrets(s);
          log.info('credentials reloaded', { dir: o.credentialDir, secrets: [...s.keys()].filter((k) => k.startsWith('kubernetes://')) });
        },
        (err) => log.warn('cannot watch the credential directory', { dir: o.credentialDir, error: err }),
      )
    : () => {};

  const listeners = new ListenerManager({
    kind: o.node.type,
    mode: o.mode,
    clusters,
    routing,
    filters,
    ...(identity ? { secrets: (n: string) => identity.secret(n) } : {}),
    ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
    ...(o.outboundPort !== undefined ? { outboundPort: o.outboundPort } : {}),
    ...(o.inboundPort !== undefined ? { inboundPort: o.inboundPort } : {}),
    appTarget,
    namespace: o.node.namespace,
    domainSuffix: o.node.domainSuffix ?? 'cluster.local',
    onRecord,
    logger: createLogger({ scope: 'listeners', ...logOptions, fields: { node: id } }),
    ...(protect ? { protect } : {}),
  });

  let ready = false;
  const local = o.mode === 'local';
  let drainStarted: string | undefined;
  const startDrain = (why: string) => {
    if (drainStarted) return;
    drainStarted = why;
    ready = false;
    // pilot-agent drains a sidecar's inbound only (its app may still call out); local mode drains
    // all, so that the app's idle keep-alive connections to the outbound port do not hold it up.
    listeners.drain(o.node.type === 'sidecar' && !local ? 'inbound' : 'all');
    log.info('draining', { reason: why });
  };
  let markReady!: () => void;
  const readyPromise = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const rewriteCache = new WeakMap<Cluster__Output, Cluster__Output>();
  let firstApplied = false;
  const identityReady: Promise<void> = identity
    ? identity.start().catch((err: unknown) => {
        log.warn('no workload certificate', { error: (err as Error).message });
        return new Promise<void>(() => {});
      })
    : Promise.resolve();
  // Snapshots are applied one at a time, in order: clusters first (so routes find them), then listeners.
  let applying: Promise<void> = Promise.resolve();
  xds.onSnapshot((s) => {
    applying = applying.then(async () => {
      try {
        clusters.update(o.mode === 'local' ? rewriteInboundClusters(s, appTarget, rewriteCache) : s);
      } catch (err) {
        log.error('the cluster manager refused a snapshot', { error: err });
      }
      await listeners.update(s);
      if (!ready && !firstApplied) {
        firstApplied = true;
        // Ready once the workload certificate is there too (Envoy warms listeners until SDS answers).
        void identityReady.then(() => {
          if (closed || drainStarted) return;
          ready = true;
          markReady();
          log.info('proxy ready', { listeners: listeners.bound().map((b) => `${b.name}@${b.address}:${b.port}`), ...(identity ? { identity: identity.spiffeId } : {}) });
        });
      }
    });
  });

  let admin: AdminServer;
  try {
    admin = await startAdmin(
      {
        get snapshot() {
          return xds.snapshot;
        },
        resourceInfo: (t, n) => xds.resourceInfo(t, n),
        get warming() {
          return xds.status().warming;
        },
        accepted: { listeners: xds.accepted(TypeUrl.Listener), clusters: xds.accepted(TypeUrl.Cluster) },
        ...(identity
          ? {
              workloadSecrets: () => {
                const c = identity.current;
                return c ? { certChainPem: c.certChainPem, rootCertPem: c.rootCertPem, version: c.version, lastUpdated: c.notBefore } : undefined;
              },
            }
          : {}),
        bootstrap: {
          node: { id, cluster: buildNode(o.node).cluster, metadata: buildNode(o.node).metadata },
          xds: o.xdsAddress,
          xds_tls: o.xdsTls === true,
          mode: o.mode,
          ...(o.bindAddress ? { bind_address: o.bindAddress } : {}),
        },
        ready: () => ready,
        clusterStatus: () => clusters.status(),
        listeners: () => listeners.bound(),
        stats,
        serverInfo: () => ({ node: id, state: ready ? 'LIVE' : 'PRE_INITIALIZING', xds: xds.status(), uptime_seconds: Math.round(process.uptime()) }),
        ...(o.onQuit ? { quit: o.onQuit } : {}),
        why: {
          get snapshot() {
            return listeners.snapshot;
          },
          target: (snap, authority, port, listener) => listeners.outboundTarget(snap, authority, port, listener),
          clusters,
          ...(o.bindAddress ? { sourceAddress: o.bindAddress } : {}),
        },
      },
      {
        ...(o.adminHost ? { host: o.adminHost } : {}),
        ...(o.adminPort !== undefined ? { port: o.adminPort } : {}),
        ...(o.healthHost ? { healthHost: o.healthHost } : {}),
        ...(o.healthPort !== undefined ? { healthPort: o.healthPort } : {}),
        logger: log,
        ...(protect ? { protect } : {}),
      },
    );
  } catch (err) {
    stopWatching();
    await xds.close();
    await clusters.close();
    throw err;
  }
  stats.gauge('xds.connected', () => (xds.status().connected ? 1 : 0));
  stats.gauge('xds.update_success', () => xds.status().accepted);
  stats.gauge('xds.update_rejected', () => xds.status().rejected);
  const clusterStats = (clusters as Partial<WeftClusterManager>).stats?.bind(clusters);
  if (clusterStats) {
    stats.source(function* () {
      for (const [cluster, values] of clusterStats()) for (const [k, v] of Object.entries(values)) yield [`cluster.${cluster}.${k}`, v];
    });
  }
  if (guard) {
    stats.gauge('owner_guard.downstream_cx_refused', () => guard.refusedTotal);
    stats.source(function* () {
      for (const [port, n] of guard.refusedCounts()) yield [`owner_guard.${port}.downstream_cx_refused`, n];
    });
    log.info('owner-only ports', { ownerUid: guard.ownerUid });
  }
  stats.gauge('listener_manager.downstream_cx_active', () => listeners.bound().reduce((n, b) => n + b.activeConnections, 0));
  log.info('admin listening', { port: admin.port, healthPort: admin.healthPort, address: o.adminHost ?? '127.0.0.1' });
  if (telemetry && ((o.statsPort ?? -1) >= 0 || (o.statusPort ?? -1) >= 0)) {
    const host = o.healthHost ?? '0.0.0.0';
    try {
      await telemetry.listen({
        host,
        statsPort: o.statsPort,
        statusPort: o.statusPort,
        appMetricsUrl: o.appMetricsUrl,
        appProbers: o.appProbers,
        drain: () => startDrain('drain requested'),
        appProbeAddress: o.node.ip,
        ready: () => ready,
        envoyStats: () => stats.entries(),
        logger: log,
        protect,
      });
    } catch (err) {
      identity?.stop();
      stopWatching();
      await xds.close();
      await clusters.close();
      await admin.close();
      throw err;
    }
    log.info('telemetry listening', { address: host, statsPort: telemetry.statsPort, statusPort: telemetry.statusPort, ...(o.appMetricsUrl ? { appMetrics: o.appMetricsUrl } : {}) });
  }
  xds.start();

  let closed: Promise<void> | undefined;
  return {
    nodeId: id,
    xds,
    listeners,
    clusters,
    stats,
    adminPort: admin.port,
    healthPort: admin.healthPort,
    telemetry,
    ready: readyPromise,
    isReady: () => ready,
    drain: () => startDrain('drain requested'),
    close: () => {
      closed ??= (async () => {
        identity?.stop();
        stopWatching();
        // Drained already (/drain): the application is gone, so is the reason to wait (pilot-agent's skipDrain).
        if (drainStarted) log.info('drained', { reason: `${drainStarted} earlier`, activeConnections: listeners.activeConnections });
        else {
          startDrain('stop');
          const drained = await drainPeriod({
            drainMs: o.drainMs ?? 5000,
            exitOnZeroActiveConnections: o.exitOnZeroActiveConnections ?? local,
            minDrainMs: o.minDrainMs ?? (local ? 0 : 5000),
            activeConnections: () => listeners.activeConnections,
          });
          log.info('drained', { ...drained });
        }
        await listeners.close(0);
        // Telemetry buffered by filters (spans) goes out before the proxy exits.
        await filters.shutdown();
        await xds.close();
        await clusters.close();
        await admin.close();
        await telemetry?.close();
        log.info('proxy stopped');
      })();
      return closed;
    },
  };
}
