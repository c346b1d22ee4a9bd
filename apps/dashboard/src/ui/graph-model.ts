// From the API's graph to what Cytoscape draws: element data, labels, widths and classes. Pure
// (no DOM), so that the rules are tested in Node and the canvas only applies them.
import type { GraphAnswer, GraphEdge, GraphNode } from './api.ts';

export interface NodeData {
  id: string;
  label: string;
  kind: GraphNode['kind'];
  parent?: string;
}

export interface EdgeData {
  id: string;
  source: string;
  target: string;
  label: string;
  rps: number;
  successRate: number;
  p99Ms: number | null;
  mtls: boolean;
  error: boolean;
}

export interface NodeElement {
  data: NodeData;
  classes: string[];
}

export interface EdgeElement {
  data: EdgeData;
  classes: string[];
  /** Line width in pixels, animated towards by the canvas. */
  width: number;
}

export interface GraphElements {
  nodes: NodeElement[];
  edges: EdgeElement[];
}

/** The lock's text (hidden beside the SVG lock, for copy and paste); never drawn on the canvas, whose fonts may lack it. */
export const lock = '🔒';

/** A workload's (or gateway's) box: what the canvas draws and what the server's ELK lays out. */
export function nodeSize(label: string): { width: number; height: number } {
  return { width: Math.max(70, label.length * 7 + 16), height: 28 };
}

/** Room inside a service's box around its workloads; the top holds the service's name. */
export const servicePadding = { top: 34, side: 12 };

/** Where ELK placed each workload (box centres, canvas coordinates), for one graph shape (`key`). */
export interface GraphLayout {
  /** layoutKey() of the graph laid out. */
  key: string;
  positions: Record<string, { x: number; y: number }>;
}

export function formatRps(rps: number): string {
  if (!Number.isFinite(rps) || rps <= 0) return '0';
  if (rps >= 100) return rps.toFixed(0);
  if (rps >= 10) return rps.toFixed(1);
  return rps.toFixed(2);
}

export function formatPercent(rate: number): string {
  if (!Number.isFinite(rate)) return '–';
  const p = rate * 100;
  return `${p >= 99.95 || p === 0 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '–';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

/** "2.31 rps · 100% · p99 12.0 ms" (the lock of an mTLS edge is drawn over the canvas, as SVG). */
export function edgeLabel(e: GraphEdge): string {
  return `${formatRps(e.rps)} rps · ${formatPercent(e.successRate)} · p99 ${formatMs(e.p99Ms)}`;
}

/** Wider with more traffic, on a log scale so that one busy edge does not flatten the others. */
export function edgeWidth(rps: number): number {
  if (!Number.isFinite(rps) || rps <= 0) return 1;
  return Math.min(12, 1.5 + 2 * Math.log2(1 + rps));
}

export function edgeClasses(e: GraphEdge): string[] {
  const c: string[] = [];
  if (e.mtls) c.push('mtls');
  if (e.error) c.push('error');
  if (!(e.rps > 0)) c.push('idle');
  return c;
}

/**
 * The elements to draw. Tolerates an answer that names a node it does not list (an edge's end, a
 * workload's parent): Cytoscape refuses such elements, and a page that throws is worse than an
 * `unknown` node.
 */
export function toElements(answer: Pick<GraphAnswer, 'nodes' | 'edges'>): GraphElements {
  const nodes = new Map<string, NodeElement>();
  for (const n of answer.nodes) {
    nodes.set(n.id, { data: { id: n.id, label: n.label || n.id, kind: n.kind, ...(n.parent ? { parent: n.parent } : {}) }, classes: [n.kind] });
  }
  for (const n of [...nodes.values()]) {
    const parent = n.data.parent;
    if (parent && !nodes.has(parent)) nodes.set(parent, { data: { id: parent, label: parent.replace(/^svc:/, ''), kind: 'service' }, classes: ['service'] });
  }
  const edges: EdgeElement[] = [];
  const seen = new Set<string>();
  for (const e of answer.edges) {
    for (const end of [e.source, e.target]) {
      if (!nodes.has(end)) nodes.set(end, { data: { id: end, label: end, kind: 'unknown' }, classes: ['unknown'] });
    }
    const id = e.id || `${e.source}->${e.target}`;
    if (seen.has(id)) continue;
    seen.add(id);
    edges.push({
      data: { id, source: e.source, target: e.target, label: edgeLabel(e), rps: e.rps, successRate: e.successRate, p99Ms: e.p99Ms, mtls: e.mtls, error: e.error },
      classes: edgeClasses(e),
      width: edgeWidth(e.rps),
    });
  }
  return { nodes: [...nodes.values()], edges };
}

/** What the layout depends on: nodes, their grouping and the edges' ends (not rates or labels). */
export function layoutKey(g: GraphElements): string {
  const n = g.nodes.map((x) => `${x.data.id}<${x.data.parent ?? ''}`).sort();
  const e = g.edges.map((x) => `${x.data.source}>${x.data.target}`).sort();
  return `${n.join(',')}|${e.join(',')}`;
}
