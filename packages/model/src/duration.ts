const unitSeconds: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a duration as Istio accepts it in YAML: Go's `time.ParseDuration` syntax
 * (`10ms`, `1.5s`, `1h30m`), which includes protojson's `"3600s"` form.
 * Returns seconds, or undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  let s = text.trim();
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  part.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    part.lastIndex = pos;
    const m = part.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (unitSeconds[m[2] as string] ?? 0);
    pos = part.lastIndex;
  }
  return sign * total;
}

/** `1.5s` -> `1.5s`, 0.25 -> `250ms`: a compact human form for messages. */
export function formatDuration(seconds: number): string {
  if (seconds !== 0 && Math.abs(seconds) < 1) return `${+(seconds * 1000).toFixed(6)}ms`;
  return `${+seconds.toFixed(9)}s`;
}
