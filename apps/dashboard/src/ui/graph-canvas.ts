// The service graph on a canvas: Cytoscape.js draws at the positions ELK's layered algorithm
// (left to right, services as compound nodes holding their workloads) computed on the server for
// the graph's shape (/api/graph's `layout`; the page loads no layout engine, see the README).
// Refreshes change elements in place: data and classes are updated, widths animate, and nodes move
// only when the shape changes (a new layout, animated from where they were), so a rate changing
// never moves anything. The lock of an mTLS edge is SVG over the canvas at the edge's midpoint:
// the canvas draws text with the page's fonts, and a machine without an emoji font draws 🔒 as a box.
import cytoscape, { type Core, type EdgeSingular, type Layouts, type StylesheetJson } from 'cytoscape';
import { type GraphElements, type GraphLayout, layoutKey, nodeSize, servicePadding } from './graph-model.ts';

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
      width: (n: cytoscape.NodeSingular) => nodeSize(String(n.data('label'))).width,
      height: (n: cytoscape.NodeSingular) => nodeSize(String(n.data('label'))).height,
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
      padding: `${servicePadding.side}px`,
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
  // The label moves off the midpoint, where the lock is drawn.
  { selector: 'edge.mtls', style: { 'line-color': colors.mtls, 'target-arrow-color': colors.mtls, 'text-margin-y': -11 } },
  { selector: 'edge.idle', style: { 'line-style': 'dashed', 'line-color': colors.idle, 'target-arrow-color': colors.idle, color: '#94a3b8' } },
  { selector: 'edge.error', style: { 'line-color': colors.error, 'target-arrow-color': colors.error, color: colors.error } },
];

/** A node's box as drawn (its label included), in canvas coordinates. */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** What the canvas holds, for tests (window.__weftGraph.rendered). */
export interface RenderedGraph {
  /** Positions rounded to a pixel: a refresh that moves nothing leaves them equal. */
  nodes: { id: string; parent?: string; label: string; x: number; y: number; box: Box }[];
  edges: { id: string; source: string; target: string; label: string; classes: string[]; width: number; lock?: { x: number; y: number } }[];
  /** Layouts applied (the first one included). */
  layouts: number;
  /** Where the last layout came from: the server's ELK, or Cytoscape's own when the answer had none. */
  layoutBy?: 'server' | 'cytoscape';
  /** No layout moving the nodes (its animation ended): the positions are final. */
  settled: boolean;
}

const lockSvg = '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><path d="M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z" fill="currentColor"/></svg>';

export class GraphCanvas {
  private readonly cy: Core;
  private readonly overlay: HTMLDivElement;
  private readonly locks = new Map<string, HTMLElement>();
  private key = '';
  private layouts = 0;
  private layoutBy: RenderedGraph['layoutBy'];
  private current: Layouts | undefined;
  private generation = 0;
  private destroyed = false;

  /** `onLayout` is told when a layout has finished (the nodes are where they will stay). */
  private readonly onLayout: () => void;

  /** `onSelect` is told the service host of a node tapped (a service, or a workload's service). */
  constructor(container: HTMLElement, onLayout: () => void = () => {}, onSelect: (host: string) => void = () => {}) {
    this.onLayout = onLayout;
    this.cy = cytoscape({ container, style: stylesheet, minZoom: 0.2, maxZoom: 3, boxSelectionEnabled: false });
    this.cy.on('tap', 'node', (e) => {
      const n = e.target as cytoscape.NodeSingular;
      const id = String(n.isParent() ? n.id() : (n.data('parent') ?? ''));
      if (id.startsWith('svc:')) onSelect(id.slice(4));
    });
    this.overlay = document.createElement('div');
    this.overlay.className = 'graph-overlay';
    container.append(this.overlay);
    // Every frame Cytoscape draws (pan, zoom, a node moving, a width animating) moves the locks with it.
    this.cy.on('render', () => this.placeLocks());
  }

  update(g: GraphElements, layout?: GraphLayout): void {
    if (this.destroyed) return;
    const cy = this.cy;
    const key = layoutKey(g);
    // The server's positions when they are for this very shape.
    const positions = layout && layout.key === key ? layout.positions : undefined;
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
        if (existing.empty()) {
          const at = positions?.[n.data.id];
          cy.add({ group: 'nodes', data: { ...n.data }, classes: n.classes, ...(at ? { position: { ...at } } : {}) });
        } else {
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
    if (key !== this.key) {
      this.key = key;
      this.layout(positions);
    }
    this.placeLocks();
  }

  /**
   * Moves every node to the new layout. A layout still animating is stopped first and the new one
   * starts from where the nodes are: every node ends where ONE layout put it, never at positions
   * left from an older shape.
   */
  private layout(positions: GraphLayout['positions'] | undefined): void {
    const cy = this.cy;
    // Counted first: a stopped layout's own stop callback (if any) is then an old generation's.
    const generation = ++this.generation;
    this.current?.stop();
    cy.nodes().stop(true, false);
    const first = this.layouts === 0;
    performance.mark('weft:graph-layout');
    const common = {
      fit: true,
      padding: 30,
      animate: !first,
      animationDuration: 600,
      stop: () => {
        if (generation !== this.generation || this.destroyed) return;
        this.current = undefined;
        this.layouts++;
        this.onLayout();
      },
    };
    // Without the server's positions (an older server, or ELK failed there): Cytoscape's own
    // breadth-first layout, so that the graph still shows.
    this.layoutBy = positions ? 'server' : 'cytoscape';
    this.current = positions
      ? cy.layout({ name: 'preset', positions, ...common })
      : cy.layout({ name: 'breadthfirst', directed: true, spacingFactor: 1.2, ...common });
    this.current.run();
  }

  /** One lock per mTLS edge, at the edge's midpoint as drawn now (hidden when off the canvas). */
  private placeLocks(): void {
    if (this.destroyed) return;
    const seen = new Set<string>();
    const w = this.cy.width();
    const h = this.cy.height();
    this.cy.edges('.mtls').forEach((e: EdgeSingular) => {
      const id = e.id();
      seen.add(id);
      let el = this.locks.get(id);
      if (!el) {
        el = document.createElement('span');
        el.className = 'edge-lock';
        el.dataset.testid = 'edge-lock';
        el.dataset.edge = id;
        el.title = 'mutual TLS';
        el.innerHTML = lockSvg;
        this.overlay.append(el);
        this.locks.set(id, el);
      }
      const m = e.renderedMidpoint();
      const inside = Number.isFinite(m.x) && Number.isFinite(m.y) && m.x >= 0 && m.y >= 0 && m.x <= w && m.y <= h;
      el.style.display = inside ? '' : 'none';
      if (inside) el.style.transform = `translate(${Math.round(m.x)}px, ${Math.round(m.y)}px) translate(-50%, -50%)`;
    });
    for (const [id, el] of this.locks) {
      if (!seen.has(id)) {
        el.remove();
        this.locks.delete(id);
      }
    }
  }

  rendered(): RenderedGraph {
    return {
      nodes: this.cy.nodes().map((n) => {
        const b = n.boundingBox({ includeLabels: true, includeOverlays: false });
        return {
          id: n.id(),
          label: String(n.data('label')),
          x: Math.round(n.position('x')),
          y: Math.round(n.position('y')),
          box: { x1: Math.round(b.x1), y1: Math.round(b.y1), x2: Math.round(b.x2), y2: Math.round(b.y2) },
          ...(n.data('parent') ? { parent: String(n.data('parent')) } : {}),
        };
      }),
      edges: this.cy.edges().map((e) => {
        const lock = this.locks.get(e.id());
        const m = e.renderedMidpoint();
        return {
          id: e.id(),
          source: e.source().id(),
          target: e.target().id(),
          label: String(e.data('label')),
          classes: e.classes(),
          width: Number.parseFloat(String(e.style('width'))),
          ...(lock ? { lock: { x: Math.round(m.x), y: Math.round(m.y) } } : {}),
        };
      }),
      layouts: this.layouts,
      settled: this.current === undefined,
      ...(this.layoutBy ? { layoutBy: this.layoutBy } : {}),
    };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.current?.stop();
    this.cy.destroy();
    this.overlay.remove();
  }
}
