// Passive health checking, as Envoy's outlier detector (consecutive errors only: Istio turns
// success-rate ejection off): consecutive 5xx, consecutive gateway failures (502/503/504) and,
// with split_external_local_origin_errors, consecutive local-origin failures (connect failure,
// reset, timeout). Ejection happens inline; hosts return on the interval sweep once
// base_ejection_time × (times ejected) has passed; the backoff shrinks again while a host behaves.
import type { Logger } from '@weft/model';
import type { OutlierSettings } from './config.ts';
import type { ClusterStats, Host } from './host.ts';

export type LocalOriginResult = 'connect-failed' | 'timeout' | 'success';
type EjectionType = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';

export interface OutlierHooks {
  /** Every host of the cluster (the denominator of max_ejection_percent). */
  hosts(): readonly Host[];
  /** A host was ejected or returned: the load balancer must be rebuilt. */
  changed(): void;
  readonly stats: ClusterStats;
  readonly random: () => number;
  readonly now: () => number;
  readonly logger: Logger;
  readonly cluster: string;
}

export class OutlierDetector {
  readonly settings: OutlierSettings;
  readonly #hooks: OutlierHooks;
  readonly #timer: NodeJS.Timeout;

  constructor(settings: OutlierSettings, hooks: OutlierHooks) {
    this.settings = settings;
    this.#hooks = hooks;
    this.#timer = setInterval(() => this.sweep(), Math.max(1, settings.intervalMs));
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** An HTTP response status from the host (or the status a local-origin error stands for). */
  putHttp(host: Host, status: number): void {
    const s = this.settings;
    if (status >= 500) {
      if (status === 502 || status === 503 || status === 504) {
        if (++host.consecutiveGatewayFailure === s.consecutiveGatewayFailure) this.#detected(host, 'consecutive_gateway_failure');
      } else {
        host.consecutiveGatewayFailure = 0;
      }
      if (++host.consecutive5xx === s.consecutive5xx) this.#detected(host, 'consecutive_5xx');
    } else {
      host.consecutive5xx = 0;
      host.consecutiveGatewayFailure = 0;
    }
  }

  /** A connection-level result. Without the split, failures count as 503 (504 for timeouts), as Envoy maps them. */
  putLocal(host: Host, result: LocalOriginResult, final = false): void {
    if (this.settings.splitLocalOrigin) {
      if (result === 'success') host.consecutiveLocalOriginFailure = 0;
      else if (++host.consecutiveLocalOriginFailure === this.settings.consecutiveLocalOriginFailure) this.#detected(host, 'consecutive_local_origin_failure');
      return;
    }
    if (result === 'connect-failed') this.putHttp(host, 503);
    else if (result === 'timeout') this.putHttp(host, 504);
    else if (final) this.putHttp(host, 200);
  }

  #detected(host: Host, type: EjectionType): void {
    if (host.ejected || host.removed) return;
    if (type === 'consecutive_5xx') host.consecutive5xx = 0;
    else if (type === 'consecutive_gateway_failure') host.consecutiveGatewayFailure = 0;
    else host.consecutiveLocalOriginFailure = 0;
    this.#eject(host, type);
  }

  #eject(host: Host, type: EjectionType): void {
    const s = this.settings;
    const hosts = this.#hooks.hosts();
    let active = 0;
    for (const h of hosts) if (h.ejected) active++;
    const percent = (100 * (active + 1)) / Math.max(1, hosts.length);
    const allowed = percent <= s.maxEjectionPercent || (s.alwaysEjectOneHost && active === 0);
    if (!allowed) {
      this.#hooks.stats.outlier_detection_ejections_overflow++;
      return;
    }
    const enforcing = type === 'consecutive_5xx' ? s.enforcing5xx : type === 'consecutive_gateway_failure' ? s.enforcingGatewayFailure : s.enforcingLocalOriginFailure;
    if (enforcing <= 0 || (enforcing < 100 && this.#hooks.random() * 100 >= enforcing)) return;
    host.ejected = true;
    host.ejections++;
    host.ejectedAt = this.#hooks.now();
    host.ejectionJitterMs = s.maxEjectionJitterMs > 0 ? Math.floor(this.#hooks.random() * (s.maxEjectionJitterMs + 1)) : 0;
    if (host.ejectionBackoff * s.baseEjectionMs < s.maxEjectionMs + s.baseEjectionMs) host.ejectionBackoff++;
    this.#hooks.stats.outlier_detection_ejections_enforced_total++;
    this.#hooks.logger.info('outlier ejected', {
      cluster: this.#hooks.cluster,
      endpoint: host.key,
      type,
      ejectionMs: this.ejectionMs(host),
      ejections: host.ejections,
    });
    this.#hooks.changed();
  }

  /** How long the host's current ejection lasts. */
  ejectionMs(host: Host): number {
    const s = this.settings;
    return Math.min(s.baseEjectionMs * host.ejectionBackoff, s.maxEjectionMs) + host.ejectionJitterMs;
  }

  /** The interval sweep: return hosts whose time is up, and shrink the backoff of hosts that stayed healthy. */
  sweep(): void {
    const now = this.#hooks.now();
    let changed = false;
    for (const h of this.#hooks.hosts()) {
      if (h.ejected) {
        if (now - h.ejectedAt >= this.ejectionMs(h)) {
          h.ejected = false;
          h.consecutive5xx = 0;
          h.consecutiveGatewayFailure = 0;
          h.consecutiveLocalOriginFailure = 0;
          h.lastUnejectedAt = now;
          changed = true;
          this.#hooks.logger.info('outlier returned', { cluster: this.#hooks.cluster, endpoint: h.key });
        }
      } else if (h.lastUnejectedAt !== undefined && now - h.lastUnejectedAt >= this.settings.intervalMs && h.ejectionBackoff > 0) {
        h.ejectionBackoff--;
      }
    }
    if (changed) this.#hooks.changed();
  }
}
