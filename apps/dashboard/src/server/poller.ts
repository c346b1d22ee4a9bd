// One poll of every source per interval, whatever the number of open pages: the API answers from
// what the last poll brought, so a page's refresh costs weftd and Prometheus nothing. The last good
// data of a source is kept when it fails; its SourceState says why.
import { tryParseNodeId } from '@weft/mesh';
import { open } from 'node:fs/promises';
import { type Logger, parseOriginHeader } from '@weft/model';
import { buildGraph, defaultWindow, type Graph, graphQueries, type PromSample } from './graph.ts';
import type { WeftdData } from './services.ts';
import { type Endpoints, getJson, getText, prometheusAuth, type SourceName, type SourceState, SourceTracker } from './sources.ts';

export interface PollerOptions {
  endpoints: () => Promise<Endpoints>;
  intervalMs: number;
  /** Bound of each request to a source (default: the interval, at most 3 s). */
  timeoutMs?: number;
  logger: Logger;
  /** Told how long each source's poll took and whether it worked (metrics). */
  onPoll?: (source: SourceName, seconds: number, ok: boolean) => void;
}

interface WindowData {
  graph: Graph;
  at: number;
  requestedAt: number;
}


/**
 * The origin header of each object's file (local mode: weftctl writes every applied object to a
 * file of its own saying where it was read). Files this process cannot read are left alone.
 */
async function readOrigins(configs: WeftdData['configs']): Promise<void> {
  const byFile = new Map<string, Promise<string | undefined>>();
  const firstLine = async (file: string) => {
    const h = await open(file, 'r');
    try {
      const buf = Buffer.alloc(1024);
      const { bytesRead } = await h.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('utf8').split('\n', 1)[0];
    } finally {
      await h.close();
    }
  };
  await Promise.all(
    configs.map(async (c) => {
      const file = c.source?.file;
      if (!file) return;
      if (!byFile.has(file)) byFile.set(file, firstLine(file).then((l) => (l === undefined ? undefined : parseOriginHeader(l)?.origin), () => undefined));
      const origin = await byFile.get(file);
      if (origin) c.origin = origin;
    }),
  );
}
/** A window nobody asked for in this long stops being polled. */
const windowIdleMs = 120_000;
const maxWindows = 4;

export class Poller {
  readonly weftd = new SourceTracker('weftd');
  readonly prometheus = new SourceTracker('prometheus');
  weftdData: WeftdData | undefined;
  endpoints: Endpoints = { proxies: [] };
  readonly #windows = new Map<string, WindowData | { graph: undefined; requestedAt: number }>();
  readonly #o: PollerOptions;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #configzText = '';

  constructor(o: PollerOptions) {
    this.#o = o;
    this.#timeoutMs = o.timeoutMs ?? Math.min(o.intervalMs, 3000);
    this.#windows.set(defaultWindow, { graph: undefined, requestedAt: Date.now() });
  }

  sources(): { weftd: SourceState; prometheus: SourceState } {
    return { weftd: this.weftd.state, prometheus: this.prometheus.state };
  }

  start(): void {
    const loop = async () => {
      if (this.#stopped) return;
      this.#running = this.poll();
      await this.#running;
      if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.intervalMs);
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /**
   * The graph for `window`, from the last poll. A window not polled yet is polled now (once;
   * later requests share that poll) and from then on at every interval while it is asked for.
   */
  async graph(window: string): Promise<Graph | undefined> {
    const now = Date.now();
    let w = this.#windows.get(window);
    if (!w) {
      if (this.#windows.size >= maxWindows) {
        // The least recently asked-for window (never the default) makes room.
        const oldest = [...this.#windows].filter(([k]) => k !== defaultWindow).sort((a, b) => a[1].requestedAt - b[1].requestedAt)[0];
        if (oldest) this.#windows.delete(oldest[0]);
      }
      w = { graph: undefined, requestedAt: now };
      this.#windows.set(window, w);
      await this.#pollGraph(window).catch(() => undefined);
      w = this.#windows.get(window) ?? w;
    }
    w.requestedAt = now;
    return w.graph;
  }

  /** The services the default window's graph saw traffic to (hosts that may have no ServiceEntry). */
  observedServices(): { host: string; namespace: string; name: string }[] {
    const g = this.#windows.get(defaultWindow)?.graph;
    return (g?.nodes ?? []).filter((n) => n.kind === 'service' && n.service).map((n) => ({ host: n.service!, namespace: n.namespace, name: n.label }));
  }

  /** One poll of every source (exported for tests and the first answer). */
  async poll(): Promise<void> {
    try {
      this.endpoints = await this.#o.endpoints();
    } catch (e) {
      this.#o.logger.warn('cannot locate the sources', { error: (e as Error).message });
    }
    await Promise.all([this.#pollWeftd(), this.#pollPrometheus()]);
  }

  async #pollWeftd(): Promise<void> {
    const base = this.endpoints.weftd;
    const t0 = performance.now();
    if (!base) {
      this.#fail(this.weftd, '', this.endpoints.missing?.weftd ?? 'weftd is not known');
      this.#o.onPoll?.('weftd', 0, false);
      return;
    }
    try {
      const [configzText, syncz, problems] = await Promise.all([
        getText(`${base}/debug/configz`, this.#timeoutMs),
        getJson<WeftdData['syncz']>(`${base}/debug/syncz`, this.#timeoutMs),
        getJson<WeftdData['problems']>(`${base}/debug/config_problems`, this.#timeoutMs),
      ]);
      // The same config as last time keeps its array (analysis is cached per array).
      const same = configzText === this.#configzText && this.weftdData;
      const configs = same ? this.weftdData!.configs : (JSON.parse(configzText) as WeftdData['configs']);
      if (!same) await readOrigins(configs);
      this.#configzText = configzText;
      this.weftdData = { configs, syncz, problems };
      this.#ok(this.weftd, base);
      this.#o.onPoll?.('weftd', (performance.now() - t0) / 1000, true);
    } catch (e) {
      this.#fail(this.weftd, base, `weftd at ${base} ${(e as Error).message}`);
      this.#o.onPoll?.('weftd', (performance.now() - t0) / 1000, false);
    }
  }

  async #pollPrometheus(): Promise<void> {
    const now = Date.now();
    for (const [k, w] of this.#windows) if (k !== defaultWindow && now - w.requestedAt > windowIdleMs) this.#windows.delete(k);
    const t0 = performance.now();
    const results = await Promise.all([...this.#windows.keys()].map((w) => this.#pollGraph(w).then(() => true, () => false)));
    this.#o.onPoll?.('prometheus', (performance.now() - t0) / 1000, results.every(Boolean));
  }

  async #pollGraph(window: string): Promise<void> {
    const base = this.endpoints.prometheus;
    if (!base) {
      this.#fail(this.prometheus, '', this.endpoints.missing?.prometheus ?? 'Prometheus is not known');
      throw new Error('no Prometheus');
    }
    const q = graphQueries(window);
    const headers = prometheusAuth(this.endpoints.prometheusPassword);
    const query = async (promql: string) => {
      const r = await getJson<{ status: string; error?: string; data?: { resultType: string; result: PromSample[] } }>(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`, this.#timeoutMs, headers);
      if (r.status !== 'success' || !r.data) throw new Error(`query failed: ${r.error ?? r.status}`);
      return r.data.result;
    };
    try {
      const [requests, p99] = await Promise.all([query(q.requests), query(q.p99)]);
      const gateways = new Set(
        (this.weftdData?.syncz ?? [])
          .map((s) => tryParseNodeId(s.id))
          .filter((n) => n?.type === 'router')
          .map((n) => `${n!.namespace}/${n!.podName}`),
      );
      const w = this.#windows.get(window);
      const data = { graph: buildGraph(requests, p99, gateways), at: Date.now(), requestedAt: w?.requestedAt ?? Date.now() };
      this.#windows.set(window, data);
      this.#ok(this.prometheus, base);
    } catch (e) {
      this.#fail(this.prometheus, base, `Prometheus at ${base} ${(e as Error).message}`);
      throw e;
    }
  }

  #ok(t: SourceTracker, url: string): void {
    if (!t.state.ok && t.state.error !== 'not polled yet') this.#o.logger.info('source is back', { source: t.name, url });
    t.succeeded(url);
  }

  #fail(t: SourceTracker, url: string, error: string): void {
    // One line per change of reason, not one per poll.
    if (t.state.error !== error) this.#o.logger.warn('source unavailable', { source: t.name, url, error });
    t.failed(url, error);
  }
}
