// Recent traces in memory, bounded: at most `maxTraces` traces and `maxSpans` spans in all (and
// `maxSpansPerTrace` per trace); when a bound is passed the traces seen first go first. A trace is
// the spans of one trace id, arriving in any order and over several export requests (each proxy
// exports its own spans in batches).
import type { OtlpSpan } from '@weft/xds';

export interface TraceSummary {
  traceId: string;
  /** The root span's name (the earliest span without a parent among those received). */
  root: string;
  service: string;
  startMs: number;
  durationMs: number;
  spans: number;
  error: boolean;
}

export interface TraceSpan {
  spanId: string;
  parentSpanId: string;
  name: string;
  service: string;
  startMs: number;
  endMs: number;
  kind: string;
  status: string;
  attributes: Record<string, string | number | boolean>;
}

export interface TraceStoreLimits {
  maxTraces?: number;
  maxSpans?: number;
  maxSpansPerTrace?: number;
}

interface Entry {
  spans: TraceSpan[];
  ids: Set<string>;
}

const serviceOf = (s: OtlpSpan) => String(s.resource['service.name'] ?? s.attributes['istio.canonical_service'] ?? 'unknown');

function failed(s: TraceSpan): boolean {
  if (s.status === 'ERROR') return true;
  const code = Number(s.attributes['http.status_code'] ?? s.attributes['http.response.status_code']);
  return code >= 500;
}

export class TraceStore {
  readonly maxTraces: number;
  readonly maxSpans: number;
  readonly maxSpansPerTrace: number;
  readonly #traces = new Map<string, Entry>();
  #spans = 0;
  /** Spans not kept: over the per-trace bound, or repeated. */
  dropped = 0;

  constructor(o: TraceStoreLimits = {}) {
    this.maxTraces = o.maxTraces ?? 500;
    this.maxSpans = o.maxSpans ?? 20_000;
    this.maxSpansPerTrace = Math.min(o.maxSpansPerTrace ?? 1000, this.maxSpans);
  }

  get traceCount(): number {
    return this.#traces.size;
  }

  get spanCount(): number {
    return this.#spans;
  }

  add(spans: readonly OtlpSpan[]): void {
    for (const s of spans) {
      let e = this.#traces.get(s.traceId);
      if (!e) {
        e = { spans: [], ids: new Set() };
        this.#traces.set(s.traceId, e);
      }
      if (e.ids.has(s.spanId) || e.spans.length >= this.maxSpansPerTrace) {
        this.dropped++;
        continue;
      }
      e.ids.add(s.spanId);
      e.spans.push({
        spanId: s.spanId,
        parentSpanId: s.parentSpanId,
        name: s.name,
        service: serviceOf(s),
        startMs: s.startMs,
        endMs: s.endMs,
        kind: s.kind,
        status: s.status,
        attributes: s.attributes,
      });
      this.#spans++;
    }
    // The oldest traces go first (Map keeps insertion order).
    for (const [id, e] of this.#traces) {
      if (this.#traces.size <= this.maxTraces && this.#spans <= this.maxSpans) break;
      this.#traces.delete(id);
      this.#spans -= e.spans.length;
    }
  }

  /** Newest first (by start time). */
  list(limit = this.maxTraces): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [traceId, e] of this.#traces) {
      if (e.spans.length === 0) continue;
      let start = Number.POSITIVE_INFINITY;
      let end = Number.NEGATIVE_INFINITY;
      for (const s of e.spans) {
        start = Math.min(start, s.startMs);
        end = Math.max(end, s.endMs);
      }
      const root = rootOf(e);
      out.push({ traceId, root: root.name, service: root.service, startMs: start, durationMs: Math.round((end - start) * 1000) / 1000, spans: e.spans.length, error: e.spans.some(failed) });
    }
    return out.sort((a, b) => b.startMs - a.startMs).slice(0, limit);
  }

  get(traceId: string): TraceSpan[] | undefined {
    const e = this.#traces.get(traceId.toLowerCase());
    return e ? [...e.spans].sort((a, b) => a.startMs - b.startMs) : undefined;
  }
}

function rootOf(e: Entry): TraceSpan {
  let best: TraceSpan | undefined;
  for (const s of e.spans) {
    const orphan = !s.parentSpanId || !e.ids.has(s.parentSpanId);
    if (!orphan) continue;
    // A real root (no parent) beats a span whose parent has not arrived; then the earliest.
    if (!best || (!s.parentSpanId && best.parentSpanId) || ((!s.parentSpanId) === (!best.parentSpanId) && s.startMs < best.startMs)) best = s;
  }
  return best ?? e.spans[0]!;
}
