// A trace as a waterfall: spans in tree order (each under its parent, siblings by start time),
// indented by depth, placed on the trace's time axis. Pure, for tests in Node.
import type { Span } from './api.ts';

export interface WaterfallRow {
  span: Span;
  depth: number;
  /** Start and width as percentages of the trace's duration. */
  offsetPct: number;
  widthPct: number;
  durationMs: number;
}

export interface Waterfall {
  rows: WaterfallRow[];
  startMs: number;
  durationMs: number;
}

export function waterfall(spans: readonly Span[]): Waterfall {
  if (spans.length === 0) return { rows: [], startMs: 0, durationMs: 0 };
  const startMs = Math.min(...spans.map((s) => s.startMs));
  const endMs = Math.max(...spans.map((s) => Math.max(s.endMs, s.startMs)));
  const durationMs = Math.max(endMs - startMs, 0.001);
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of spans) {
    // A parent not (yet) received: the span starts a subtree of its own rather than vanishing.
    if (s.parentSpanId && s.parentSpanId !== s.spanId && ids.has(s.parentSpanId)) {
      const list = children.get(s.parentSpanId) ?? [];
      list.push(s);
      children.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const byStart = (a: Span, b: Span) => a.startMs - b.startMs || a.name.localeCompare(b.name);
  const rows: WaterfallRow[] = [];
  const visited = new Set<string>();
  const walk = (s: Span, depth: number) => {
    if (visited.has(s.spanId)) return;
    visited.add(s.spanId);
    const d = Math.max(s.endMs - s.startMs, 0);
    rows.push({ span: s, depth, offsetPct: ((s.startMs - startMs) / durationMs) * 100, widthPct: Math.max((d / durationMs) * 100, 0.3), durationMs: d });
    for (const c of (children.get(s.spanId) ?? []).sort(byStart)) walk(c, depth + 1);
  };
  for (const r of roots.sort(byStart)) walk(r, 0);
  // A cycle of parents (a malformed trace) leaves spans unvisited: shown at the top level.
  for (const s of spans) if (!visited.has(s.spanId)) walk(s, 0);
  return { rows, startMs, durationMs };
}
