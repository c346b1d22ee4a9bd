// What a batch of changes asks of a push, and the debouncer that forms batches.
import { type Config, describeConfig, groupKindOf } from '@weft/model';
import { TypeUrl } from '@weft/xds';
import type { RegistryChange } from '../core/types.ts';
import { isScopedKind, type PushScope } from './push-scope.ts';
import { typesAffectedBy } from './types.ts';

export type TriggerReason = 'config' | 'service' | 'endpoint' | 'debug';

/** Monotonic milliseconds (performance.now()); durations only, never wall-clock time. */
export function monotonicMs(): number {
  return performance.now();
}

/**
 * One push's scope, merged from every change in a debounced batch. `full` pushes regenerate the
 * types in `types` (or all); an endpoints-only push regenerates EDS for `edsHosts` only.
 */
export class PushRequest {
  /** Something other than endpoints changed: a new push context and the affected types. */
  full = false;
  /** Every type must be regenerated (a service changed, a Sidecar changed, a debug push...). */
  allTypes = false;
  readonly types = new Set<string>();
  /** Hostnames whose endpoints changed (EDS for their clusters only). */
  readonly edsHosts = new Set<string>();
  /** `VirtualService default/reviews` for each changed config (logs, push status). */
  readonly configs = new Set<string>();
  readonly reasons = new Map<TriggerReason, number>();
  /**
   * What changed, when every change can be judged proxy by proxy (push-scope.ts): the configs (each
   * version, before and after) and the hostnames whose services changed; undefined once anything
   * else changed: then every proxy is pushed.
   */
  scoped: PushScope | undefined = { configs: [], hosts: new Set(), workloads: new Set() };
  /** When the first change of the batch happened (monotonicMs). Convergence is measured from here. */
  start: number;

  constructor(start: number = monotonicMs()) {
    this.start = start;
  }

  static all(reason: TriggerReason, start?: number): PushRequest {
    const r = new PushRequest(start);
    r.full = true;
    r.allTypes = true;
    r.scoped = undefined;
    r.count(reason);
    return r;
  }

  /** `previous`: the version an update replaced; `null` for an update whose previous version is unknown (then every proxy is pushed). */
  addConfig(config: Config, previous?: Config | null): this {
    this.full = true;
    this.configs.add(describeConfig(config));
    const types = typesAffectedBy(groupKindOf(config));
    // Kinds that regenerate no type by themselves (WorkloadEntry: the registry says which endpoints moved) leave the scope as it is.
    if (types?.length === 0) return this.count('config');
    if (this.scoped && previous !== null && isScopedKind(groupKindOf(config))) this.scoped.configs.push(config, ...(previous ? [previous] : []));
    else this.scoped = undefined;
    if (types === undefined) this.allTypes = true;
    else for (const t of types) this.types.add(t);
    return this.count('config');
  }

  addRegistryChange(change: RegistryChange): this {
    if (change.services) {
      this.full = true;
      this.allTypes = true;
      if (this.scoped && change.hosts) for (const h of change.hosts) this.scoped.hosts.add(h);
      else this.scoped = undefined;
      this.count('service');
    }
    if (change.workloads?.size) {
      this.full = true;
      this.allTypes = true;
      if (this.scoped) for (const a of change.workloads) this.scoped.workloads.add(a);
      if (!change.services) this.count('endpoint');
    }
    if (change.endpoints.size > 0) {
      for (const h of change.endpoints) this.edsHosts.add(h);
      if (!change.services) this.count('endpoint');
    }
    return this;
  }

  merge(other: PushRequest): this {
    this.full ||= other.full;
    this.allTypes ||= other.allTypes;
    for (const t of other.types) this.types.add(t);
    for (const h of other.edsHosts) this.edsHosts.add(h);
    for (const c of other.configs) this.configs.add(c);
    for (const [k, n] of other.reasons) this.reasons.set(k, (this.reasons.get(k) ?? 0) + n);
    this.scoped =
      this.scoped && other.scoped
        ? {
            configs: [...this.scoped.configs, ...other.scoped.configs],
            hosts: new Set([...this.scoped.hosts, ...other.scoped.hosts]),
            workloads: new Set([...this.scoped.workloads, ...other.scoped.workloads]),
          }
        : undefined;
    this.start = Math.min(this.start, other.start);
    return this;
  }

  /**
   * How a watched type takes part: regenerate everything subscribed, only `edsHosts`' clusters, or
   * not at all. `configChanged` false: the config changes do not concern this proxy (push-scope.ts).
   */
  scopeOf(typeUrl: string, configChanged = true): 'all' | 'hosts' | 'none' {
    if (configChanged && (this.allTypes || this.types.has(typeUrl))) return 'all';
    if (typeUrl === TypeUrl.ClusterLoadAssignment && this.edsHosts.size > 0) return 'hosts';
    return 'none';
  }

  /** Nothing to push (e.g. a change of a kind that affects no type). */
  get empty(): boolean {
    return !this.allTypes && this.types.size === 0 && this.edsHosts.size === 0;
  }

  private count(reason: TriggerReason): this {
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    return this;
  }
}

export interface DebounceOptions {
  /** Push after this long without a new change (Istio's PILOT_DEBOUNCE_AFTER: 100 ms). */
  quietMs: number;
  /** Push at the latest this long after the batch's first change (PILOT_DEBOUNCE_MAX: 10 s). */
  maxMs: number;
}

export const defaultDebounce: DebounceOptions = { quietMs: 100, maxMs: 10_000 };

/** Merges changes into one PushRequest and hands it on after a quiet period (or the maximum wait). */
export class Debouncer {
  readonly #options: DebounceOptions;
  readonly #flush: (request: PushRequest) => void;
  #pending: PushRequest | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: DebounceOptions, flush: (request: PushRequest) => void) {
    this.#options = options;
    this.#flush = flush;
  }

  get pending(): PushRequest | undefined {
    return this.#pending;
  }

  add(request: PushRequest): void {
    if (this.#pending) this.#pending.merge(request);
    else this.#pending = request;
    if (this.#timer) clearTimeout(this.#timer);
    const now = monotonicMs();
    const due = Math.min(now + this.#options.quietMs, this.#pending.start + this.#options.maxMs);
    this.#timer = setTimeout(() => this.flush(), Math.max(0, due - now));
  }

  /** Hands on the pending batch now, if any. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const request = this.#pending;
    this.#pending = undefined;
    if (request) this.#flush(request);
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
  }
}
