// The push queue (Istio's pushqueue and its push loop): a debounced PushRequest becomes a new push
// context, then a push to every connection, one at a time, in batches that yield to the event loop.
// Pushes never overlap: requests arriving during one are merged into the next.
import type { Logger } from '@weft/model';
import type { PushContext } from '../core/types.ts';
import type { DiscoveryEvent, ProxyNeedsPush, PushError, PushStatus } from './api.ts';
import type { Connection } from './connection.ts';
import type { FlowControl } from './flow.ts';
import type { PilotMetrics } from './metrics.ts';
import { monotonicMs, type PushRequest, type TriggerReason } from './push-request.ts';
import type { RespondOptions, Responder } from './respond.ts';
import { TimeSlice } from './time-slice.ts';
import { clusterHost, clusterNamesOfHosts, orderTypes, shortTypeName } from './types.ts';

/** Changed configs a push status names (one apply may change thousands; the status is polled). */
const maxListedConfigs = 100;

/** What the queue needs from the server. */
export interface PushHost {
  readonly metrics: PilotMetrics;
  readonly log: Logger;
  readonly responder: Responder;
  readonly flow: FlowControl;
  /** Connections pushed to before yielding to the event loop. */
  readonly batchSize: number;
  /** A push yields whenever it has run this long (ms). */
  readonly sliceMs: number;
  /** Push scoping; undefined: every proxy. */
  readonly needsPush: ProxyNeedsPush | undefined;
  connections(): readonly Connection[];
  /** The push context in force. */
  current(): PushContext | undefined;
  /** Builds the next push context (throws when it cannot) and puts it in force. */
  advance(): PushContext;
  configRevision(): number;
  pushed(status: PushStatus): void;
  emit(event: DiscoveryEvent): void;
}

export class PushQueue {
  readonly #host: PushHost;
  #pushing: Promise<void> | undefined;
  #queued: PushRequest | undefined;
  #stopped = false;

  constructor(host: PushHost) {
    this.#host = host;
  }

  enqueue(req: PushRequest): void {
    if (req.empty || this.#stopped) return;
    for (const [reason, n] of req.reasons) this.#host.metrics.pushTriggers.inc({ type: reason }, n);
    if (this.#pushing) {
      this.#queued = this.#queued ? this.#queued.merge(req) : req;
      return;
    }
    this.#pushing = this.#run(req).finally(() => {
      this.#pushing = undefined;
      const next = this.#queued;
      this.#queued = undefined;
      if (next) this.enqueue(next);
    });
  }

  /** Resolves when no push runs and none is queued. */
  async idle(): Promise<void> {
    while (this.#pushing) await this.#pushing;
  }

  stop(): void {
    this.#stopped = true;
  }

  async #run(req: PushRequest): Promise<void> {
    const host = this.#host;
    const t0 = monotonicMs();
    const configRevision = host.configRevision();
    const previous = host.current();
    let push: PushContext;
    try {
      push = host.advance();
    } catch (err) {
      host.metrics.contextErrors.inc();
      host.log.error('building the push context failed; the previous one stays in force', { error: err instanceof Error ? err.message : String(err), configs: [...req.configs] });
      return;
    }
    const buildMs = monotonicMs() - t0;
    const errors: PushError[] = [];
    const batch = Math.max(1, host.batchSize);
    const slice = new TimeSlice(host.sliceMs);
    const conns = host.connections();
    // Endpoint changes: the cluster names of the changed hosts, looked up in each proxy's subscription.
    const edsNames = req.edsHosts.size > 0 ? clusterNamesOfHosts(req.edsHosts) : undefined;
    let proxiesPushed = 0;
    let proxiesSkipped = 0;
    let responses = 0;
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i]!;
      if (!c.closed && host.current() === push) {
        // Config changes none of this proxy's config depends on: only endpoint changes (if any) go to it.
        const concerned = !req.full || req.scoped === undefined || !host.needsPush || host.needsPush(c.proxy, req.scoped, previous, push);
        if (!concerned) proxiesSkipped++;
        const n = await this.#pushConnection(c, push, req, concerned, edsNames, errors, slice);
        responses += n;
        if (n > 0) proxiesPushed++;
      }
      if (host.flow.over) {
        await host.flow.drained();
        slice.reset();
      } else if ((i + 1) % batch === 0 || slice.over()) await slice.yield();
    }
    const reasons: Partial<Record<TriggerReason, number>> = {};
    for (const [k, n] of req.reasons) reasons[k] = n;
    const status: PushStatus = {
      version: push.version,
      configRevision,
      time: new Date().toISOString(),
      durationMs: monotonicMs() - t0,
      buildMs,
      debounceMs: Math.max(0, t0 - req.start),
      full: req.full,
      types: req.allTypes ? 'all' : orderTypes(req.types),
      edsHosts: [...req.edsHosts].sort(),
      configs: [...req.configs].sort().slice(0, maxListedConfigs),
      moreConfigs: Math.max(0, req.configs.size - maxListedConfigs),
      reasons,
      proxies: conns.length,
      proxiesPushed,
      proxiesSkipped,
      responses,
      errors,
    };
    host.pushed(status);
    host.log.info('pushed', {
      version: status.version,
      full: status.full,
      types: status.types === 'all' ? 'all' : status.types.map(shortTypeName),
      edsHosts: status.edsHosts.length,
      configs: status.configs.slice(0, 20),
      configCount: status.configs.length + status.moreConfigs,
      proxies: status.proxies,
      proxiesPushed,
      proxiesSkipped,
      responses,
      errors: errors.length,
      buildMs: Math.round(buildMs * 10) / 10,
      durationMs: Math.round(status.durationMs * 10) / 10,
    });
    host.emit({ type: 'push', status });
  }

  /** Sends one push to one connection; returns the number of responses sent. */
  async #pushConnection(
    conn: Connection,
    push: PushContext,
    req: PushRequest,
    concerned: boolean,
    edsNames: readonly string[] | undefined,
    errors: PushError[],
    slice: TimeSlice,
  ): Promise<number> {
    const host = this.#host;
    let sent = 0;
    for (const type of orderTypes(conn.watched.keys())) {
      if (slice.over()) {
        await slice.yield();
        if (conn.closed) break;
      }
      const w = conn.watched.get(type)!;
      const scope = req.scopeOf(type, concerned);
      if (scope === 'none' || w.idle) continue;
      const options: RespondOptions = { force: false, start: req.start };
      if (scope === 'hosts') {
        // Endpoint-only change: only the clusters of the hosts whose endpoints changed.
        const names: string[] = [];
        if (edsNames && edsNames.length < w.names.size) {
          for (const n of edsNames) if (w.names.has(n)) names.push(n);
        } else {
          for (const n of w.names) {
            const h = clusterHost(n);
            if (h !== undefined && req.edsHosts.has(h)) names.push(n);
          }
        }
        if (names.length === 0) continue;
        options.names = names.sort();
      }
      const t = monotonicMs();
      const pending = host.responder.respondInPush(conn, w, push, options, slice);
      const result = pending instanceof Promise ? await pending : pending;
      if (result === 'sent') {
        sent++;
        host.metrics.pushTime.observe({ type: shortTypeName(type) }, (monotonicMs() - t) / 1000);
      } else if (result instanceof Error) {
        errors.push({ proxy: conn.proxy.id, typeUrl: type, message: result.message });
      }
    }
    if (!conn.closed) conn.pushVersion = push.version;
    return sent;
  }
}
