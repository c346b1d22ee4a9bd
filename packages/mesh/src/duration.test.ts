import { describe, expect, it } from 'vitest';
import { parseDuration, parseDurationNanos, protoDuration, protoDurationMs, protoDurationOf } from './duration.ts';

describe('durations', () => {
  it('reads Go’s syntax, protojson’s included', () => {
    expect(parseDuration('10ms')).toBeCloseTo(0.01);
    expect(parseDuration('1.5s')).toBe(1.5);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('3600s')).toBe(3600);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('-2s')).toBe(-2);
    expect(parseDuration('.5s')).toBe(0.5);
    expect(parseDurationNanos('1µs')).toBe(1000n);
    for (const bad of ['', '10', 's', '1x', '1 s', 'abc', '1.2.3s', '.s']) expect(parseDuration(bad), bad).toBeUndefined();
  });

  // model's parser went through floating-point seconds; validation needs the exact value.
  it('keeps exact nanoseconds', () => {
    expect(parseDurationNanos('1.0005s')).toBe(1_000_500_000n);
    expect(parseDurationNanos('0.1s')).toBe(100_000_000n);
    expect(protoDurationOf('1.000000001s')).toEqual({ seconds: '1', nanos: 1 });
    expect(protoDurationOf('-1.5s')).toEqual({ seconds: '-1', nanos: -500_000_000 });
    expect(protoDurationOf(undefined)).toBeUndefined();
    expect(protoDurationOf('soon')).toBeUndefined();
    expect(protoDuration(1.1)).toEqual({ seconds: '1', nanos: 100_000_000 });
    expect(protoDuration(10)).toEqual({ seconds: '10', nanos: 0 });
  });

  // The proxy had four copies: one floored, two rounded, one kept fractions. Envoy truncates.
  it('turns a protobuf Duration into whole milliseconds as Envoy does', () => {
    expect(protoDurationMs({ seconds: '1', nanos: 999_999 })).toBe(1000);
    expect(protoDurationMs({ seconds: 2, nanos: 1_600_000 })).toBe(2001);
    expect(protoDurationMs({ nanos: 500_000 })).toBe(0);
    expect(protoDurationMs(null)).toBeUndefined();
  });
});
