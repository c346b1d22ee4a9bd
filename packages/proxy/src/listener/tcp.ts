// tcp_proxy: a connection is piped both ways to one endpoint of the chain's cluster (picked by
// weight when there are several), with half-close passed on and the bytes counted for telemetry.
import { BlackHoleCluster } from '@weft/mesh';
import type { Socket } from 'node:net';
import type { DownstreamConnection, NetworkFilter, TcpConnectionHooks, TcpFilterContext } from '../core/filters.ts';
import { chooseWeighted, clusterNameOf, type Random } from '../core/route-action.ts';
import type { ClusterManager, RequestRecord, ResponseFlag } from '../core/types.ts';
import { UpstreamError } from '../core/types.ts';
import type { TcpRoute } from './chains.ts';

const defaultIdleMs = 3_600_000;

export interface TcpContext {
  clusters: ClusterManager;
  direction: RequestRecord['direction'];
  listener: string;
  originalDestination: { address: string; port: number } | undefined;
  onRecord: ((r: RequestRecord) => void) | undefined;
  onError?: (msg: string, fields: Record<string, unknown>) => void;
  /** The chain's network filters (RBAC, telemetry) and the connection they see. */
  filters?: readonly NetworkFilter[];
  connection?: DownstreamConnection;
  /** The weighted pick's random source (default Math.random; tests pin it). */
  random?: Random;
}

/** Proxies `downstream` (paused, possibly with bytes put back) to the route's cluster. */
export async function proxyTcp(downstream: Socket, route: TcpRoute, ctx: TcpContext): Promise<void> {
  const start = Date.now();
  const action = route.action;
  const clusterName = clusterNameOf(action, chooseWeighted(action, ctx.random ?? Math.random), undefined) ?? BlackHoleCluster;
  const record: RequestRecord = {
    direction: ctx.direction,
    listener: ctx.listener,
    protocol: 'TCP',
    startTime: start,
    durationMs: 0,
    responseCode: 0,
    responseFlags: new Set<ResponseFlag>(),
    bytesReceived: 0,
    bytesSent: 0,
    upstreamCluster: clusterName,
    attempts: 0,
  };
  if (downstream.remoteAddress) record.downstreamRemoteAddress = `${downstream.remoteAddress}:${downstream.remotePort}`;
  if (downstream.localAddress) record.downstreamLocalAddress = `${downstream.localAddress}:${downstream.localPort}`;
  let hooks: TcpConnectionHooks[] | undefined;
  let fctx: TcpFilterContext | undefined;
  if (ctx.filters && ctx.filters.length > 0 && ctx.connection) {
    fctx = { connection: ctx.connection, record };
    for (const f of ctx.filters) {
      const h = f.begin(fctx);
      if (!h) continue;
      if (hooks) hooks.push(h);
      else hooks = [h];
    }
  }
  const finish = () => {
    record.durationMs = Date.now() - start;
    if (hooks) for (const h of hooks) h.onClose?.(fctx!);
    ctx.onRecord?.(record);
  };
  downstream.on('error', () => {});
  if (hooks) {
    for (const h of hooks) {
      if (h.onConnect && !h.onConnect(fctx!)) {
        downstream.destroy();
        finish();
        return;
      }
    }
  }

  const cluster = clusterName === BlackHoleCluster ? undefined : ctx.clusters.get(clusterName);
  if (!cluster) {
    record.responseFlags.add(clusterName === BlackHoleCluster ? 'UH' : 'NC');
    downstream.destroy();
    finish();
    return;
  }
  let upstream: Socket | undefined;
  const tried = new Set<string>();
  const abort = new AbortController();
  const onEarlyClose = () => abort.abort();
  downstream.once('close', onEarlyClose);
  for (let attempt = 0; attempt < route.maxConnectAttempts && !upstream; attempt++) {
    record.attempts++;
    try {
      const opts: Parameters<typeof cluster.connect>[0] = { excludeEndpoints: tried, signal: abort.signal };
      if (ctx.originalDestination) opts.originalDestination = ctx.originalDestination;
      if (downstream.remoteAddress) opts.sourceAddress = downstream.remoteAddress;
      const c = await cluster.connect(opts);
      upstream = c.socket;
      record.upstreamHost = c.endpoint;
    } catch (err) {
      const flag = err instanceof UpstreamError ? err.flag : 'UF';
      if (err instanceof UpstreamError && err.endpoint) tried.add(err.endpoint);
      record.responseFlags.add(flag);
      if (attempt + 1 >= route.maxConnectAttempts || flag === 'UO' || flag === 'UH') {
        ctx.onError?.('tcp upstream connect failed', { cluster: clusterName, flag, error: (err as Error).message });
        break;
      }
    }
  }
  downstream.off('close', onEarlyClose);
  if (!upstream || downstream.destroyed) {
    upstream?.destroy();
    downstream.destroy();
    if (!upstream && record.responseFlags.size === 0) record.responseFlags.add('DC');
    finish();
    return;
  }
  // A connection that was retried and then made it is not a failure.
  record.responseFlags.clear();
  if (hooks) for (const h of hooks) h.onUpstreamConnected?.(fctx!, record.upstreamHost ?? '');
  const up = upstream;
  up.on('error', () => {});
  const idle = route.idleTimeoutMs ?? defaultIdleMs;
  downstream.setTimeout(idle, () => {
    downstream.destroy();
    up.destroy();
  });
  downstream.on('data', (chunk: Buffer) => {
    record.bytesReceived += chunk.length;
    if (hooks) for (const h of hooks) h.onData?.(fctx!, chunk.length, 0);
    if (!up.write(chunk)) downstream.pause();
  });
  up.on('drain', () => downstream.resume());
  up.on('data', (chunk: Buffer) => {
    record.bytesSent += chunk.length;
    if (hooks) for (const h of hooks) h.onData?.(fctx!, 0, chunk.length);
    if (!downstream.write(chunk)) up.pause();
  });
  downstream.on('drain', () => up.resume());
  downstream.on('end', () => up.end());
  up.on('end', () => downstream.end());
  let closed = 0;
  const onClose = () => {
    closed++;
    if (closed === 1) {
      // One side went away: give the other a moment to flush, then close it too.
      setTimeout(() => {
        up.destroy();
        downstream.destroy();
      }, 1000).unref();
      if (!up.destroyed && downstream.destroyed && !downstream.readableEnded) up.destroy();
      if (!downstream.destroyed && up.destroyed && !up.readableEnded) downstream.destroy();
    }
    if (closed === 2) finish();
  };
  downstream.once('close', onClose);
  up.once('close', onClose);
  downstream.resume();
}
