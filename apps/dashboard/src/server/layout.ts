// The graph's layout, computed here with ELK (elkjs, the same library the page used to run) and
// sent with /api/graph, so that the page only draws: ELK is 1.6 MB of GWT-compiled JavaScript whose
// download, parse and first (cold) run cost the page about a second; here it runs warm, once per
// graph shape (nodes, grouping, edges' ends), and the answer is cached.
// ELK's layered algorithm, left to right, lays the compound graph out as one
// (hierarchyHandling INCLUDE_CHILDREN): services are boxes holding their workloads, and no box
// overlaps another.
import elkjs, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { Graph } from './graph.ts';
import { type GraphElements, type GraphLayout, layoutKey, nodeSize, servicePadding, toElements } from '../ui/graph-model.ts';

export type { GraphLayout };

// elk.bundled.js is CommonJS: Node's default import is module.exports, which also has `default`.
const elk = new elkjs.default();

const rootOptions = {
  'elk.algorithm': 'layered',
  'elk.direction': 'RIGHT',
  'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
  'elk.layered.spacing.nodeNodeBetweenLayers': '110',
  'elk.spacing.nodeNode': '24',
  'elk.padding': '[top=12,left=12,bottom=12,right=12]',
};
const serviceOptions = { 'elk.padding': `[top=${servicePadding.top},left=${servicePadding.side},bottom=${servicePadding.side},right=${servicePadding.side}]` };

/** ELK's input for the elements the page draws (sorted: the same shape always gives the same layout). */
export function elkGraph(g: GraphElements): ElkNode {
  const byId = (a: { data: { id: string } }, b: { data: { id: string } }) => (a.data.id < b.data.id ? -1 : a.data.id > b.data.id ? 1 : 0);
  const parents = new Set(g.nodes.map((n) => n.data.parent).filter((p): p is string => !!p));
  const elkNodes = new Map<string, ElkNode>();
  for (const n of [...g.nodes].sort(byId)) {
    elkNodes.set(n.data.id, parents.has(n.data.id) ? { id: n.data.id, children: [], layoutOptions: serviceOptions } : { id: n.data.id, ...nodeSize(n.data.label) });
  }
  const root: ElkNode = { id: 'root', layoutOptions: rootOptions, children: [], edges: [] };
  for (const n of [...g.nodes].sort(byId)) {
    const parent = n.data.parent ? elkNodes.get(n.data.parent) : undefined;
    (parent?.children ?? root.children!).push(elkNodes.get(n.data.id)!);
  }
  // Edges at the root: with INCLUDE_CHILDREN, ELK routes edges between nested nodes from there.
  root.edges = [...g.edges].sort(byId).map((e): ElkExtendedEdge => ({ id: e.data.id, sources: [e.data.source], targets: [e.data.target] }));
  return root;
}

/** The centre of every leaf node (a workload, a gateway) in ELK's result, in root coordinates. */
function centres(node: ElkNode, dx: number, dy: number, out: Record<string, { x: number; y: number }>): void {
  for (const c of node.children ?? []) {
    const x = dx + (c.x ?? 0);
    const y = dy + (c.y ?? 0);
    if (c.children && c.children.length > 0) centres(c, x, y, out);
    else out[c.id] = { x: Math.round(x + (c.width ?? 0) / 2), y: Math.round(y + (c.height ?? 0) / 2) };
  }
}

const cache = new Map<string, Promise<GraphLayout>>();
const cacheSize = 16;

/** The layout of `graph`'s shape (cached: a change of rates only is a lookup). */
export function graphLayout(graph: Pick<Graph, 'nodes' | 'edges'>): Promise<GraphLayout> {
  const g = toElements(graph);
  const key = layoutKey(g);
  const hit = cache.get(key);
  if (hit) {
    // Most recently used last: the oldest shape goes first.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const laying = elk.layout(elkGraph(g)).then((laid) => {
    const positions: Record<string, { x: number; y: number }> = {};
    centres(laid, 0, 0, positions);
    return { key, positions };
  });
  laying.catch(() => cache.delete(key));
  cache.set(key, laying);
  while (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
  return laying;
}
