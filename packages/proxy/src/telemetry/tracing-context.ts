// Trace context on the wire, without OpenTelemetry loaded: what the tracing filter reads from a
// request and writes on the way upstream. W3C Trace Context (`traceparent`, `tracestate`) is what
// Envoy's OpenTelemetry tracer speaks; B3 (multi-header `x-b3-*` and single `b3`) is what Zipkin
// and Istio's BookInfo apps propagate, so both are read and both written.
import { randomFillSync } from 'node:crypto';
import type { FilterHeaders } from '../core/filters.ts';

/** A trace context taken from request headers. */
export interface IncomingTrace {
  /** 32 lower-case hex digits (a 64-bit B3 id is left-padded with zeros, as OpenTelemetry's B3 propagator does). */
  traceId: string | undefined;
  /** The caller's span: our span's parent. */
  parentSpanId: string | undefined;
  /** The caller's sampling decision, when it made one. */
  sampled: boolean | undefined;
  /** W3C `tracestate`, passed on unchanged. */
  traceState: string | undefined;
  /** Which format carried it: the same formats go upstream. */
  format: 'w3c' | 'b3' | 'b3-single' | undefined;
}

const hexRe = /^[0-9a-f]+$/;
const zeros32 = '00000000000000000000000000000000';

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function validId(id: string, length: number): boolean {
  return id.length === length && hexRe.test(id) && id !== zeros32.slice(0, length);
}

/** `00-<trace-id>-<parent-id>-<flags>`; undefined for anything malformed (then it is ignored, as the spec says). */
export function parseTraceparent(value: string): { traceId: string; spanId: string; sampled: boolean } | undefined {
  const v = value.trim().toLowerCase();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!hexRe.test(version) || version === 'ff') return undefined;
  // Version 00 is exactly 55 characters; later versions may append fields after a dash.
  if (version === '00' && v.length !== 55) return undefined;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-' || (v.length > 55 && v[55] !== '-')) return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!validId(traceId, 32) || !validId(spanId, 16) || !hexRe.test(flags)) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}

function b3TraceId(id: string): string | undefined {
  const v = id.toLowerCase();
  if (validId(v, 32)) return v;
  if (validId(v, 16)) return `${zeros32.slice(16)}${v}`;
  return undefined;
}

/** B3's sampling state: `1`/`true`/`d` (debug) sample, `0`/`false` do not; anything else defers. */
function b3Sampled(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (s === '1' || s === 'd' || s === 'true') return true;
  if (s === '0' || s === 'false') return false;
  return undefined;
}

/** `b3: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]` or a lone sampling state (`b3: 0`). */
function parseB3Single(value: string): IncomingTrace | undefined {
  const parts = value.trim().split('-');
  if (parts.length === 1) {
    const sampled = b3Sampled(parts[0]);
    return sampled === undefined ? undefined : { traceId: undefined, parentSpanId: undefined, sampled, traceState: undefined, format: 'b3-single' };
  }
  const traceId = b3TraceId(parts[0]!);
  const spanId = parts[1]!.toLowerCase();
  if (!traceId || !validId(spanId, 16)) return undefined;
  return { traceId, parentSpanId: spanId, sampled: b3Sampled(parts[2]), traceState: undefined, format: 'b3-single' };
}

/** Reads the request's trace context: `traceparent` first, then `b3`, then `x-b3-*`; undefined when none is there. */
export function extractTrace(h: FilterHeaders): IncomingTrace | undefined {
  const tp = first(h.traceparent);
  if (tp !== undefined) {
    const p = parseTraceparent(tp);
    if (p) {
      const ts = h.tracestate;
      const traceState = Array.isArray(ts) ? ts.join(',') : ts;
      return { traceId: p.traceId, parentSpanId: p.spanId, sampled: p.sampled, traceState: traceState || undefined, format: 'w3c' };
    }
  }
  const single = first(h.b3);
  if (single !== undefined) {
    const p = parseB3Single(single);
    if (p) return p;
  }
  const tid = first(h['x-b3-traceid']);
  const sid = first(h['x-b3-spanid']);
  // x-b3-flags: 1 is debug, which implies sampled.
  const sampled = first(h['x-b3-flags']) === '1' ? true : b3Sampled(first(h['x-b3-sampled']));
  if (tid !== undefined && sid !== undefined) {
    const traceId = b3TraceId(tid);
    const spanId = sid.toLowerCase();
    if (traceId && validId(spanId, 16)) return { traceId, parentSpanId: spanId, sampled, traceState: undefined, format: 'b3' };
  }
  if (sampled !== undefined) return { traceId: undefined, parentSpanId: undefined, sampled, traceState: undefined, format: 'b3' };
  return undefined;
}

/** The context written upstream: our span (the parent of the next hop's). */
export interface OutgoingTrace {
  traceId: string;
  spanId: string;
  /** Our span's parent, for `x-b3-parentspanid`. */
  parentSpanId: string | undefined;
  sampled: boolean;
  traceState: string | undefined;
  /** Also write the single `b3` header (the caller used it). */
  b3Single: boolean;
}

/** Writes `traceparent` (and `tracestate`), the `x-b3-*` headers and, when the caller used it, `b3`. */
export function injectTrace(h: FilterHeaders, t: OutgoingTrace): void {
  const flag = t.sampled ? '1' : '0';
  h.traceparent = `00-${t.traceId}-${t.spanId}-0${flag}`;
  if (t.traceState) h.tracestate = t.traceState;
  else delete h.tracestate;
  h['x-b3-traceid'] = t.traceId;
  h['x-b3-spanid'] = t.spanId;
  if (t.parentSpanId) h['x-b3-parentspanid'] = t.parentSpanId;
  else delete h['x-b3-parentspanid'];
  h['x-b3-sampled'] = flag;
  delete h['x-b3-flags'];
  if (t.b3Single) h.b3 = `${t.traceId}-${t.spanId}-${flag}${t.parentSpanId ? `-${t.parentSpanId}` : ''}`;
}

// Random ids from a pooled buffer: one randomFillSync per 512 span ids, not one per id.
const pool = Buffer.allocUnsafe(4096);
let poolOffset = pool.length;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const s = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return s;
}

/** A new 16-hex-digit span id (never all zeros). */
export function newSpanId(): string {
  const id = randomHex(8);
  return id === '0000000000000000' ? newSpanId() : id;
}

/** A new 32-hex-digit trace id (never all zeros). */
export function newTraceId(): string {
  const id = randomHex(16);
  return id === zeros32 ? newTraceId() : id;
}

/** An Envoy `Percent` (0–100) as a fraction of 10,000, the granularity Envoy samples at. */
export function percentToBasisPoints(value: number | undefined, fallback = 100): number {
  const v = value === undefined || Number.isNaN(value) ? fallback : value;
  return Math.round(Math.min(100, Math.max(0, v)) * 100);
}

/** The connection manager's sampling settings (basis points: 10,000 is 100%). */
export interface SamplingSettings {
  client: number;
  random: number;
  overall: number;
}

/**
 * The connection manager's tracing decision for a request without a caller's decision, as Envoy's
 * mutateTracingRequestHeader makes it: `x-client-trace-id` is traced at the client-sampling rate;
 * `x-envoy-force-trace` always (the router drops it from external requests at the edge); else the
 * random-sampling rate, drawn from the x-request-id's leading 32 bits as Envoy's UUID extension
 * does (so every hop of one request draws alike), or at random without a usable id. The overall
 * rate caps every reason.
 */
export function samplingDecision(h: FilterHeaders, s: SamplingSettings, random: () => number = Math.random): boolean {
  const rid = first(h['x-request-id']);
  const ridValue = rid !== undefined && rid.length >= 8 ? Number.parseInt(rid.slice(0, 8), 16) : Number.NaN;
  const draw = Number.isNaN(ridValue) ? Math.floor(random() * 10000) : ridValue % 10000;
  let traced: boolean;
  if (h['x-client-trace-id'] !== undefined && Math.floor(random() * 10000) < s.client) traced = true;
  else if (h['x-envoy-force-trace'] !== undefined) traced = true;
  else traced = draw < s.random;
  if (traced && !(draw < s.overall)) traced = false;
  return traced;
}
