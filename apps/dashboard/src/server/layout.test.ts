import { describe, expect, it } from 'vitest';
import { type GraphLayout, nodeSize, servicePadding, toElements } from '../ui/graph-model.ts';
import type { Graph, GraphEdge, GraphNode } from './graph.ts';
import { graphLayout } from './layout.ts';

const ns = 'default';
const svc = (name: string) => `svc:${name}.${ns}.svc.cluster.local`;
const workload = (service: string, version: string): GraphNode => ({ id: `${ns}/${service}-${version}`, kind: 'workload', label: `${service}-${version}`, namespace: ns, service, version, parent: svc(service) });
const edge = (from: string, to: string): GraphEdge => ({ id: `${ns}/${from}->${ns}/${to}`, source: `${ns}/${from}`, target: `${ns}/${to}`, rps: 1, successRate: 1, p99Ms: 10, mtls: true, error: false });

const bookinfo: Graph = {
  nodes: [
    { id: `${ns}/istio-ingressgateway`, kind: 'gateway', label: 'istio-ingressgateway', namespace: ns },
    ...['productpage', 'details', 'reviews', 'ratings'].map((s): GraphNode => ({ id: svc(s), kind: 'service', label: s, namespace: ns })),
    workload('productpage', 'v1'),
    workload('details', 'v1'),
    workload('reviews', 'v1'),
    workload('reviews', 'v2'),
    workload('reviews', 'v3'),
    workload('ratings', 'v1'),
  ],
  edges: [
    edge('istio-ingressgateway', 'productpage-v1'),
    edge('productpage-v1', 'details-v1'),
    edge('productpage-v1', 'reviews-v1'),
    edge('productpage-v1', 'reviews-v2'),
    edge('productpage-v1', 'reviews-v3'),
    edge('reviews-v2', 'ratings-v1'),
    edge('reviews-v3', 'ratings-v1'),
  ],
};

interface Box {
  id: string;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** Every node's box as the page draws it: workloads at ELK's centres, a service around its workloads with its name on top. */
function boxes(graph: Graph, layout: GraphLayout): { boxes: Map<string, Box>; parent: Map<string, string> } {
  const g = toElements(graph);
  const out = new Map<string, Box>();
  const parent = new Map<string, string>();
  const children = new Map<string, string[]>();
  for (const n of g.nodes) {
    if (n.data.parent) {
      parent.set(n.data.id, n.data.parent);
      children.set(n.data.parent, [...(children.get(n.data.parent) ?? []), n.data.id]);
    }
  }
  for (const n of g.nodes) {
    if (children.has(n.data.id)) continue;
    const at = layout.positions[n.data.id];
    expect(at, `a position for ${n.data.id}`).toBeDefined();
    const { width, height } = nodeSize(n.data.label);
    out.set(n.data.id, { id: n.data.id, x1: at!.x - width / 2, y1: at!.y - height / 2, x2: at!.x + width / 2, y2: at!.y + height / 2 });
  }
  for (const [id, kids] of children) {
    const b = kids.map((k) => out.get(k)!);
    const side = servicePadding.side;
    out.set(id, { id, x1: Math.min(...b.map((x) => x.x1)) - side, y1: Math.min(...b.map((x) => x.y1)) - servicePadding.top, x2: Math.max(...b.map((x) => x.x2)) + side, y2: Math.max(...b.map((x) => x.y2)) + side });
  }
  return { boxes: out, parent };
}

/** Pairs of boxes that overlap, except a workload inside its own service's box. */
function overlaps(graph: Graph, layout: GraphLayout): string[] {
  const { boxes: all, parent } = boxes(graph, layout);
  const list = [...all.values()];
  const found: string[] = [];
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i]!;
      const b = list[j]!;
      if (parent.get(a.id) === b.id || parent.get(b.id) === a.id) continue;
      if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) found.push(`${a.id} overlaps ${b.id}`);
    }
  }
  return found;
}

describe('the graph layout (ELK on the server)', () => {
  it('lays out BookInfo left to right with no two boxes overlapping (workloads inside their own service)', async () => {
    const layout = await graphLayout(bookinfo);
    expect(overlaps(bookinfo, layout)).toEqual([]);
    const x = (id: string) => layout.positions[`${ns}/${id}`]!.x;
    expect(x('istio-ingressgateway')).toBeLessThan(x('productpage-v1'));
    expect(x('productpage-v1')).toBeLessThan(x('reviews-v2'));
    expect(x('reviews-v2')).toBeLessThan(x('ratings-v1'));
  });

  it('keeps boxes apart at every step of a graph growing edge by edge (as traffic shows up)', async () => {
    for (let n = 1; n <= bookinfo.edges.length; n++) {
      const edges = bookinfo.edges.slice(0, n);
      const ends = new Set(edges.flatMap((e) => [e.source, e.target]));
      const nodes = bookinfo.nodes.filter((x) => ends.has(x.id) || bookinfo.nodes.some((w) => w.parent === x.id && ends.has(w.id)));
      const step = { nodes, edges };
      expect(overlaps(step, await graphLayout(step)), `with ${n} edges`).toEqual([]);
    }
  });

  it('keeps boxes apart in a larger mesh: 12 services with three versions each, in a chain and a fan', async () => {
    const services = Array.from({ length: 12 }, (_, i) => `svc${i}`);
    const nodes: GraphNode[] = services.flatMap((s) => [{ id: svc(s), kind: 'service' as const, label: s, namespace: ns }, ...['v1', 'v2', 'v3'].map((v) => workload(s, v))]);
    const edges = services.slice(1).flatMap((s, i) => ['v1', 'v2', 'v3'].map((v) => edge(`${services[i % 4]}-v1`, `${s}-${v}`)));
    const graph = { nodes, edges };
    expect(overlaps(graph, await graphLayout(graph))).toEqual([]);
  });

  it('gives the same positions for the same shape, whatever the order or the rates, from its cache', async () => {
    const a = await graphLayout(bookinfo);
    const shuffled = { nodes: [...bookinfo.nodes].reverse(), edges: [...bookinfo.edges].reverse().map((e) => ({ ...e, rps: e.rps * 7 })) };
    const t = performance.now();
    const b = await graphLayout(shuffled);
    expect(performance.now() - t).toBeLessThan(20);
    expect(b).toEqual(a);
    const fewer = await graphLayout({ nodes: bookinfo.nodes, edges: bookinfo.edges.slice(1) });
    expect(fewer.key).not.toBe(a.key);
  });
});
