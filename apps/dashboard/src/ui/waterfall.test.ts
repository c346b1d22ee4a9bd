import { describe, expect, it } from 'vitest';
import type { Span } from './api.ts';
import { waterfall } from './waterfall.ts';

const span = (spanId: string, parentSpanId: string | undefined, startMs: number, endMs: number, name = spanId): Span => ({ spanId, name, service: 'svc', startMs, endMs, ...(parentSpanId ? { parentSpanId } : {}) });

describe('waterfall', () => {
  it('orders spans under their parents, siblings by start, indented by depth', () => {
    const w = waterfall([span('ratings', 'reviews', 40, 50), span('details', 'pp', 10, 20), span('gw', undefined, 0, 100), span('reviews', 'pp', 30, 60), span('pp', 'gw', 5, 95)]);
    expect(w.rows.map((r) => `${r.depth}:${r.span.spanId}`)).toEqual(['0:gw', '1:pp', '2:details', '2:reviews', '3:ratings']);
    expect(w.durationMs).toBe(100);
    const ratings = w.rows.find((r) => r.span.spanId === 'ratings')!;
    expect(ratings.offsetPct).toBe(40);
    expect(ratings.widthPct).toBe(10);
  });

  it('keeps spans whose parent is missing or that form a cycle', () => {
    const w = waterfall([span('a', 'gone', 0, 10), span('b', 'c', 1, 2), span('c', 'b', 2, 3)]);
    expect(w.rows.map((r) => r.span.spanId).sort()).toEqual(['a', 'b', 'c']);
    expect(waterfall([]).rows).toEqual([]);
  });
});
