// Envoy-style counters for /stats, fed by every RequestRecord (telemetry proper, Istio's metrics,
// comes with issue 6 and reads the same records).
import { compileRe2, type Re2, Re2Error } from '@weft/model';
import type { RequestRecord } from '../core/types.ts';

/**
 * The largest RE2 program a `/stats?filter=` may compile to. RE2's matching time is linear in the
 * input times the program size; nested counted repetitions multiply the size (`(.{0,30}){0,30}` is
 * hundreds of instructions), so the size is what bounds a filter's cost per stat name.
 */
export const maxStatsFilterProgramSize = 1000;

export interface StatsFilter {
  /** Whether the pattern matches anywhere in `name` (RE2 semantics: linear time, no backtracking). */
  test(name: string): boolean;
}

/**
 * A `/stats?filter=` pattern compiled with RE2's syntax and semantics (model's compileRe2), as Envoy compiles it;
 * an error names what RE2 refuses (backreferences, lookaround, a repeat count over 1000, a program
 * larger than `maxStatsFilterProgramSize`).
 */
export function compileStatsFilter(pattern: string): { filter: StatsFilter } | { error: string } {
  let re: Re2;
  try {
    re = compileRe2(pattern, { maxProgramSize: Number.POSITIVE_INFINITY });
  } catch (e) {
    // The admin answer quotes the filter itself; RE2's reason is what is left.
    return { error: e instanceof Re2Error ? e.message.replace(`regex ${JSON.stringify(pattern)}: `, '') : String(e) };
  }
  const size = re.programSize;
  if (size > maxStatsFilterProgramSize) return { error: `RE2 program size ${size} exceeds the admin filter limit of ${maxStatsFilterProgramSize}` };
  return { filter: { test: (name) => re.partialMatch(name) } };
}

const codeClass = ['reset', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const downstreamClass: Record<string, string> = Object.fromEntries(codeClass.map((c) => [c, `http.downstream_rq_${c}`]));
const upstreamClass: Record<string, string> = Object.fromEntries(codeClass.map((c) => [c, `upstream_rq_${c}`]));
const upstreamCodes = new Map<number, string>();
function upstreamCode(code: number): string {
  let n = upstreamCodes.get(code);
  if (!n) {
    n = `upstream_rq_${code}`;
    upstreamCodes.set(code, n);
  }
  return n;
}

export class Stats {
  readonly #counters = new Map<string, number>();
  readonly #gauges = new Map<string, () => number>();
  readonly #sources: (() => Iterable<[string, number]>)[] = [];

  inc(name: string, by = 1): void {
    this.#counters.set(name, (this.#counters.get(name) ?? 0) + by);
  }

  /** A value read when the stats are shown (active connections, versions…). */
  gauge(name: string, read: () => number): void {
    this.#gauges.set(name, read);
  }

  /** Many values read when the stats are shown (a cluster manager's per-cluster counters). */
  source(read: () => Iterable<[string, number]>): void {
    this.#sources.push(read);
  }

  get(name: string): number {
    const v = this.#counters.get(name) ?? this.#gauges.get(name)?.();
    if (v !== undefined) return v;
    for (const read of this.#sources) for (const [n, x] of read()) if (n === name) return x;
    return 0;
  }

  readonly #names = new Map<string, Map<string, string>>();

  /** `<prefix>.<suffix>`, built once per pair: counting stays allocation-free on the request path. */
  #name(prefix: string, suffix: string | number): string {
    let m = this.#names.get(prefix);
    if (!m) {
      m = new Map();
      this.#names.set(prefix, m);
    }
    const key = String(suffix);
    let n = m.get(key);
    if (n === undefined) {
      n = `${prefix}.${key}`;
      m.set(key, n);
    }
    return n;
  }

  /** Counts one finished request or connection. */
  record(r: RequestRecord): void {
    const listener = this.#name('listener', r.listener);
    const cluster = r.upstreamCluster ? this.#name('cluster', r.upstreamCluster) : undefined;
    if (r.protocol === 'TCP') {
      this.inc(this.#name(listener, 'tcp.downstream_cx_total'));
      this.inc(this.#name(listener, 'tcp.downstream_cx_rx_bytes_total'), r.bytesReceived);
      this.inc(this.#name(listener, 'tcp.downstream_cx_tx_bytes_total'), r.bytesSent);
      if (cluster) {
        this.inc(this.#name(cluster, 'upstream_cx_total'));
        if (r.responseFlags.size > 0) this.inc(this.#name(cluster, 'upstream_cx_connect_fail'));
      }
    } else {
      const cls = codeClass[Math.floor(r.responseCode / 100)] ?? 'reset';
      this.inc(this.#name(listener, 'http.downstream_rq_total'));
      this.inc(this.#name(listener, downstreamClass[cls]!));
      if (cluster) {
        this.inc(this.#name(cluster, 'upstream_rq_total'));
        this.inc(this.#name(cluster, r.responseCode > 0 ? upstreamCode(r.responseCode) : 'upstream_rq_reset'));
        this.inc(this.#name(cluster, upstreamClass[cls]!));
        if (r.attempts > 1) this.inc(this.#name(cluster, 'upstream_rq_retry'), r.attempts - 1);
      }
    }
    for (const f of r.responseFlags) this.inc(this.#name(listener, `response_flag.${f}`));
  }

  /** `name: value` lines, sorted, as Envoy's /stats prints them. */
  text(entries: readonly [string, number][] = this.entries()): string {
    const lines: string[] = [];
    for (const [name, v] of entries) lines.push(`${name}: ${v}`);
    return lines.length > 0 ? `${lines.join('\n')}\n` : '';
  }

  /**
   * The entries whose name `filter` finds a match in (Envoy's `/stats?filter=`). The scan yields to
   * the event loop every `sliceMs` so that a costly filter shares the thread with requests rather
   * than holding them up.
   */
  async entriesMatching(filter: StatsFilter, sliceMs = 2): Promise<[string, number][]> {
    const all = this.entries();
    const out: [string, number][] = [];
    let sliceStart = performance.now();
    for (let i = 0; i < all.length; i++) {
      if ((i & 15) === 0 && performance.now() - sliceStart > sliceMs) {
        await new Promise((r) => setImmediate(r));
        sliceStart = performance.now();
      }
      const e = all[i]!;
      if (filter.test(e[0])) out.push(e);
    }
    return out;
  }

  entries(): [string, number][] {
    const all = new Map(this.#counters);
    for (const [name, read] of this.#gauges) all.set(name, read());
    for (const read of this.#sources) for (const [name, v] of read()) all.set(name, v);
    return [...all].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
