// Envoy-style counters for /stats, fed by every RequestRecord (telemetry proper, Istio's metrics,
// comes with issue 6 and reads the same records).
import type { RequestRecord } from '../core/types.ts';

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
  text(filter?: RegExp): string {
    const lines: string[] = [];
    for (const [name, v] of this.entries()) if (!filter || filter.test(name)) lines.push(`${name}: ${v}`);
    return lines.length > 0 ? `${lines.join('\n')}\n` : '';
  }

  entries(): [string, number][] {
    const all = new Map(this.#counters);
    for (const [name, read] of this.#gauges) all.set(name, read());
    for (const read of this.#sources) for (const [name, v] of read()) all.set(name, v);
    return [...all].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
