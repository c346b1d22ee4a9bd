// Debian's Chromium (e2e/bookinfo's chromiumPath) driven by playwright-core, on the dashboard:
// console errors and page errors collected for the whole run, the graph model the page exposes
// (window.__weftGraph), screenshots under e2e/dashboard/artifacts/.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

export const artifactDir = process.env.WEFT_E2E_ARTIFACTS ?? resolve(fileURLToPath(new URL('../artifacts', import.meta.url)));

/** What the page exposes as window.__weftGraph (apps/dashboard/src/ui/graph-view.ts), as read here. */
export interface GraphSnapshot {
  nodes: { id: string; kind: string; label: string; parent?: string }[];
  edges: { id: string; source: string; target: string; rps: number; successRate: number; p99Ms: number | null; mtls: boolean; error: boolean }[];
  rendered: {
    /** `box`: the node as drawn, its label included (Cytoscape's boundingBox), in canvas coordinates. */
    nodes: { id: string; parent?: string; x: number; y: number; box: { x1: number; y1: number; x2: number; y2: number } }[];
    /** `lock`: where the lock of an mTLS edge is drawn (its midpoint, in pixels of the canvas). */
    edges: { id: string; source: string; target: string; label: string; classes: string[]; width: number; lock?: { x: number; y: number } }[];
    layouts: number;
    layoutBy?: 'server' | 'cytoscape';
    /** No layout moving the nodes (its animation ended). */
    settled: boolean;
  };
  updatedAt: number;
  laidOutAt?: number;
  window: string;
  sources: { prometheus: { ok: boolean }; weftd: { ok: boolean } };
}

export async function launchChromium(executablePath: string): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  // As in e2e/bookinfo: root needs --no-sandbox; another user's sandbox needs user namespaces, which some containers lack.
  const launch = (noSandbox: boolean) => chromium.launch({ executablePath, headless: true, args: noSandbox ? ['--no-sandbox'] : [] });
  return process.getuid?.() === 0 ? launch(true) : launch(false).catch(() => launch(true));
}

export class DashboardPage {
  readonly errors: string[] = [];

  readonly page: Page;
  readonly baseUrl: string;

  constructor(page: Page, baseUrl: string) {
    this.page = page;
    this.baseUrl = baseUrl;
    page.on('console', (m) => {
      if (m.type() === 'error') this.errors.push(`console error on ${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => this.errors.push(`page error on ${page.url()}: ${e.message}`));
  }

  /** Opens a view by its hash route (`graph?window=30s`, `services/<host>`...). */
  async open(route: string): Promise<void> {
    const url = new URL(`#/${route}`, this.baseUrl).toString();
    if (this.page.url().startsWith(this.baseUrl)) {
      await this.page.evaluate((h) => {
        (globalThis as unknown as { location: { hash: string } }).location.hash = h;
      }, `#/${route}`);
    } else await this.page.goto(url);
  }

  graph(): Promise<GraphSnapshot | undefined> {
    return this.page.evaluate(() => (globalThis as unknown as { __weftGraph?: GraphSnapshot }).__weftGraph);
  }

  async screenshot(name: string): Promise<string> {
    await mkdir(artifactDir, { recursive: true });
    const file = join(artifactDir, `${name}.png`);
    await this.page.screenshot({ path: file, fullPage: true });
    console.log(`screenshot: ${file}`);
    return file;
  }
}

/** The edge from workload `from` to workload `to` (names without namespace: `productpage-v1`). */
export function edgeOf(g: GraphSnapshot | undefined, from: string, to: string): GraphSnapshot['edges'][number] | undefined {
  return g?.edges.find((e) => e.source.endsWith(`/${from}`) && e.target.endsWith(`/${to}`));
}

/** Pairs of drawn nodes whose boxes overlap, except a node inside its own ancestor (a workload in its service's box). */
export function overlappingBoxes(g: GraphSnapshot): string[] {
  const nodes = g.rendered.nodes;
  const parent = new Map(nodes.map((n) => [n.id, n.parent]));
  const ancestor = (a: string, of: string) => {
    for (let p = parent.get(of); p; p = parent.get(p)) if (p === a) return true;
    return false;
  };
  const found: string[] = [];
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const [a, b] = [nodes[i]!, nodes[j]!];
      if (ancestor(a.id, b.id) || ancestor(b.id, a.id)) continue;
      if (a.box.x1 < b.box.x2 && b.box.x1 < a.box.x2 && a.box.y1 < b.box.y2 && b.box.y1 < a.box.y2) found.push(`${a.id} ${JSON.stringify(a.box)} overlaps ${b.id} ${JSON.stringify(b.box)}`);
    }
  }
  return found;
}

/** Waits until `check` passes on the page's graph (polled), returning the time it took and the last graph. */
export async function waitForGraph(p: DashboardPage, check: (g: GraphSnapshot) => string | undefined, timeoutMs: number): Promise<{ ms: number; graph: GraphSnapshot }> {
  const t0 = Date.now();
  let last: GraphSnapshot | undefined;
  let why = 'no graph drawn yet';
  while (Date.now() - t0 < timeoutMs) {
    last = await p.graph();
    if (last) {
      const problem = check(last);
      if (problem === undefined) return { ms: Date.now() - t0, graph: last };
      why = problem;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`after ${timeoutMs} ms: ${why}; edges: ${JSON.stringify(last?.edges.map((e) => `${e.source}->${e.target} ${e.rps} rps mtls=${e.mtls}`))}`);
}
