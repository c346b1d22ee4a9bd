// The Prometheus addon in a real local mesh (startLocalMesh as `weftctl up` runs it): Debian's
// prometheus scrapes every proxy and weftd through the target files weftctl writes, behind basic
// auth, and leaves nothing behind when the mesh stops.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalMesh, startLocalMesh } from './mesh.ts';
import { prometheusQuery, prometheusTargets } from './prometheus.ts';
import { type MeshState, readState } from './state.ts';
import { canBind } from './supervisor.ts';

const skip = needs({ tools: ['prometheus'] });
const net = '127.0.65';
let stateDir = '';
let mesh: LocalMesh | undefined;
let state: MeshState;
const progress: string[] = [];

/** Processes carrying the mesh's marker (what a component started too). */
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

async function eventually<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: (v: T | undefined) => string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await get().catch(() => last);
    if (last !== undefined && ok(last)) return last;
    if (Date.now() > deadline) throw new Error(what(last));
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  if (skip) return;
  stateDir = await mkdtemp(join(tmpdir(), 'weftctl-prometheus-mesh-'));
  mesh = await startLocalMesh({ stateDir, loopbackNet: net, ingressPort: 0, timeoutMs: 150_000, onProgress: (c, t) => progress.push(`${c} ${t}`) });
  state = mesh.state;
}, 180_000);

afterAll(async () => {
  await mesh?.stop(5000);
  if (stateDir && meshProcesses().length === 0) await rm(stateDir, { recursive: true, force: true });
}, 60_000);

describe.skipIf(skip !== undefined)('weftctl up with the Prometheus addon', () => {
  it('says when Prometheus is ready and how long after the mesh (within 20 s), with its URL and the password file', async () => {
    const line = progress.find((l) => l.startsWith('prometheus '));
    expect(line).toMatch(/^prometheus ready on http:\/\/127\.0\.0\.1:\d+\/prometheus\/ \(user weft, password in .*\/prometheus\/password\): 16 targets up, [\d.]+ s after the mesh \([\d.]+ s after its start\)$/);
    const after = Number(/([\d.]+) s after the mesh/.exec(line!)![1]);
    console.log(`prometheus addon: ${line}`);
    expect(after).toBeLessThan(20);
    const p = state.prometheus!;
    expect((await readState(stateDir))?.prometheus).toMatchObject({ pid: p.pid, port: p.port, url: `http://127.0.0.1:${p.port}/prometheus/`, passwordFile: join(stateDir, 'prometheus/password'), logFile: join(stateDir, 'logs/prometheus.log') });
    expect(statSync(p.passwordFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(stateDir, 'prometheus')).mode & 0o777).toBe(0o700);
    const password = readFileSync(p.passwordFile, 'utf8').trim();
    expect(password.length).toBeGreaterThanOrEqual(16);
    for (const f of ['web.yml', 'prometheus.yml', 'targets-pods.json', 'targets-envoy.json']) expect(readFileSync(join(stateDir, 'prometheus', f), 'utf8')).not.toContain(password);
  });

  it('refuses requests without the password or with a wrong one (401), answers with it', async () => {
    const p = state.prometheus!;
    const api = `${p.url}api/v1/targets`;
    expect((await fetch(api)).status).toBe(401);
    expect((await fetch(`${p.url}-/ready`)).status).toBe(401);
    expect((await fetch(api, { headers: { authorization: `Basic ${Buffer.from('weft:not-the-password').toString('base64')}` } })).status).toBe(401);
    const pw = readFileSync(p.passwordFile, 'utf8').trim();
    expect((await fetch(api, { headers: { authorization: `Basic ${Buffer.from(`weft:${pw}`).toString('base64')}` } })).status).toBe(200);
  });

  it('scrapes every sidecar and the gateway on 15020 and 15090, and weftd, each labelled as kubernetes_sd would; all up', async () => {
    const targets = await prometheusTargets(state.prometheus!);
    const proxies = [...state.proxies, state.ingress!];
    expect(proxies).toHaveLength(7);
    const expected = [
      ...proxies.flatMap((x) => [`kubernetes-pods http://${x.address}:15020/stats/prometheus`, `envoy-stats http://${x.address}:15090/stats/prometheus`]),
      `kubernetes-pods http://127.0.0.1:${state.weftd!.monitoringPort}/metrics`,
      `prometheus http://127.0.0.1:${state.prometheus!.port}/prometheus/metrics`,
    ].sort();
    expect(targets.map((t) => `${t.scrapePool} ${t.scrapeUrl}`).sort()).toEqual(expected);
    for (const t of targets) expect(t.health, `${t.scrapeUrl}: ${t.lastError}`).toBe('up');
    const reviews = targets.find((t) => t.scrapeUrl === `http://${net}.14:15020/stats/prometheus`);
    expect(reviews?.labels).toMatchObject({ job: 'kubernetes-pods', namespace: 'default', pod: 'reviews-v2', app: 'reviews', version: 'v2' });
    expect(targets.find((t) => t.labels.pod === 'istio-ingressgateway' && t.scrapePool === 'envoy-stats')?.labels).toMatchObject({ namespace: 'istio-system', app: 'istio-ingressgateway', istio: 'ingressgateway' });
    expect(targets.find((t) => t.scrapeUrl.endsWith('/metrics') && t.scrapePool === 'kubernetes-pods')?.labels).toMatchObject({ namespace: 'istio-system', pod: 'weftd', app: 'weftd' });
  });

  it('counts product page loads in istio_requests_total once each (15020 and 15090 are not summed twice); weftd series are there', async () => {
    const promql = 'sum(istio_requests_total{reporter="destination",destination_workload="productpage-v1",response_code="200"})';
    const value = async () => (await prometheusQuery(state, promql))[0]?.value ?? 0;
    // Settled: two scrapes in a row give the same count.
    let previous = -1;
    const before = await eventually(
      async () => {
        const v = await value();
        const settled = v === previous;
        previous = v;
        return settled ? v : undefined;
      },
      (v) => v !== undefined,
      20_000,
      () => `${promql} did not settle`,
    );
    const k = 8;
    for (let i = 0; i < k; i++) expect((await fetch(mesh!.url, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    const after = await eventually(value, (v) => v! - before! >= k, 20_000, (v) => `${promql}: ${before} before ${k} page loads, ${v} after`);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await value()) - before!).toBe(k);
    expect(after! - before!).toBe(k);
    const series = await prometheusQuery(state, 'istio_requests_total{reporter="destination",destination_workload="productpage-v1"}');
    expect(series.length).toBeGreaterThan(0);
    for (const s of series) expect(s.metric).toMatchObject({ job: 'kubernetes-pods', namespace: 'default', pod: 'productpage-v1', app: 'productpage', version: 'v1' });
    expect((await prometheusQuery(state, 'count by (job) (envoy_cluster_upstream_rq_total)')).map((s) => s.metric.job)).toEqual(['envoy-stats']);
    expect((await prometheusQuery(state, 'sum(pilot_xds_connected{job="kubernetes-pods",pod="weftd"})'))[0]?.value).toBeGreaterThan(0);
    console.log(`prometheus addon: ${promql}: ${before} -> ${after} after ${k} page loads`);
  });

  it('stop leaves no prometheus (nor any other) process and frees its port', async () => {
    const p = state.prometheus!;
    await mesh!.stop(5000);
    mesh = undefined;
    expect(meshProcesses()).toEqual([]);
    expect(() => readFileSync(`/proc/${p.pid}/stat`)).toThrow();
    expect(await canBind('127.0.0.1', p.port)).toBe(true);
  });
});
