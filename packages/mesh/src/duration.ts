// Durations as Istio's YAML writes them and as xDS carries them. Istio's API types are
// google.protobuf.Duration; Weft reads their text with Go's time.ParseDuration syntax (`10ms`,
// `1.5s`, `1h30m`), which includes protojson's `"3600s"` form. Parsed to exact nanoseconds so that
// validation can tell `1.0005s` from `1.001s`.

/** google.protobuf.Duration as the xDS types carry it. */
export interface ProtoDuration {
  seconds: string;
  nanos: number;
}

const unitNanos: Record<string, bigint> = { ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };
const part = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/y;

/** A duration in Go's time.ParseDuration syntax, in exact nanoseconds; undefined when the text is not one. */
export function parseDurationNanos(text: string): bigint | undefined {
  let s = text.trim();
  let sign = 1n;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1n;
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') return undefined;
  let total = 0n;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) return undefined;
    const whole = m[1] ?? '';
    const frac = m[2] ?? '';
    if (whole === '' && frac === '') return undefined;
    const unit = unitNanos[m[3]!]!;
    total += BigInt(whole === '' ? '0' : whole) * unit;
    if (frac !== '') total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    pos = part.lastIndex;
  }
  return sign * total;
}

/** A duration in Go's syntax, in seconds; undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const ns = parseDurationNanos(text);
  return ns === undefined ? undefined : Number(ns) / 1e9;
}

/** Nanoseconds as a google.protobuf.Duration (seconds and nanos carry the same sign, as protobuf requires). */
export function protoDurationFromNanos(ns: bigint): ProtoDuration {
  return { seconds: String(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) };
}

/** Seconds (fractions become nanos) as a google.protobuf.Duration. */
export function protoDuration(seconds: number): ProtoDuration {
  return protoDurationFromNanos(BigInt(Math.round(seconds * 1e9)));
}

/** Istio's duration text (`7s`, `1.5s`, `100ms`) as a google.protobuf.Duration; undefined when absent or not a duration. */
export function protoDurationOf(text: string | undefined): ProtoDuration | undefined {
  if (text === undefined) return undefined;
  const ns = parseDurationNanos(text);
  return ns === undefined ? undefined : protoDurationFromNanos(ns);
}

/**
 * A google.protobuf.Duration in whole milliseconds, truncated as Envoy's
 * DurationUtil::durationToMilliseconds; undefined when absent.
 */
export function protoDurationMs(d: { seconds?: string | number | null; nanos?: number | null } | null | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Math.trunc((d.nanos ?? 0) / 1e6);
}
