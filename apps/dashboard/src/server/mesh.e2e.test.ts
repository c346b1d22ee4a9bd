// The dashboard's API over a real local mesh, started as `weftctl up` starts it (startLocalMesh
// with its addons: Prometheus when installed, the dashboard receiving every proxy's spans through
// the tracing mesh config weftctl writes), after BookInfo page views through the gateway.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '@weft/testing';
import { apply, type LocalMesh, main as weftctl, repoRoot, startLocalMesh } from '@weft/weftctl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Graph } from './graph.ts';
import type { SourceState } from './sources.ts';
import { until } from './testing.ts';
import type { TraceSpan, TraceSummary } from './traces.ts';

const skipReason = needs({ tools: ['prometheus'] });

type Sources = { sources: { weftd: SourceState; prometheus: SourceState } };

function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A loopback /24 of its own (127.78.N), so that a demo or another suite may run beside. */
async function freeLoopbackNet(): Promise<string> {
  for (let i = 0; i < 30; i++) {
    const net = `127.78.${1 + Math.floor(Math.random() * 254)}`;
    const probes = await Promise.all([9, 10, 11, 12, 13, 14, 15].flatMap((h) => [canBind(`${net}.${h}`, 15000), canBind(`${net}.${h}`, h === 9 ? 8080 : 9080)]));
    if (probes.every(Boolean)) return net;
  }
  throw new Error('no free loopback net 127.78.N found');
}

async function runWeftctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await weftctl(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

describe.skipIf(skipReason)(`the dashboard on a local mesh ${skipReason ? `(skipped: ${skipReason})` : ''}`, () => {
  let stateDir: string;
  let mesh: LocalMesh;
  let base: string;
  const get = async <T>(path: string): Promise<{ status: number; body: T & Sources }> => {
    const r = await fetch(`${base}${path.slice(1)}`, { signal: AbortSignal.timeout(15_000) });
    return { status: r.status, body: (await r.json()) as T & Sources };
  };
  const pageViews = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const r = await fetch(mesh.url, { signal: AbortSignal.timeout(10_000) });
      await r.text();
      expect(r.status).toBe(200);
    }
  };

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'weft-dashboard-mesh-'));
    const net = await freeLoopbackNet();
    // Spans leave the proxies every 200 ms instead of 5 s, so the trace test does not wait.
    const previous = process.env.OTEL_BSP_SCHEDULE_DELAY;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
    try {
      mesh = await startLocalMesh({ stateDir, loopbackNet: net, ingressAddress: `${net}.9`, ingressPort: 8080, timeoutMs: 150_000, onProgress: (c, t) => console.log(`${c}: ${t}`) });
    } finally {
      if (previous === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY;
      else process.env.OTEL_BSP_SCHEDULE_DELAY = previous;
    }
    const d = mesh.state.dashboard;
    if (!d) throw new Error(`the mesh started without its dashboard; see ${join(stateDir, 'logs', 'dashboard.log')}`);
    base = d.url;
    await pageViews(30);
  });

  afterAll(async () => {
    await mesh?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('`weftctl dashboard` prints the URLs from mesh.json', async () => {
    const weft = await runWeftctl(['dashboard', '--state-dir', stateDir]);
    expect(weft).toMatchObject({ code: 0, out: `${base}\n` });
    const prom = await runWeftctl(['dashboard', 'prometheus', '--state-dir', stateDir]);
    expect(prom).toMatchObject({ code: 0, out: `${base}prometheus/\n` });
    // Prometheus through the dashboard, without its password.
    const r = await fetch(`${base}prometheus/api/v1/query?query=up`);
    expect(r.status).toBe(200);
    const none = await runWeftctl(['dashboard', '--state-dir', join(stateDir, 'nothing-here')]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no local mesh is running/);
  });

  it('graphs productpage -> reviews (and details) with request rates, as Prometheus scraped them', { timeout: 120_000 }, async () => {
    let last: (Graph & Sources) | undefined;
    const g = await until(
      'productpage -> reviews edges with traffic',
      async () => {
        // Traffic while waiting: a rate needs the counters to grow between two scrapes.
        await pageViews(3);
        const r = await get<Graph>('/api/graph');
        last = r.body;
        const toReviews = r.body.edges.filter((e) => e.source === 'default/productpage-v1' && e.target.startsWith('default/reviews-') && e.rps > 0);
        return toReviews.length === 3 && r.body.edges.some((e) => e.target === 'default/details-v1' && e.rps > 0) ? r.body : undefined;
      },
      90_000,
      1000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; the last graph: ${JSON.stringify(last)}`);
    });
    const edges = g.edges.map((e) => `${e.source} -> ${e.target}: ${e.rps} rps, ${e.successRate * 100}% ok, p99 ${e.p99Ms} ms${e.mtls ? ', mTLS' : ''}`);
    console.log(`graph:\n  ${edges.join('\n  ')}`);
    expect(g.nodes.find((n) => n.id === 'default/reviews-v2')).toMatchObject({ kind: 'workload', version: 'v2', parent: 'svc:reviews.default.svc.cluster.local' });
    expect(g.nodes.find((n) => n.id === 'istio-system/istio-ingressgateway')).toMatchObject({ kind: 'gateway' });
    expect(g.edges.find((e) => e.source === 'istio-system/istio-ingressgateway' && e.target === 'default/productpage-v1')?.rps).toBeGreaterThan(0);
    expect(g.sources.prometheus.ok).toBe(true);
  });

  it('shows every proxy with its xDS types ACKED', async () => {
    const r = await get<{ proxies: { workload: string; namespace: string; types: Record<string, { status: string }> }[] }>('/api/proxies');
    expect(r.body.proxies.map((p) => `${p.namespace}/${p.workload}`)).toEqual(expect.arrayContaining(['default/productpage-v1', 'default/reviews-v3', 'istio-system/istio-ingressgateway']));
    for (const p of r.body.proxies) {
      expect(Object.keys(p.types).length, p.workload).toBeGreaterThan(0);
      for (const [type, t] of Object.entries(p.types)) expect(t.status, `${p.workload} ${type}`).toBe('ACKED');
    }
    expect(Object.keys(r.body.proxies[0]!.types)).toEqual(expect.arrayContaining(['Cluster', 'Listener']));
  });

  it('keeps traces: a page view spans the gateway, productpage, details and reviews', { timeout: 90_000 }, async () => {
    const found = await until(
      'a trace through productpage, details and reviews',
      async () => {
        const list = (await get<{ traces: TraceSummary[] }>('/api/traces')).body.traces;
        for (const t of list.filter((x) => x.spans >= 4)) {
          const spans = (await get<{ spans: TraceSpan[] }>(`/api/traces/${t.traceId}`)).body.spans;
          // Each proxy exports its own spans: the trace is whole once every parent has arrived and
          // every service's own spans have (productpage's outbound span names reviews before reviews'
          // sidecar has exported its side: matching names rather than services raced that export).
          const ids = new Set(spans.map((s) => s.spanId));
          const whole = spans.every((s) => !s.parentSpanId || ids.has(s.parentSpanId));
          const services = new Set(spans.map((s) => s.service));
          if (whole && ['productpage.default', 'details.default', 'reviews.default'].every((svc) => services.has(svc))) return { t, spans };
        }
        await pageViews(1);
        return undefined;
      },
      60_000,
      1000,
    );
    console.log(`trace ${found.t.traceId}: root ${found.t.root} (${found.t.service}), ${found.t.spans} spans, ${found.t.durationMs} ms:\n  ${found.spans.map((s) => `${s.kind} ${s.service} ${s.name}`).join('\n  ')}`);
    expect(found.spans.filter((s) => !s.parentSpanId).map((s) => s.name)).toEqual([found.t.root]);
    expect(found.spans.map((s) => s.service)).toEqual(expect.arrayContaining(['productpage.default', 'details.default', 'reviews.default']));
  });

  it('lists the VirtualService and DestinationRule of reviews with their file and line after they are applied, and answers why from the proxy', async () => {
    const files = ['destination-rule-all.yaml', 'virtual-service-reviews-test-v2.yaml'].map((f) => join(repoRoot, 'examples/bookinfo/networking', f));
    const code = await apply({ stateDir, files, namespace: 'default', waitMs: 20_000 }, { out: () => {}, err: (s) => console.log(s) });
    expect(code).toBe(0);
    type Detail = { virtualServices: { name: string; source: { file: string; line?: number; configFile?: { file: string; line?: number } }; http: { destinations: { subset?: string; weight: number }[] }[] }[]; destinationRules: { name: string; subsets: { name: string }[] }[]; endpoints: { workload?: string; healthy: boolean }[] };
    const d = await until(
      'reviews with its VirtualService',
      async () => {
        const r = await get<Detail>('/api/services/reviews.default.svc.cluster.local');
        return r.body.virtualServices?.some((v) => v.name === 'reviews') ? r.body : undefined;
      },
      15_000,
      500,
    );
    const vs = d.virtualServices.find((v) => v.name === 'reviews')!;
    console.log(`reviews: VirtualService ${vs.name} at ${vs.source.file}:${vs.source.line} (weftd read ${vs.source.configFile?.file}:${vs.source.configFile?.line})`);
    // The file the user applied, and its line; weftd's copy in the config directory beside.
    expect(vs.source.file).toBe(files[1]);
    expect(vs.source.line).toBeGreaterThan(0);
    expect(vs.source.configFile?.file).toMatch(/\/config\/virtualservice\.networking\.istio\.io_default_reviews\.yaml$/);
    expect(vs.http.flatMap((h) => h.destinations.map((x) => x.subset))).toEqual(['v2', 'v1']);
    expect(d.destinationRules.find((x) => x.name === 'reviews')?.subsets.map((s) => s.name)).toEqual(['v1', 'v2', 'v3']);
    expect(d.endpoints.map((e) => [e.workload, e.healthy]).sort()).toEqual([
      ['reviews-v1', true],
      ['reviews-v2', true],
      ['reviews-v3', true],
    ]);

    const q = (h?: string) => `/api/why?source=default/productpage-v1&authority=reviews:9080&path=/reviews/0&method=GET&port=9080${h ? `&header=${encodeURIComponent(h)}` : ''}`;
    const jason = await get<{ cluster?: string; source: string }>(q('end-user:jason'));
    expect(jason.status, JSON.stringify(jason.body)).toBe(200);
    expect(jason.body).toMatchObject({ source: 'default/productpage-v1', cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local' });
    const other = await get<{ cluster?: string }>(q());
    expect(other.body.cluster).toBe('outbound|9080|v1|reviews.default.svc.cluster.local');
    expect((await get<{ error: string }>('/api/why?source=default/nobody')).status).toBe(404);
  });

  it('keeps the last data of a weftd that stops answering, says so within 10 s, and recovers when it answers again', { timeout: 60_000 }, async () => {
    const before = (await get<{ proxies: unknown[] }>('/api/proxies')).body.proxies.length;
    const pid = mesh.state.weftd!.pid;
    // Stopped, not killed: it holds its port and answers nothing (the poll's bound decides), and supervision leaves it alone.
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      const down = await until(
        'weftd reported down',
        async () => {
          const r = await get<object>('/api/status');
          return r.body.sources.weftd.ok ? undefined : r.body.sources.weftd;
        },
        10_000,
        200,
      );
      console.log(`weftd stopped: the dashboard said so after ${Date.now() - stoppedAt} ms: ${down.error}`);
      expect(down.error).toMatch(/^weftd at http:\/\/127\.0\.0\.1:\d+ unreachable: no answer within 3 s$/);
      const kept = await get<{ proxies: unknown[] }>('/api/proxies');
      expect(kept.body.proxies.length).toBe(before);
      expect(kept.body.sources.weftd.ok).toBe(false);
      expect((await get<{ virtualServices: unknown[] }>('/api/services/reviews.default.svc.cluster.local')).status).toBe(200);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const resumedAt = Date.now();
    await until('weftd back', async () => (await get<object>('/api/status')).body.sources.weftd.ok, 10_000, 200);
    console.log(`weftd answering again: the dashboard had it back after ${Date.now() - resumedAt} ms`);
  });
});
