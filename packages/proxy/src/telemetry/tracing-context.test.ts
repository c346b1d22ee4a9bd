import { describe, expect, it } from 'vitest';
import type { FilterHeaders } from '../core/filters.ts';
import { extractTrace, injectTrace, newSpanId, newTraceId, parseTraceparent, percentToBasisPoints, samplingDecision } from './tracing-context.ts';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';

describe('W3C trace context', () => {
  it('reads traceparent and tracestate', () => {
    const t = extractTrace({ traceparent: `00-${traceId}-${spanId}-01`, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    expect(t).toEqual({ traceId, parentSpanId: spanId, sampled: true, traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', format: 'w3c' });
  });

  it('reads the sampled flag from the last bit only', () => {
    expect(parseTraceparent(`00-${traceId}-${spanId}-00`)?.sampled).toBe(false);
    expect(parseTraceparent(`00-${traceId}-${spanId}-03`)?.sampled).toBe(true);
    expect(parseTraceparent(`00-${traceId}-${spanId}-02`)?.sampled).toBe(false);
  });

  it('ignores malformed traceparents: all-zero ids, version ff, wrong lengths, non-hex', () => {
    for (const bad of [
      `00-${'0'.repeat(32)}-${spanId}-01`,
      `00-${traceId}-${'0'.repeat(16)}-01`,
      `ff-${traceId}-${spanId}-01`,
      `00-${traceId.slice(1)}-${spanId}-01`,
      `00-${traceId}-${spanId}-01-extra`,
      `00-${traceId.replace('4', 'g')}-${spanId}-01`,
      'garbage',
    ]) {
      expect(parseTraceparent(bad), bad).toBeUndefined();
    }
    // A later version may append fields.
    expect(parseTraceparent(`01-${traceId}-${spanId}-01-future`)?.traceId).toBe(traceId);
  });

  it('a malformed traceparent falls back to B3', () => {
    const t = extractTrace({ traceparent: 'nonsense', 'x-b3-traceid': traceId, 'x-b3-spanid': spanId, 'x-b3-sampled': '1' });
    expect(t).toMatchObject({ traceId, parentSpanId: spanId, sampled: true, format: 'b3' });
  });

  it('prefers traceparent over B3 when both are present', () => {
    const other = 'a'.repeat(32);
    const t = extractTrace({ traceparent: `00-${traceId}-${spanId}-00`, 'x-b3-traceid': other, 'x-b3-spanid': spanId, 'x-b3-sampled': '1' });
    expect(t).toMatchObject({ traceId, sampled: false, format: 'w3c' });
  });
});

describe('B3', () => {
  it('reads multi-header B3 and pads a 64-bit trace id to 128 bits', () => {
    expect(extractTrace({ 'x-b3-traceid': 'A3CE929D0E0E4736', 'x-b3-spanid': spanId, 'x-b3-parentspanid': 'ffffffffffffffff', 'x-b3-sampled': '0' })).toEqual({
      traceId: `0000000000000000a3ce929d0e0e4736`,
      parentSpanId: spanId,
      sampled: false,
      traceState: undefined,
      format: 'b3',
    });
  });

  it('x-b3-flags: 1 (debug) means sampled; an absent x-b3-sampled defers the decision', () => {
    expect(extractTrace({ 'x-b3-traceid': traceId, 'x-b3-spanid': spanId, 'x-b3-flags': '1' })?.sampled).toBe(true);
    expect(extractTrace({ 'x-b3-traceid': traceId, 'x-b3-spanid': spanId })?.sampled).toBeUndefined();
  });

  it('a lone sampling header is a decision without a context', () => {
    expect(extractTrace({ 'x-b3-sampled': '0' })).toMatchObject({ traceId: undefined, parentSpanId: undefined, sampled: false });
    expect(extractTrace({ b3: '1' })).toMatchObject({ traceId: undefined, sampled: true, format: 'b3-single' });
    expect(extractTrace({ b3: 'd' })?.sampled).toBe(true);
  });

  it('reads single-header b3: trace-span, trace-span-sampled, trace-span-sampled-parent', () => {
    expect(extractTrace({ b3: `${traceId}-${spanId}` })).toMatchObject({ traceId, parentSpanId: spanId, sampled: undefined, format: 'b3-single' });
    expect(extractTrace({ b3: `${traceId}-${spanId}-1` })).toMatchObject({ sampled: true });
    expect(extractTrace({ b3: `${traceId}-${spanId}-0-ffffffffffffffff` })).toMatchObject({ traceId, parentSpanId: spanId, sampled: false });
  });

  it('ignores malformed B3 ids', () => {
    expect(extractTrace({ 'x-b3-traceid': 'xyz', 'x-b3-spanid': spanId })).toBeUndefined();
    expect(extractTrace({ b3: `${traceId}-123` })).toBeUndefined();
  });

  it('no trace headers: no context (the proxy starts a new root)', () => {
    expect(extractTrace({ 'x-request-id': 'abc', 'user-agent': 'curl' })).toBeUndefined();
  });
});

describe('injection', () => {
  it('writes traceparent, tracestate and the x-b3 headers with our span as the parent of the next hop', () => {
    const h: FilterHeaders = { 'x-b3-flags': '1', b3: 'stale' };
    const child = newSpanId();
    injectTrace(h, { traceId, spanId: child, parentSpanId: spanId, sampled: true, traceState: 'k=v', b3Single: false });
    expect(h).toEqual({
      traceparent: `00-${traceId}-${child}-01`,
      tracestate: 'k=v',
      'x-b3-traceid': traceId,
      'x-b3-spanid': child,
      'x-b3-parentspanid': spanId,
      'x-b3-sampled': '1',
      b3: 'stale',
    });
  });

  it('an unsampled trace goes on with flags 00 and x-b3-sampled 0; a root has no parent id', () => {
    const h: FilterHeaders = { 'x-b3-parentspanid': 'old', tracestate: 'old' };
    injectTrace(h, { traceId, spanId, parentSpanId: undefined, sampled: false, traceState: undefined, b3Single: false });
    expect(h.traceparent).toBe(`00-${traceId}-${spanId}-00`);
    expect(h['x-b3-sampled']).toBe('0');
    expect(h['x-b3-parentspanid']).toBeUndefined();
    expect(h.tracestate).toBeUndefined();
  });

  it('writes single b3 when the caller used it, and what it writes reads back', () => {
    const h: FilterHeaders = {};
    injectTrace(h, { traceId, spanId, parentSpanId: 'ffffffffffffffff', sampled: true, traceState: undefined, b3Single: true });
    expect(h.b3).toBe(`${traceId}-${spanId}-1-ffffffffffffffff`);
    expect(extractTrace({ b3: h.b3 as string })).toMatchObject({ traceId, parentSpanId: spanId, sampled: true });
    expect(extractTrace({ traceparent: h.traceparent as string })).toMatchObject({ traceId, parentSpanId: spanId, sampled: true });
  });

  it('new ids are hex of the right length and differ', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newSpanId()));
    expect(ids.size).toBe(2000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(newTraceId()).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('sampling', () => {
  const all = { client: 10000, random: 10000, overall: 10000 };
  const none = { client: 10000, random: 0, overall: 10000 };

  it('percentages become basis points, clamped', () => {
    expect(percentToBasisPoints(1)).toBe(100);
    expect(percentToBasisPoints(0.01)).toBe(1);
    expect(percentToBasisPoints(150)).toBe(10000);
    expect(percentToBasisPoints(undefined)).toBe(10000);
  });

  it('random sampling draws from the x-request-id so every hop decides alike', () => {
    // 0x00000fa0 = 4000: sampled at 50% (5000 basis points), not at 30%.
    const h = { 'x-request-id': '00000fa0-1111-4222-8333-444444444444' };
    const s50 = { client: 10000, random: 5000, overall: 10000 };
    const s30 = { client: 10000, random: 3000, overall: 10000 };
    expect(samplingDecision(h, s50, () => 0.99)).toBe(true);
    expect(samplingDecision(h, s30, () => 0)).toBe(false);
  });

  it('samples about the configured share of requests', () => {
    const s = { client: 10000, random: 2500, overall: 10000 };
    let n = 0;
    for (let i = 0; i < 20000; i++) if (samplingDecision({ 'x-request-id': crypto.randomUUID() }, s)) n++;
    expect(n / 20000).toBeGreaterThan(0.22);
    expect(n / 20000).toBeLessThan(0.28);
  });

  it('100% samples everything, 0% nothing', () => {
    expect(samplingDecision({ 'x-request-id': 'ffffffff-0000-4000-8000-000000000000' }, all)).toBe(true);
    expect(samplingDecision({ 'x-request-id': '00000000-0000-4000-8000-000000000000' }, none)).toBe(false);
  });

  it('x-envoy-force-trace and x-client-trace-id trace at 0% random sampling; overall sampling caps them', () => {
    const rid = { 'x-request-id': '00000001-0000-4000-8000-000000000000' };
    expect(samplingDecision({ ...rid, 'x-envoy-force-trace': 'true' }, none)).toBe(true);
    expect(samplingDecision({ ...rid, 'x-client-trace-id': 'abc' }, none, () => 0)).toBe(true);
    expect(samplingDecision({ ...rid, 'x-client-trace-id': 'abc' }, { ...none, client: 0 }, () => 0)).toBe(false);
    expect(samplingDecision({ ...rid, 'x-envoy-force-trace': 'true' }, { ...none, overall: 0 })).toBe(false);
  });
});
