import { describe, expect, it } from 'vitest';
import type { GraphEdge } from './api.ts';
import { edgeLabel, edgeWidth, layoutKey, toElements } from './graph-model.ts';

const edge = (o: Partial<GraphEdge>): GraphEdge => ({ id: 'e', source: 'a', target: 'b', rps: 1, successRate: 1, p99Ms: 12, mtls: false, error: false, ...o });

describe('graph model', () => {
  it('labels edges with rate, success and p99 (no emoji: the canvas may have no font for it)', () => {
    expect(edgeLabel(edge({ rps: 2.345, successRate: 0.987, p99Ms: 12.34 }))).toBe('2.35 rps · 98.7% · p99 12.3 ms');
    expect(edgeLabel(edge({ mtls: true, p99Ms: null }))).toBe('1.00 rps · 100% · p99 –');
    expect(edgeLabel(edge({ rps: 0, successRate: Number.NaN }))).toBe('0 rps · – · p99 12.0 ms');
  });

  it('widens edges with traffic, bounded', () => {
    expect(edgeWidth(0)).toBe(1);
    expect(edgeWidth(1)).toBeLessThan(edgeWidth(10));
    expect(edgeWidth(1e9)).toBe(12);
  });

  it('classes mtls, error and idle edges; adds the nodes an answer only names', () => {
    const g = toElements({
      nodes: [{ id: 'default/reviews-v2', kind: 'workload', label: 'v2', namespace: 'default', parent: 'svc:reviews.default.svc.cluster.local' }],
      edges: [edge({ id: 'x', source: 'default/productpage-v1', target: 'default/reviews-v2', mtls: true, error: true, rps: 0 })],
    });
    expect(g.edges[0]!.classes).toEqual(['mtls', 'error', 'idle']);
    expect(g.nodes.map((n) => `${n.data.id}:${n.data.kind}`).sort()).toEqual(['default/productpage-v1:unknown', 'default/reviews-v2:workload', 'svc:reviews.default.svc.cluster.local:service']);
  });

  it('keys the layout on structure, not rates', () => {
    const a = toElements({ nodes: [], edges: [edge({ rps: 1 })] });
    const b = toElements({ nodes: [], edges: [edge({ rps: 50, successRate: 0.5 })] });
    const c = toElements({ nodes: [], edges: [edge({ target: 'c' })] });
    expect(layoutKey(a)).toBe(layoutKey(b));
    expect(layoutKey(a)).not.toBe(layoutKey(c));
  });
});
