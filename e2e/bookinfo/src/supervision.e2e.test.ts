// Supervision of the local mesh (`weftctl up`'s startLocalMesh, real processes, no root): while a
// bounded loop of requests runs through the ingress gateway, weftd, the details sidecar and the
// ratings application are each killed with SIGKILL. Each must be back within 10 s, and every
// request that is not addressed to the killed component must succeed meanwhile.
//
// "Addressed to" follows BookInfo's call graph through the gateway:
//   /productpage                -> productpage -> details, and reviews (v2 and v3 -> ratings)
//   /api/v1/products/0          -> productpage -> details
//   /api/v1/products/0/reviews  -> productpage -> reviews (v2 and v3 -> ratings)
//   /api/v1/products/0/ratings  -> productpage -> ratings
// weftd is on no request's path (the data plane keeps its config), so every request counts; with
// the details sidecar down, the reviews and ratings calls count; with the ratings app down, after
// routing every service to v1 (reviews v1 calls no ratings), the page, details and reviews count.
// A request succeeds when the answer is 200 and carries what the user would see, with none of
// BookInfo's "unavailable" texts in it.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, type LocalMesh, repoRoot, startLocalMesh } from '@weft/weftctl';
import { runWeftctlCommand } from '@weft/weftctl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWeftctl } from './driver.ts';
import { freeLoopbackNet } from './local-driver.ts';

const backWithinMs = 10_000;

let stateDir: string;
let net: string;
let mesh: LocalMesh | undefined;
let base: string;
/** What the supervisor said, with when. */
const supervision: { at: number; text: string }[] = [];

interface Check {
  path: string;
  /** What a successful answer holds; a string saying what is wrong otherwise. */
  verify: (status: number, body: string) => string | undefined;
}

const unavailable = ['Error fetching product details', 'Error fetching product reviews', 'Ratings service is currently unavailable', 'currently unavailable'];
function clean(body: string): string | undefined {
  const found = unavailable.find((t) => body.includes(t));
  return found ? `the answer says "${found}"` : undefined;
}

const page: Check = {
  path: '/productpage',
  verify: (status, body) => (status !== 200 ? `status ${status}` : !body.includes('<title>Simple Bookstore App</title>') ? 'not the product page' : clean(body)),
};
const details: Check = {
  path: '/api/v1/products/0',
  verify: (status, body) => (status !== 200 ? `status ${status}` : !/"author":/.test(body) ? `no details: ${body.slice(0, 120)}` : clean(body)),
};
const reviews: Check = {
  path: '/api/v1/products/0/reviews',
  verify: (status, body) => (status !== 200 ? `status ${status}` : !/"reviewer":/.test(body) ? `no reviews: ${body.slice(0, 120)}` : clean(body)),
};
const ratings: Check = {
  path: '/api/v1/products/0/ratings',
  verify: (status, body) => (status !== 200 ? `status ${status}` : !/"ratings":\s*\{"Reviewer1"/.test(body) ? `no ratings: ${body.slice(0, 120)}` : undefined),
};

async function request(c: Check): Promise<string | undefined> {
  try {
    const r = await fetch(`${base}${c.path}`, { signal: AbortSignal.timeout(5000) });
    return c.verify(r.status, await r.text());
  } catch (e) {
    return `no answer: ${((e as Error).cause as Error | undefined)?.message ?? (e as Error).message}`;
  }
}

interface Sample {
  path: string;
  at: number;
  problem: string | undefined;
}

/**
 * Kills a component with SIGKILL while `checks` are requested in turn, one after the other, from 1 s
 * before the kill until 1 s after `back` holds (polled every 100 ms, at most 20 s).
 */
async function killDuring(pid: number, checks: readonly Check[], back: () => Promise<boolean>): Promise<{ backMs: number | undefined; samples: Sample[]; killedAt: number }> {
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const c = checks[i % checks.length]!;
      const at = Date.now();
      samples.push({ path: c.path, at, problem: await request(c) });
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  let backMs: number | undefined;
  while (Date.now() - killedAt < 20_000) {
    await new Promise((r) => setTimeout(r, 100));
    if (await back().catch(() => false)) {
      backMs = Date.now() - killedAt;
      break;
    }
  }
  await new Promise((r) => setTimeout(r, 1000));
  running = false;
  await loop;
  return { backMs, samples, killedAt };
}

function report(what: string, r: { backMs: number | undefined; samples: Sample[]; killedAt: number }): void {
  const during = r.samples.filter((s) => s.at >= r.killedAt && (r.backMs === undefined || s.at <= r.killedAt + r.backMs));
  const said = supervision.filter((s) => s.at >= r.killedAt).map((s) => `+${((s.at - r.killedAt) / 1000).toFixed(1)} s ${s.text}`);
  console.log(`${what}: back in ${r.backMs === undefined ? 'never (20 s)' : `${(r.backMs / 1000).toFixed(1)} s`}; ${r.samples.length} requests, ${during.length} while it was down, ${r.samples.filter((s) => s.problem).length} failed; supervisor: ${said.join(', ')}`);
}

function expectAllSucceeded(r: { backMs: number | undefined; samples: Sample[]; killedAt: number }): void {
  expect(r.backMs, 'back within 10 s').toBeDefined();
  expect(r.backMs!).toBeLessThanOrEqual(backWithinMs);
  expect(r.samples.filter((s) => s.problem).map((s) => `${s.path} at +${s.at - r.killedAt} ms: ${s.problem}`)).toEqual([]);
  // The loop was really running while the component was down.
  expect(r.samples.filter((s) => s.at >= r.killedAt && s.at <= r.killedAt + r.backMs!).length).toBeGreaterThan(0);
}

const weftctl = (...args: string[]) => runWeftctlCommand(args, stateDir);

/** A table as weftctl prints it, as one record per row keyed by the header's column names. */
function parseTable(text: string): Record<string, string>[] {
  const [header, ...rows] = text.split('\n').filter((l) => l.trim() && !l.startsWith('config:') && !l.startsWith('weftd:') && !l.startsWith('mesh:'));
  const names = header!.split(/ {2,}/);
  const starts: number[] = [];
  let from = 0;
  for (const n of names) {
    const at = header!.indexOf(n, from);
    starts.push(at);
    from = at + n.length;
  }
  return rows.map((row) => Object.fromEntries(names.map((n, i) => [n, row.slice(starts[i], starts[i + 1]).trim()])));
}

async function syncz(): Promise<{ id: string; types: Record<string, { status: string }> }[]> {
  const r = await fetch(`http://127.0.0.1:${mesh!.state.weftd!.monitoringPort}/debug/syncz`, { signal: AbortSignal.timeout(2000) });
  return (await r.json()) as { id: string; types: Record<string, { status: string }> }[];
}

/** Every proxy of the mesh connected to weftd with every type ACKed. */
async function allSynced(): Promise<boolean> {
  const s = mesh!.state;
  const entries = await syncz();
  return [s.ingress!, ...s.proxies].every((p) => {
    const e = entries.find((x) => x.id === p.nodeId);
    return e !== undefined && Object.keys(e.types).length > 0 && Object.values(e.types).every((t) => t.status === 'ACKED');
  });
}

/** Processes carrying the mesh's marker (children of children too). */
function meshProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`WEFT_LOCAL_MESH=${stateDir}`)) pids.push(Number(entry));
    } catch {
      // Gone, or not ours.
    }
  }
  return pids;
}

async function start(): Promise<LocalMesh> {
  const m = await startLocalMesh({ stateDir, loopbackNet: net, ingressAddress: `${net}.9`, ingressPort: 8080, timeoutMs: 150_000, addons: false });
  m.onSupervision((e) => supervision.push({ at: Date.now(), text: `${e.name}: ${e.type}${e.type === 'ready' ? ` (down ${e.downMs} ms)` : ''}` }));
  base = m.url.replace(/\/productpage$/, '');
  return m;
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'weft-e2e-supervision-'));
  net = await freeLoopbackNet();
  mesh = await start();
});

afterAll(async () => {
  await mesh?.stop(5000);
  if (meshProcesses().length === 0) await rm(stateDir, { recursive: true, force: true });
});

describe('weftctl up restarts what dies (local mesh, SIGKILL during a request loop)', () => {
  it('weftd: back within 10 s, every proxy reconnected and synced; every request succeeds meanwhile', async () => {
    const old = mesh!.state.weftd!.pid;
    let notAnswering: { code: number; err: string } | undefined;
    const r = await killDuring(old, [page, details, reviews, ratings], async () => {
      // Right after the kill: the CLI says plainly that weftd does not answer.
      notAnswering ??= await weftctl('proxy-status');
      const health = await fetch(`http://127.0.0.1:${mesh!.state.weftd!.monitoringPort}/healthz`, { signal: AbortSignal.timeout(1000) });
      return health.status === 200 && mesh!.state.weftd!.pid !== old && (await allSynced());
    });
    report('weftd killed', r);
    expectAllSucceeded(r);
    expect(notAnswering!.code).toBe(1);
    expect(notAnswering!.err).toMatch(new RegExp(`^weftctl: weftd is not answering at http://127\\.0\\.0\\.1:${mesh!.state.weftd!.monitoringPort} \\(.*see ${stateDir}/logs/weftd\\.log`));
    expect(mesh!.state.weftd!.run).toMatchObject({ phase: 'running', restarts: 1, lastExit: { reason: 'was killed (SIGKILL)' } });
    expect(readFileSync(mesh!.state.weftd!.logFile, 'utf8')).toMatch(/"scope":"supervisor","msg":"weftd was killed \(SIGKILL\) after [\d.]+ s; restarting in 0\.2 s"/);
  });

  it('the details sidecar: back within 10 s; every call to reviews and ratings succeeds meanwhile', async () => {
    const proxy = () => mesh!.state.proxies.find((p) => p.name === 'details-v1')!;
    const old = proxy().pid;
    const r = await killDuring(old, [reviews, ratings], async () => proxy().pid !== old && (await request(details)) === undefined);
    report('details sidecar killed', r);
    expectAllSucceeded(r);
    expect(proxy().run).toMatchObject({ phase: 'running', restarts: 1 });
  });

  it('the ratings app (every service routed to v1, so reviews calls no ratings): back within 10 s on its port; page, details and reviews succeed meanwhile', async () => {
    await runWeftctl('weftctl apply', (io) =>
      apply(
        {
          stateDir,
          files: [join(repoRoot, 'examples/bookinfo/networking/destination-rule-all.yaml'), join(repoRoot, 'examples/bookinfo/networking/virtual-service-all-v1.yaml')],
          namespace: 'default',
          waitMs: 20_000,
        },
        io,
      ),
    );
    const app = () => mesh!.state.apps.find((a) => a.workload === 'ratings-v1')!;
    const { pid: old, port } = app();
    const r = await killDuring(old, [page, details, reviews], async () => app().pid !== old && (await request(ratings)) === undefined);
    report('ratings app killed', r);
    expectAllSucceeded(r);
    expect(app()).toMatchObject({ port, run: { phase: 'running', restarts: 1 } });
  });

  it('proxy-status shows the restarts of the proxies, status those of every component', async () => {
    const ps = await weftctl('proxy-status');
    expect(ps.code).toBe(0);
    const proxies = parseTable(ps.out);
    expect(Object.fromEntries(proxies.map((p) => [p.NAME, p.RESTARTS]))).toEqual({
      'details-v1.default': '1',
      'istio-ingressgateway.istio-system': '0',
      'productpage-v1.default': '0',
      'ratings-v1.default': '0',
      'reviews-v1.default': '0',
      'reviews-v2.default': '0',
      'reviews-v3.default': '0',
    });
    expect(ps.out).toMatch(/^weftd: restarted 1 time \(last: it was killed \(SIGKILL\)\)/m);
    const st = await weftctl('status');
    expect(st.err).toBe('');
    expect(st.code).toBe(0);
    const components = parseTable(st.out);
    expect(components.map((c) => `${c.NAME} ${c.KIND} ${c.STATE} ${c.RESTARTS}`)).toEqual([
      'weftd weftd running 1',
      'istio-ingressgateway gateway running 0',
      'details-v1 app running 0',
      'details-v1 sidecar running 1',
      'productpage-v1 app running 0',
      'productpage-v1 sidecar running 0',
      'ratings-v1 app running 1',
      'ratings-v1 sidecar running 0',
      'reviews-v1 app running 0',
      'reviews-v1 sidecar running 0',
      'reviews-v2 app running 0',
      'reviews-v2 sidecar running 0',
      'reviews-v3 app running 0',
      'reviews-v3 sidecar running 0',
    ]);
    const weftd = components[0]!;
    expect(weftd.PID).toBe(String(mesh!.state.weftd!.pid));
    expect(weftd['LAST EXIT']).toMatch(/^was killed \(SIGKILL\) \d+s ago$/);
    expect(weftd.LOG).toBe(join(stateDir, 'logs/weftd.log'));
    expect(st.out).toContain('config: every file in the config directory accepted');
    console.log(`weftctl status:\n${st.out}`);
  });

  it('a file weftd rejects shows in proxy-status and status with its location until it is removed', async () => {
    const bad = join(stateDir, 'config', 'broken.yaml');
    await writeFile(bad, 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: broken\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n      weight: -5\n');
    const rejectedLine = new RegExp(`^config: 1 file rejected: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:10:\\d+: error: VirtualService default/broken: spec\\.http\\[0\\]\\.route\\[0\\]\\.weight: `, 'm');
    let ps = await weftctl('proxy-status');
    for (let i = 0; i < 50 && !rejectedLine.test(ps.out); i++) {
      await new Promise((r) => setTimeout(r, 100));
      ps = await weftctl('proxy-status');
    }
    expect(ps.out).toMatch(rejectedLine);
    expect(ps.code).toBe(0);
    const st = await weftctl('status');
    expect(st.out).toMatch(rejectedLine);
    expect(st.code).toBe(1);
    await rm(bad);
    for (let i = 0; i < 50 && rejectedLine.test(ps.out); i++) {
      await new Promise((r) => setTimeout(r, 100));
      ps = await weftctl('proxy-status');
    }
    expect(ps.out).not.toMatch(/^config:/m);
    expect((await weftctl('status')).code).toBe(0);
    const weftdLog = readFileSync(mesh!.state.weftd!.logFile, 'utf8');
    expect(weftdLog).toMatch(/"msg":"config problems cleared","file":"[^"]*broken\.yaml"/);
    expect(weftdLog).not.toMatch(/"msg":"config accepted","file":"[^"]*broken\.yaml"/);
  });

  it('stop leaves no process (restarted ones included); the next start keeps what apply added', async () => {
    const pids = [mesh!.state.weftd!.pid, ...mesh!.state.proxies.map((p) => p.pid), ...mesh!.state.apps.map((a) => a.pid)];
    await mesh!.stop(5000);
    mesh = undefined;
    expect(meshProcesses()).toEqual([]);
    for (const pid of pids) expect(() => readFileSync(`/proc/${pid}/environ`), `pid ${pid}`).toThrow();
    const progress: string[] = [];
    mesh = await startLocalMesh({ stateDir, loopbackNet: net, ingressAddress: `${net}.9`, ingressPort: 8080, timeoutMs: 150_000, addons: false, onProgress: (c, t) => progress.push(`${c} ${t}`) });
    base = mesh.url.replace(/\/productpage$/, '');
    expect(mesh.keptConfig).toEqual(
      expect.arrayContaining(['destinationrule.networking.istio.io/details', 'destinationrule.networking.istio.io/reviews', 'virtualservice.networking.istio.io/reviews', 'virtualservice.networking.istio.io/ratings']),
    );
    expect(progress.find((l) => l.startsWith('config kept'))).toMatch(/^config kept 8 objects applied in an earlier run \(.*\); `weftctl up --fresh` starts without them$/);
    // Still all v1: no stars on any page load.
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${base}/productpage`, { signal: AbortSignal.timeout(10_000) });
      const html = await r.text();
      expect(r.status).toBe(200);
      expect(html.includes('glyphicon-star') || /gap-x-1 text-(black|red)-500/.test(html)).toBe(false);
    }
  });
});
