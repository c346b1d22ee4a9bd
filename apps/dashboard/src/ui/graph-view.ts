// The live service graph: polled every 2 s, drawn by GraphCanvas, and the same edges as a table
// (readable without the canvas, by screen readers and by tests). The model last drawn is on
// window.__weftGraph.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { GraphAnswer, GraphNode, Sources } from './api.ts';
import type { GraphCanvas, RenderedGraph } from './graph-canvas.ts';
import { formatMs, formatPercent, formatRps, toElements } from './graph-model.ts';
import { html } from './html.ts';
import { Lock } from './icons.ts';
import { usePoll } from './poll.ts';
import { href, type Route } from './route.ts';

export interface GraphSnapshot {
  nodes: GraphNode[];
  edges: GraphAnswer['edges'];
  /** What the canvas holds after the update. */
  rendered: RenderedGraph;
  /** Date.now() when it was drawn. */
  updatedAt: number;
  /** Date.now() when the last layout finished. */
  laidOutAt?: number;
  window: string;
  /** The answer's sources: whether the data is fresh (prometheus.ok) or the last good one kept. */
  sources: Sources;
}

declare global {
  interface Window {
    __weftGraph?: GraphSnapshot;
  }
}

// 30 s by default: with local mode's 2 s scrapes a change of traffic shows within seconds and a
// route taken away falls to 0 within half a minute.
const windows = ['30s', '1m', '5m', '15m'];
export const refreshMs = 2000;

function nodeName(nodes: Map<string, GraphNode>, id: string): string {
  const n = nodes.get(id);
  if (!n) return id;
  if (n.kind === 'workload' && n.service && n.version) return `${n.service} ${n.version}`;
  return n.label || id;
}

/** The rate window a graph route asks for (`#/graph?window=1m`), else the default. */
export function windowOf(route: Route): string {
  const w = route.query.get('window') ?? '';
  return windows.includes(w) ? w : '30s';
}

export function graphPath(win: string): string {
  return `/api/graph?window=${encodeURIComponent(win)}`;
}

export function GraphView({ route }: { route: Route }) {
  const [win, setWin] = useState(() => windowOf(route));
  const polled = usePoll<GraphAnswer>(graphPath(win), refreshMs);
  const container = useRef<HTMLDivElement>(null);
  const canvas = useRef<GraphCanvas | undefined>(undefined);
  const [drawError, setDrawError] = useState<string | undefined>(undefined);

  const [canvasReady, setCanvasReady] = useState(false);
  const laidOut = useRef<number | undefined>(undefined);
  const [loadCanvas, setLoadCanvas] = useState(false);

  // Cytoscape is most of the bundle: a chunk of its own (the server splits the bundle), imported
  // once the first data is on the page (or after a second without it), so that parsing it does not
  // hold back the page's first paint with data.
  useEffect(() => {
    const t = setTimeout(() => setLoadCanvas(true), polled.data || polled.error ? 0 : 1000);
    return () => clearTimeout(t);
  }, [polled.data, polled.error]);

  useEffect(() => {
    if (!loadCanvas) return;
    let cancelled = false;
    import('./graph-canvas.ts')
      .then(({ GraphCanvas }) => {
        if (cancelled || !container.current) return;
        performance.mark('weft:graph-code');
        canvas.current = new GraphCanvas(
          container.current,
          () => {
            // Told during update() for a layout without animation (the first): the snapshot is
            // written after it, with laidOut's time.
            laidOut.current = Date.now();
            performance.mark('weft:graph-laid-out');
            const snapshot = window.__weftGraph;
            if (snapshot && canvas.current) window.__weftGraph = { ...snapshot, rendered: canvas.current.rendered(), laidOutAt: laidOut.current };
          },
          (host) => {
            location.hash = href('services', host);
          },
        );
        setCanvasReady(true);
      })
      .catch((e: Error) => setDrawError(`the graph could not be drawn: ${e.message}`));
    return () => {
      cancelled = true;
      canvas.current?.destroy();
      canvas.current = undefined;
    };
  }, [loadCanvas]);

  useEffect(() => {
    window.__weftGraph = undefined;
  }, []);

  const data = polled.data;
  // When the page first shows the graph's data (the edge table): the page load the e2e test prints.
  useEffect(() => {
    if (data && performance.getEntriesByName('weft:graph-data').length === 0) performance.mark('weft:graph-data');
  }, [data]);

  useEffect(() => {
    if (!data || !canvas.current) return;
    try {
      canvas.current.update(toElements(data), data.layout);
      const laidOutAt = laidOut.current;
      window.__weftGraph = { nodes: data.nodes, edges: data.edges, rendered: canvas.current.rendered(), updatedAt: Date.now(), window: win, sources: data.sources, ...(laidOutAt ? { laidOutAt } : {}) };
      setDrawError(undefined);
    } catch (e) {
      setDrawError(`the graph could not be drawn: ${(e as Error).message}`);
    }
  }, [data, canvasReady]);

  const byId = useMemo(() => new Map((data?.nodes ?? []).map((n) => [n.id, n])), [data]);
  const edges = useMemo(() => [...(data?.edges ?? [])].sort((a, b) => nodeName(byId, a.source).localeCompare(nodeName(byId, b.source)) || nodeName(byId, a.target).localeCompare(nodeName(byId, b.target))), [data, byId]);

  return html`<section class="view graph-view" data-testid="graph-view">
    <div class="toolbar">
      <h2>Service graph</h2>
      <label>Rates over <select data-testid="graph-window" value=${win} onChange=${(e: Event) => setWin((e.target as HTMLSelectElement).value)}>
        ${windows.map((w) => html`<option value=${w}>${w}</option>`)}
      </select></label>
      <span class="muted" data-testid="graph-updated">${polled.at ? `updated ${new Date(polled.at).toLocaleTimeString()}` : 'loading…'}</span>
      <span class="legend"><span class="swatch mtls"></span> <${Lock} /> mTLS <span class="swatch error"></span> errors <span class="swatch idle"></span> no traffic</span>
    </div>
    ${drawError ? html`<div class="error-box" role="alert">${drawError}</div>` : null}
    ${polled.error && !data ? html`<div class="error-box" role="alert">No graph yet: ${polled.error}</div>` : null}
    <div id="graph" class="graph-canvas" data-testid="graph-canvas" ref=${container}></div>
    ${data && edges.length === 0 ? html`<p class="muted" data-testid="graph-empty">No traffic in the last ${win}. Send some requests through the gateway.</p>` : null}
    <table class="edges" data-testid="edge-table">
      <caption>Edges (requests per second over ${win}, reported by the destination)</caption>
      <thead><tr><th>From</th><th>To</th><th>rps</th><th>Success</th><th>p99</th><th>mTLS</th></tr></thead>
      <tbody>
        ${edges.map(
          (e) => html`<tr key=${e.id} data-testid="edge-row" data-edge=${e.id} data-source=${e.source} data-target=${e.target} data-rps=${String(e.rps)} data-mtls=${String(e.mtls)} class=${e.error ? 'error' : e.rps > 0 ? '' : 'idle'}>
            <td>${nodeName(byId, e.source)}</td>
            <td>${nodeName(byId, e.target)}</td>
            <td class="num">${formatRps(e.rps)}</td>
            <td class="num">${formatPercent(e.successRate)}</td>
            <td class="num">${formatMs(e.p99Ms)}</td>
            <td data-testid="edge-mtls">${e.mtls ? html`<${Lock} />` : ''}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
