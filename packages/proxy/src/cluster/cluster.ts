// One cluster as the data path uses it: its hosts (from EDS, inline, DNS, or the original
// destination), the load balancer over them, circuit breakers, outlier detection, and the
// request/connect entry points.
//
// In the request path (README's Request path) this is where the upstream endpoint is chosen:
// `request` (HTTP, from http/upstream-attempt.ts) and `connect` (tcp_proxy) call `choose`, which
// takes a priority level, then the level's load balancer (lb.ts) picks a host, honouring the
// consistent-hash key and the hosts a retry excludes; the host's pool (pool.ts) carries the request.
import { isIP, type Socket } from 'node:net';
import type { Logger } from '@weft/model';
import type { Cluster__Output, ClusterLoadAssignment__Output, Secret__Output } from '@weft/xds';
import { type EndpointPreview, type EndpointStatus, type UpstreamCluster, UpstreamError, type UpstreamOptions, type UpstreamRequest, type UpstreamResponse } from '../core/types.ts';
import { type ClusterSettings, clusterSettings, sameMessage, type TransportChoice } from './config.ts';
import { hash32 } from './hash.ts';
import { ClusterStats, type EndpointSpec, endpointKey, endpointsOf, Host } from './host.ts';
import { createPicker, HashRing, type Picker } from './lb.ts';
import { OutlierDetector } from './outlier.ts';
import { HttpPool, type PoolCluster } from './pool.ts';
import { Exchange } from './pool-exchange.ts';
import { countTls, dial, resolveTls, type TlsMaterial } from './transport.ts';

export type DnsLookup = (hostname: string, family: 0 | 4 | 6) => Promise<string[]>;

/** What every cluster shares: the manager's logger, clock, randomness, secrets and resolver. */
export interface ClusterContext {
  readonly logger: Logger;
  readonly random: () => number;
  readonly now: () => number;
  secret(name: string): Secret__Output | undefined;
  readonly lookup: DnsLookup;
  /** Auto mTLS (transport_socket_matches) to an endpoint falls back to plaintext while the SDS secrets are missing. */
  readonly plaintextFallback: boolean;
}

interface Level {
  readonly picker: Picker<Host>;
}

export class ClusterImpl implements UpstreamCluster, PoolCluster {
  readonly name: string;
  readonly settings: ClusterSettings;
  def: Cluster__Output;
  readonly stats = new ClusterStats();
  readonly outlier: OutlierDetector | undefined;
  cxActive = 0;
  pendingActive = 0;
  rqActive = 0;
  draining = false;
  #retries = 0;
  #hosts: Host[] = [];
  #byKey = new Map<string, Host>();
  #levels: Level[] = [];
  /** Cumulative priority loads in percent, one per level (only read with several levels). */
  #loads: number[] = [];
  #rings = new Map<number, HashRing<Host>>();
  #cla: ClusterLoadAssignment__Output | undefined;
  #claApplied = false;
  #ready: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #ctx: ClusterContext;

  constructor(def: Cluster__Output, ctx: ClusterContext) {
    this.settings = clusterSettings(def);
    this.name = def.name;
    this.def = def;
    this.#ctx = ctx;
    const o = this.settings.outlier;
    this.outlier =
      o && this.settings.kind !== 'ORIGINAL_DST'
        ? new OutlierDetector(o, {
            hosts: () => this.#hosts,
            changed: () => this.#rebuildLb(),
            stats: this.stats,
            random: ctx.random,
            now: ctx.now,
            logger: ctx.logger,
            cluster: this.name,
          })
        : undefined;
    switch (this.settings.kind) {
      case 'STATIC':
        this.#setEndpoints(endpointsOf(this.settings.loadAssignment));
        break;
      case 'STRICT_DNS':
      case 'LOGICAL_DNS':
        this.#ready = this.#resolveDns().finally(() => {
          this.#ready = undefined;
        });
        break;
      default:
    }
  }

  // ---- endpoints ----

  /** Applies the cluster's EDS assignment; a no-op when it did not change. */
  applyAssignment(cla: ClusterLoadAssignment__Output | undefined): void {
    if (this.settings.kind !== 'EDS') return;
    if (this.#claApplied && (cla === this.#cla || (cla && this.#cla && sameMessage(cla, this.#cla)))) {
      this.#cla = cla;
      return;
    }
    this.#cla = cla;
    this.#claApplied = true;
    this.#setEndpoints(endpointsOf(cla));
  }

  #transportFor(match: ReadonlyMap<string, string>): TransportChoice | undefined {
    for (const m of this.settings.transportMatches) {
      let ok = true;
      for (const [k, v] of m.match ?? []) {
        if (match.get(k) !== v) {
          ok = false;
          break;
        }
      }
      if (ok) return m;
    }
    return this.settings.transport;
  }

  #setEndpoints(specs: readonly (EndpointSpec & { key?: string; dialAddress?: string })[]): void {
    const prev = this.#byKey;
    const byKey = new Map<string, Host>();
    const hosts: Host[] = [];
    let membership = false;
    for (const spec of specs) {
      const key = spec.key ?? endpointKey(spec.address, spec.port);
      if (byKey.has(key)) continue;
      let h = prev.get(key);
      if (!h) {
        h = new Host(spec.address, spec.port, key);
        membership = true;
      } else if (h.weight !== spec.weight || h.priority !== spec.priority) membership = true;
      h.weight = spec.weight;
      h.edsHealthy = spec.healthy;
      h.priority = spec.priority;
      h.locality = spec.locality;
      h.localityWeight = spec.localityWeight;
      h.dialAddress = spec.dialAddress ?? spec.address;
      const transport = this.#transportFor(spec.transportMatch);
      // A host that now needs another transport (plaintext -> mTLS) gets new connections.
      if (h.transport !== transport) h.drainPools();
      h.transport = transport;
      byKey.set(key, h);
      hosts.push(h);
    }
    for (const [key, h] of prev) {
      if (byKey.has(key)) continue;
      h.removed = true;
      h.drainPools();
      membership = true;
    }
    this.#hosts = hosts;
    this.#byKey = byKey;
    if (membership) this.#rings.clear();
    this.#rebuildLb();
  }

  /**
   * Weights of a level's usable hosts. With locality-weighted LB (Envoy's locality_weighted_lb_config)
   * a locality's share is its weight times its availability (healthy fraction x 1.4, at most 1; 1
   * in panic), split among its usable hosts by their own weights.
   */
  #weightsOf(usable: readonly Host[], all: readonly Host[], panic: boolean): number[] {
    if (!this.settings.localityWeighted) return usable.map((h) => h.weight);
    const sums = new Map<string, number>();
    for (const h of usable) sums.set(h.locality ?? '', (sums.get(h.locality ?? '') ?? 0) + h.weight);
    const counts = new Map<string, { healthy: number; total: number }>();
    for (const h of all) {
      const c = counts.get(h.locality ?? '') ?? { healthy: 0, total: 0 };
      c.total++;
      if (h.edsHealthy && !h.ejected) c.healthy++;
      counts.set(h.locality ?? '', c);
    }
    return usable.map((h) => {
      if (h.localityWeight === undefined) return h.weight;
      const c = counts.get(h.locality ?? '')!;
      const availability = panic ? 1 : Math.min(1, (1.4 * c.healthy) / c.total);
      return (h.weight * h.localityWeight * availability) / (sums.get(h.locality ?? '') || 1);
    });
  }

  /**
   * Rebuilds the per-priority pickers after a membership or health change (EDS push, ejection,
   * return), with Envoy's priority load: a level's health is its healthy share x 1.4 (the
   * overprovisioning factor), capped at 100; levels take traffic in order until 100 is reached,
   * and when the levels' health sums to less than 100 the loads are scaled up to it. Panic
   * (healthy_panic_threshold) applies to a level only while the levels together are below 100;
   * with every level in panic, loads follow host counts.
   */
  #rebuildLb(): void {
    if (this.settings.kind === 'ORIGINAL_DST') return;
    const s = this.settings;
    const byPriority = new Map<number, Host[]>();
    for (const h of this.#hosts) {
      let list = byPriority.get(h.priority);
      if (!list) {
        list = [];
        byPriority.set(h.priority, list);
      }
      list.push(h);
    }
    const priorities = [...byPriority.keys()].sort((a, b) => a - b);
    const all = priorities.map((p) => byPriority.get(p)!);
    const healthy = all.map((hosts) => hosts.filter((h) => h.edsHealthy && !h.ejected));
    const health = all.map((hosts, i) => Math.min(100, Math.floor((140 * healthy[i]!.length) / hosts.length)));
    const normalized = Math.min(100, health.reduce((a, b) => a + b, 0));
    const panic = all.map((hosts, i) => normalized < 100 && s.panicThreshold > 0 && (100 * healthy[i]!.length) / hosts.length < s.panicThreshold);
    const totalPanic = panic.length > 0 && panic.every(Boolean);
    const levels: Level[] = [];
    for (let i = 0; i < priorities.length; i++) {
      const p = priorities[i]!;
      const usable = panic[i] ? all[i]! : healthy[i]!;
      for (const h of all[i]!) h.usable = false;
      for (const h of usable) h.usable = true;
      let ring: HashRing<Host> | undefined;
      if (s.lbPolicy === 'RING_HASH') {
        ring = this.#rings.get(p);
        if (!ring) {
          ring = new HashRing(all[i]!, all[i]!.map((h) => h.weight), s.ringMin, s.ringMax);
          this.#rings.set(p, ring);
        }
      }
      const picker = createPicker(s.lbPolicy, usable, this.#weightsOf(usable, all[i]!, panic[i]!), {
        random: this.#ctx.random,
        leastRequestChoices: s.leastRequestChoices,
        maglevTableSize: s.maglevTableSize,
        ...(ring ? { ring } : {}),
      });
      levels.push({ picker });
    }
    // Per-level loads in percent, then cumulative.
    let shares: number[];
    if (totalPanic) {
      const hosts = all.reduce((n, l) => n + l.length, 0);
      shares = all.map((l) => (100 * l.length) / hosts);
    } else if (normalized === 0) {
      shares = health.map((_, i) => (i === 0 ? 100 : 0));
    } else if (normalized < 100) {
      shares = health.map((h) => (h * 100) / normalized);
    } else {
      let remaining = 100;
      shares = health.map((h) => {
        const load = Math.min(remaining, h);
        remaining -= load;
        return load;
      });
    }
    const loads: number[] = [];
    let acc = 0;
    for (const share of shares) {
      acc += share;
      loads.push(acc);
    }
    this.#levels = levels;
    this.#loads = loads;
  }

  // ---- DNS ----

  async #lookup(name: string): Promise<string[]> {
    const lookup = this.#ctx.lookup;
    switch (this.settings.dnsFamily) {
      case 'V4_ONLY':
        return lookup(name, 4);
      case 'V6_ONLY':
        return lookup(name, 6);
      case 'ALL':
        return lookup(name, 0);
      case 'V4_PREFERRED': {
        const v4 = await lookup(name, 4).catch(() => []);
        return v4.length > 0 ? v4 : lookup(name, 6);
      }
      default: {
        const v6 = await lookup(name, 6).catch(() => []);
        return v6.length > 0 ? v6 : lookup(name, 4);
      }
    }
  }

  /** Resolves every endpoint name; keeps the previous hosts when resolution fails; schedules the next refresh. */
  async #resolveDns(): Promise<void> {
    const logical = this.settings.kind === 'LOGICAL_DNS';
    const specs = endpointsOf(this.settings.loadAssignment).slice(0, logical ? 1 : undefined);
    try {
      const out: (EndpointSpec & { key?: string; dialAddress?: string })[] = [];
      for (const spec of specs) {
        const addresses = isIP(spec.address) ? [spec.address] : await this.#lookup(spec.address);
        if (logical) {
          // One logical host named by the DNS name; new connections go to the latest address.
          if (addresses[0]) out.push({ ...spec, key: endpointKey(spec.address, spec.port), dialAddress: addresses[0] });
        } else {
          for (const a of addresses) out.push({ ...spec, address: a });
        }
      }
      if (!this.draining) this.#setEndpoints(out);
    } catch (err) {
      this.#ctx.logger.warn('DNS resolution failed', { cluster: this.name, error: err instanceof Error ? err.message : String(err) });
    }
    if (this.draining) return;
    this.#timer = setTimeout(() => void this.#resolveDns(), this.settings.dnsRefreshMs);
    this.#timer.unref();
  }

  // ---- original destination ----

  #originalDestination(opts: UpstreamOptions): Host | undefined {
    const d = opts.originalDestination;
    if (!d) return undefined;
    const key = endpointKey(d.address, d.port);
    let h = this.#byKey.get(key);
    if (!h) {
      h = new Host(d.address, d.port, key);
      h.usable = true;
      h.transport = this.settings.transport;
      this.#byKey.set(key, h);
      this.#hosts.push(h);
      if (!this.#timer) {
        this.#timer = setInterval(() => this.#sweep(), this.settings.cleanupIntervalMs);
        this.#timer.unref();
      }
    }
    return h;
  }

  /** Forgets original destinations unused for cleanup_interval (Envoy's ORIGINAL_DST host cleanup). */
  #sweep(): void {
    const cutoff = Date.now() - this.settings.cleanupIntervalMs;
    const keep: Host[] = [];
    for (const h of this.#hosts) {
      if (h.active === 0 && h.lastUsed < cutoff) {
        this.#byKey.delete(h.key);
        h.removed = true;
        h.drainPools();
      } else keep.push(h);
    }
    this.#hosts = keep;
  }

  // ---- picking ----

  /** The endpoint for one request or connection, or undefined when none is healthy. */
  choose(opts: UpstreamOptions): Host | undefined {
    if (this.settings.kind === 'ORIGINAL_DST') return this.#originalDestination(opts);
    const levels = this.#levels;
    if (levels.length === 0) return undefined;
    const level = levels.length > 1 ? levels[this.#levelIndex(this.#ctx.random)]! : levels[0]!;
    return level.picker.pick(opts.hashKey === undefined ? undefined : hash32(opts.hashKey), opts.excludeEndpoints);
  }

  /** The priority level a draw takes by the levels' loads (several levels only): `choose` and `preview` alike. */
  #levelIndex(random: () => number): number {
    const r = random() * 100;
    const loads = this.#loads;
    for (let i = 0; i < loads.length; i++) if (r < loads[i]!) return i;
    return 0;
  }

  preview(opts: UpstreamOptions, random: () => number): EndpointPreview {
    const s = this.settings;
    if (s.kind === 'ORIGINAL_DST') {
      const d = opts.originalDestination;
      const how = 'an ORIGINAL_DST cluster: the endpoint is where the connection was going';
      return { endpoint: d ? { address: d.address, port: d.port, healthy: true, ejected: false, weight: 1 } : undefined, how };
    }
    const policy = s.lbPolicy === 'RING_HASH' || s.lbPolicy === 'MAGLEV' ? `${s.lbPolicy}${opts.hashKey === undefined ? ' without a hash key (random pick)' : ' by the hash key'}` : s.lbPolicy;
    if (this.#ready) return { endpoint: undefined, how: `${s.kind}: DNS not resolved yet` };
    const usable = this.#hosts.filter((h) => h.usable).length;
    // `choose` with the picker peeking instead of picking, and `random` for the live source.
    const levels = this.#levels;
    const index = levels.length > 1 ? this.#levelIndex(random) : 0;
    const h = levels[index]?.picker.peek(opts.hashKey === undefined ? undefined : hash32(opts.hashKey), random);
    if (!h) return { endpoint: undefined, how: `${policy} over ${this.#hosts.length} endpoints, none usable` };
    const panic = usable > 0 && this.#hosts.some((x) => x.usable && !(x.edsHealthy && !x.ejected));
    // What `request` checks before choosing: a full breaker fails the request (UO) wherever it would go.
    const full = this.rqActive >= s.limits.maxRequests ? `; its max_requests circuit breaker is full (${this.rqActive} in flight), so a request now fails with 503 (UO)` : '';
    return {
      endpoint: { address: h.dialAddress, port: h.port, healthy: h.edsHealthy && !h.ejected, ejected: h.ejected, weight: h.weight, ...(h.locality ? { locality: h.locality } : {}) },
      how: `${policy} over ${usable} usable of ${this.#hosts.length} endpoints${levels.length > 1 ? ` (priority level ${index})` : ''}${panic ? ', in panic (too few healthy: all are used)' : ''}${full}`,
    };
  }

  /** Opens one transport connection (TCP, or TLS when the host's transport socket says so). */
  dial(host: Host, h2: boolean, done: (err: Error | null, socket: Socket | null) => void): void {
    let tls: TlsMaterial | undefined;
    const choice = host.transport;
    if (choice?.tls) {
      try {
        const r = resolveTls(choice.tls, (n) => this.#ctx.secret(n));
        if ('material' in r) tls = r.material;
        else if (!(choice.match !== undefined && this.#ctx.plaintextFallback)) {
          done(new Error(`TLS secret "${r.missing}" is not available`), null);
          return;
        }
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)), null);
        return;
      }
    }
    const s = this.settings;
    const finish = tls ? countTls(this.stats, done) : done;
    dial(host.dialAddress, host.port, { connectTimeoutMs: s.connectTimeoutMs, bindAddress: s.bindAddress, keepaliveTimeS: s.keepaliveTimeS, tls, h2 }, finish);
  }

  // ---- UpstreamCluster ----

  request(req: UpstreamRequest, opts: UpstreamOptions): Promise<UpstreamResponse> {
    this.stats.upstream_rq_total++;
    if (this.rqActive >= this.settings.limits.maxRequests) {
      this.stats.upstream_rq_pending_overflow++;
      return Promise.reject(new UpstreamError('UO', 'upstream overflow: requests limit (max_requests) reached'));
    }
    if (this.#ready) return this.#ready.then(() => this.#request(req, opts));
    return this.#request(req, opts);
  }

  #request(req: UpstreamRequest, opts: UpstreamOptions): Promise<UpstreamResponse> {
    const host = this.choose(opts);
    if (!host) {
      this.stats.upstream_cx_none_healthy++;
      return Promise.reject(new UpstreamError('UH', 'no healthy upstream'));
    }
    const p = this.settings.protocol;
    const h2 = p === 'http2' || (p === 'downstream' && opts.downstreamProtocol === 'HTTP/2');
    let pool = h2 ? host.h2 : host.h1;
    if (!pool) {
      pool = new HttpPool(this, host, h2);
      if (h2) host.h2 = pool;
      else host.h1 = pool;
    }
    return new Exchange(this, host, pool, req, opts).run();
  }

  async connect(opts: UpstreamOptions): Promise<{ socket: Socket; endpoint: string }> {
    if (this.#ready) await this.#ready;
    const host = this.choose(opts);
    if (!host) {
      this.stats.upstream_cx_none_healthy++;
      throw new UpstreamError('UH', 'no healthy upstream');
    }
    if (this.cxActive >= this.settings.limits.maxConnections) {
      this.stats.upstream_cx_overflow++;
      throw new UpstreamError('UO', 'upstream overflow: connections limit (max_connections) reached', host.key);
    }
    this.cxActive++;
    host.active++;
    host.total++;
    host.lastUsed = Date.now();
    this.stats.upstream_cx_total++;
    let socket: Socket;
    try {
      socket = await new Promise<Socket>((resolve, reject) => {
        this.dial(host, false, (err, s) => (err || !s ? reject(err ?? new Error('connect failed')) : resolve(s)));
      });
    } catch (err) {
      this.cxActive--;
      host.active--;
      host.failures++;
      this.stats.upstream_cx_connect_fail++;
      if ((err as { code?: string }).code === 'UND_ERR_CONNECT_TIMEOUT') this.stats.upstream_cx_connect_timeout++;
      this.outlier?.putLocal(host, 'connect-failed');
      throw new UpstreamError('UF', `upstream connect error: ${err instanceof Error ? err.message : String(err)}`, host.key);
    }
    this.outlier?.putLocal(host, 'success', true);
    socket.once('close', () => {
      this.cxActive--;
      host.active--;
    });
    return { socket, endpoint: host.key };
  }

  acquireRetry(): (() => void) | undefined {
    if (this.#retries >= this.settings.limits.maxRetries) {
      this.stats.upstream_rq_retry_overflow++;
      return undefined;
    }
    this.#retries++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#retries--;
    };
  }

  // ---- admin and lifecycle ----

  status(): EndpointStatus[] {
    return this.#hosts.map((h) => ({
      address: h.dialAddress,
      port: h.port,
      weight: h.weight,
      healthy: h.edsHealthy && !h.ejected,
      ejected: h.ejected,
      activeRequests: h.active,
      totalRequests: h.total,
      failures: h.failures,
      ...(h.locality ? { locality: h.locality } : {}),
      priority: h.priority,
    }));
  }

  gauges(): Record<string, number> {
    let ejected = 0;
    let healthy = 0;
    for (const h of this.#hosts) {
      if (h.ejected) ejected++;
      if (h.edsHealthy && !h.ejected) healthy++;
    }
    return {
      upstream_rq_active: this.rqActive,
      upstream_rq_pending_active: this.pendingActive,
      upstream_cx_active: this.cxActive,
      'outlier_detection.ejections_active': ejected,
      membership_total: this.#hosts.length,
      membership_healthy: healthy,
    };
  }

  #stop(): void {
    this.draining = true;
    this.outlier?.stop();
    if (this.#timer) {
      clearTimeout(this.#timer);
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Removed or replaced: stop timers; idle connections close now, busy ones when their requests end. */
  drain(): void {
    this.#stop();
    for (const h of this.#hosts) h.drainPools();
  }

  async destroy(): Promise<void> {
    this.#stop();
    await Promise.all(this.#hosts.map((h) => h.destroyPools()));
  }
}
