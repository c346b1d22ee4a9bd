// The request headers the services pass on to the services they call, so that a mesh can join
// the calls of one page view into one trace and route on `end-user`.

/** Copied by productpage (to details, reviews and ratings) when present. */
export const productpageForwardedHeaders = [
  'x-request-id',
  'x-ot-span-context',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'traceparent',
  'tracestate',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'sw8',
  'user-agent',
  'cookie',
  'authorization',
  'jwt',
] as const;

/** Copied by reviews (to ratings) and by details v2 (to the external book service) when present. */
export const reviewsForwardedHeaders = [
  'x-request-id',
  'x-ot-span-context',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'traceparent',
  'tracestate',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'sw8',
  'end-user',
  'user-agent',
  'cookie',
  'authorization',
  'jwt',
] as const;

const hex = (s: string, lengths: readonly number[]) => lengths.includes(s.length) && /^[0-9a-f]+$/i.test(s) && !/^0+$/.test(s);

function one(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * B3 (multi-header) context, passed on as the OpenTelemetry B3 propagator of the original
 * productpage (Python) does: extracted from `x-b3-traceid` and `x-b3-spanid` and injected again
 * with the same ids (a 64-bit trace id comes out as 128 bits, padded with zeros at the front), with
 * `x-b3-sampled: 1` when the incoming `x-b3-sampled` said so (`1`, `true`, `True`, `d`) or
 * `x-b3-flags` was `1`, else `0`. `x-b3-parentspanid` and `x-b3-flags` are not passed on. Nothing
 * is passed on unless both ids are valid.
 */
export function b3Headers(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const traceId = one(h, 'x-b3-traceid')?.trim();
  const spanId = one(h, 'x-b3-spanid')?.trim();
  if (!traceId || !spanId || !hex(traceId, [16, 32]) || !hex(spanId, [16])) return {};
  const sampled = ['1', 'true', 'True', 'd'].includes(one(h, 'x-b3-sampled')?.trim() ?? '') || one(h, 'x-b3-flags')?.trim() === '1';
  return { 'x-b3-traceid': traceId.toLowerCase().padStart(32, '0'), 'x-b3-spanid': spanId.toLowerCase(), 'x-b3-sampled': sampled ? '1' : '0' };
}
