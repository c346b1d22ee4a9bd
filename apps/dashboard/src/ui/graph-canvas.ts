// The service graph on a canvas: Cytoscape.js draws, ELK's layered algorithm (left to right, with
// services as compound nodes holding their workloads) places. Refreshes change elements in place:
// data and classes are updated, widths animate, and the layout runs again only when nodes or the
// edges' ends change, animated from where the nodes were, so a rate changing never moves anything.
import cytoscape, { type BaseLayoutOptions, type Core, type StylesheetJson } from 'cytoscape';
import elk from 'cytoscape-elk';
import { type GraphElements, layoutKey } from './graph-model.ts';

let registered = false;

const colors = { edge: '#64748b', mtls: '#15803d', error: '#dc2626', idle: '#cbd5e1', workload: '#2563eb', gateway: '#7c3aed', unknown: '#6b7280' };

const stylesheet: StylesheetJson = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': 11,
      'font-family': 'system-ui, sans-serif',
      'text-valign': 'center',
      'text-halign': 'center',
      color: '#fff',
      'background-color': colors.workload,
      shape: 'round-rectangle',
      width: (n: cytoscape.NodeSingular) => Math.max(70, String(n.data('label')).length * 7 + 16),
      height: 28,
    },
  },
  { selector: 'node.gateway', style: { 'background-color': colors.gateway } },
  { selector: 'node.unknown', style: { 'background-color': colors.unknown } },
  {
    selector: 'node:parent',
    style: {
      'background-color': '#eff6ff',
      'background-opacity': 1,
      'border-color': '#93c5fd',
      'border-width': 1,
      color: '#1e3a8a',
      'font-weight': 'bold',
      'text-valign': 'top',
      'text-halign': 'center',
      'text-margin-y': -4,
      padding: '12px',
    },
  },
  {
    selector: 'edge',
    style: {
      'curve-style': 'bezier',
      'target-arrow-shape': 'triangle',
      'line-color': colors.edge,
      'target-arrow-color': colors.edge,
      width: 1,
      label: 'data(label)',
      'font-size': 9,
      'font-family': 'system-ui, sans-serif',
      color: '#0f172a',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.9,
      'text-background-padding': '2px',
      'text-rotation': 'autorotate',
    },
  },
  { selector: 'edge.mtls', style: { 'line-color': colors.mtls, 'target-arrow-color': colors.mtls } },
  { selector: 'edge.idle', style: { 'line-style': 'dashed', 'line-color': colors.idle, 'target-arrow-color': colors.idle, color: '#94a3b8' } },
  { selector: 'edge.error', style: { 'line-color': colors.error, 'target-arrow-color': colors.error, color: colors.error } },
];

/** What the canvas holds, for tests (window.__weftGraph.rendered). */
export interface RenderedGraph {
  /** Positions rounded to a pixel: a refresh that moves nothing leaves them equal. */
  nodes: { id: string; parent?: string; label: string; x: number; y: number }[];
  edges: { id: string; source: string; target: string; label: string; classes: string[]; width: number }[];
  layouts: number;
}

export class GraphCanvas {
  private readonly cy: Core;
  private key = '';
  private layouts = 0;
  private running = false;
  private pending = false;
  private destroyed = false;

  /** `onLayout` is told when a layout has finished (the nodes are where they will stay). */
  private readonly onLayout: () => void;

  /** `onSelect` is told the service host of a node tapped (a service, or a workload's service). */
  constructor(container: HTMLElement, onLayout: () => void = () => {}, onSelect: (host: string) => void = () => {}) {
    this.onLayout = onLayout;
    if (!registered) {
      cytoscape.use(elk);
      registered = true;
    }
    this.cy = cytoscape({ container, style: stylesheet, minZoom: 0.2, maxZoom: 3, boxSelectionEnabled: false });
    this.cy.on('tap', 'node', (e) => {
      const n = e.target as cytoscape.NodeSingular;
      const id = String(n.isParent() ? n.id() : (n.data('parent') ?? ''));
      if (id.startsWith('svc:')) onSelect(id.slice(4));
    });
  }

  update(g: GraphElements): void {
    if (this.destroyed) return;
    const cy = this.cy;
    const nodeIds = new Set(g.nodes.map((n) => n.data.id));
    const edgeIds = new Set(g.edges.map((e) => e.data.id));
    cy.batch(() => {
      cy.edges().forEach((e) => {
        if (!edgeIds.has(e.id())) e.remove();
      });
      cy.nodes().forEach((n) => {
        if (!nodeIds.has(n.id())) n.remove();
      });
      // Parents first: a child added before its parent would be placed at the top level.
      const ordered = [...g.nodes].sort((a, b) => Number(!!a.data.parent) - Number(!!b.data.parent));
      for (const n of ordered) {
        const existing = cy.getElementById(n.data.id);
        if (existing.empty()) cy.add({ group: 'nodes', data: { ...n.data }, classes: n.classes });
        else {
          existing.data('label', n.data.label);
          existing.classes(n.classes);
          const parent = n.data.parent ?? null;
          if ((existing.data('parent') ?? null) !== parent) existing.move({ parent });
        }
      }
      for (const e of g.edges) {
        const existing = cy.getElementById(e.data.id);
        if (existing.empty()) {
          const added = cy.add({ group: 'edges', data: { ...e.data }, classes: e.classes });
          added.style('width', e.width);
        } else {
          existing.data({ ...e.data });
          existing.classes(e.classes);
        }
      }
    });
    for (const e of g.edges) {
      const edge = cy.getElementById(e.data.id);
      if (Math.abs(Number.parseFloat(String(edge.style('width'))) - e.width) > 0.05) edge.stop(true).animate({ style: { width: e.width } }, { duration: 800, easing: 'ease-in-out-sine' });
    }
    const key = layoutKey(g);
    if (key !== this.key) {
      this.key = key;
      this.layout();
    }
  }

  private layout(): void {
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = true;
    const first = this.layouts === 0;
    performance.mark('weft:graph-layout');
    const options: BaseLayoutOptions & Record<string, unknown> = {
      name: 'elk',
      nodeDimensionsIncludeLabels: true,
      fit: true,
      padding: 30,
      animate: !first,
      animationDuration: 600,
      elk: {
        algorithm: 'layered',
        'elk.direction': 'RIGHT',
        'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
        'elk.layered.spacing.nodeNodeBetweenLayers': 110,
        'elk.spacing.nodeNode': 24,
        'elk.padding': '[top=28,left=12,bottom=12,right=12]',
      },
      stop: () => {
        this.layouts++;
        this.running = false;
        if (this.destroyed) {
          this.cy.destroy();
          return;
        }
        if (this.pending) {
          this.pending = false;
          this.layout();
        } else this.onLayout();
      },
    };
    this.cy.layout(options).run();
  }

  rendered(): RenderedGraph {
    return {
      nodes: this.cy.nodes().map((n) => ({ id: n.id(), label: String(n.data('label')), x: Math.round(n.position('x')), y: Math.round(n.position('y')), ...(n.data('parent') ? { parent: String(n.data('parent')) } : {}) })),
      edges: this.cy.edges().map((e) => ({
        id: e.id(),
        source: e.source().id(),
        target: e.target().id(),
        label: String(e.data('label')),
        classes: e.classes(),
        width: Number.parseFloat(String(e.style('width'))),
      })),
      layouts: this.layouts,
    };
  }

  /** Destroys the graph; one being laid out goes when ELK has answered (its positions land on a live graph). */
  destroy(): void {
    this.destroyed = true;
    if (!this.running) this.cy.destroy();
  }
}
