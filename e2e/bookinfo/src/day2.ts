// Day-2 operations on BookInfo in a cluster, each during a bounded loop of product-page loads
// through the ingress gateway that counts every answer (issue 13, item 4):
//   - `kubectl rollout restart deployment/reviews-v2` while every page goes through reviews-v2:
//     the old pod's proxy drains on SIGTERM (keeps serving while callers still have its endpoint),
//     weftd drops the terminating endpoint from EDS, the callers' retries cover the rest;
//   - the weftd pod deleted: proxies keep their config, the Deployment's new pod comes up and every
//     proxy reconnects and ACKs it (/debug/syncz of the new pod);
//   - pods whose sidecar cannot become ready (its xDS server unreachable): not Ready, sent to the
//     callers as UNHEALTHY, and no request of the loop reaches them while the ready pod serves all;
//   - reviews-v2 moved to Kubernetes native sidecars, then restarted: the old pod's preStop hook
//     (`weft-proxy drain`) starts the drain, the proxy outlives the application.
// A page counts as failed when it does not come back 200 with the reviews of a version (the
// product page answers 200 with "reviews unavailable" when its call to reviews fails).
import { nodeId, nodeIdWorkload } from '@weft/mesh';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import type { KubeDriver, RunResult } from './kube-driver.ts';
import { readPage, type ReviewsShown } from './page.ts';
import { networking, suiteConfig } from './reference.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One page load of the loop. */
export interface PageOutcome {
  /** Milliseconds since the loop started, when the request was sent. */
  at: number;
  status?: number;
  shown?: ReviewsShown;
  /** "Reviews served by: <pod>": the pod's own name (reviews-v2-<hash>-<id>). */
  servedBy?: string;
  /** Why there was no answer (reset, refused, timed out). */
  error?: string;
}

const versions: readonly ReviewsShown[] = ['v1', 'v2', 'v3'];

/** Why a page load failed, or undefined when the page came back whole. */
export function pageFailure(o: PageOutcome): string | undefined {
  if (o.error !== undefined) return o.error;
  if (o.status !== 200) return `status ${o.status}`;
  if (!o.shown || !versions.includes(o.shown)) return `reviews part: ${o.shown}`;
  return undefined;
}

export interface LoopCounts {
  requests: number;
  failed: number;
  seconds: number;
  byStatus: Record<string, number>;
  /** What the reviews part showed (v1, v2, v3, reviews-unavailable, ...). */
  byReviews: Record<string, number>;
  /** "Reviews served by: <pod>". */
  byPod: Record<string, number>;
  /** The first failures, with when they happened. */
  failures: string[];
}

function tally(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

export function countOutcomes(outcomes: readonly PageOutcome[], seconds: number): LoopCounts {
  const c: LoopCounts = { requests: outcomes.length, failed: 0, seconds, byStatus: {}, byReviews: {}, byPod: {}, failures: [] };
  for (const o of outcomes) {
    tally(c.byStatus, o.status === undefined ? 'no answer' : String(o.status));
    if (o.shown) tally(c.byReviews, o.shown);
    if (o.servedBy) tally(c.byPod, o.servedBy);
    const why = pageFailure(o);
    if (why === undefined) continue;
    c.failed++;
    if (c.failures.length < 10) c.failures.push(`+${(o.at / 1000).toFixed(2)} s: ${why}`);
  }
  return c;
}

const list = (r: Record<string, number>) =>
  Object.entries(r)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

export function formatCounts(title: string, c: LoopCounts): string {
  return [
    `${title}: ${c.requests} requests in ${c.seconds.toFixed(1)} s, ${c.failed} failed`,
    `  by status: ${list(c.byStatus)}`,
    `  by reviews shown: ${list(c.byReviews)}`,
    `  by reviews pod: ${list(c.byPod)}`,
    ...(c.failures.length > 0 ? [`  failures: ${c.failures.join('; ')}`] : []),
  ].join('\n');
}

/**
 * Product-page loads through the ingress gateway, `concurrency` at a time, until stop() or a bound
 * (`maxRequests`, `maxMs`) is reached: a failing mesh cannot make the loop run on for ever.
 */
export class PageLoop {
  readonly outcomes: PageOutcome[] = [];
  readonly #url: string;
  readonly #o: { concurrency: number; maxRequests: number; maxMs: number };
  #stopping = false;
  #started = 0;
  #workers: Promise<void>[] = [];

  constructor(url: string, o: { concurrency?: number; maxRequests?: number; maxMs?: number } = {}) {
    this.#url = url;
    this.#o = { concurrency: o.concurrency ?? 3, maxRequests: o.maxRequests ?? 20_000, maxMs: o.maxMs ?? 600_000 };
  }

  start(): this {
    this.#started = performance.now();
    this.#workers = Array.from({ length: this.#o.concurrency }, () => this.#work());
    return this;
  }

  get elapsedMs(): number {
    return performance.now() - this.#started;
  }

  /** Pages that came back whole so far. */
  get ok(): number {
    return this.outcomes.filter((o) => pageFailure(o) === undefined).length;
  }

  async #work(): Promise<void> {
    while (!this.#stopping && this.outcomes.length < this.#o.maxRequests && this.elapsedMs < this.#o.maxMs) {
      const at = this.elapsedMs;
      try {
        const r = await fetch(this.#url, { signal: AbortSignal.timeout(30_000) });
        const page = readPage(r.status, await r.text(), this.elapsedMs - at);
        const pod = page.servedByPod ?? page.servedBy;
        this.outcomes.push({ at, status: r.status, shown: page.shown, ...(pod !== undefined ? { servedBy: pod } : {}) });
      } catch (e) {
        const cause = (e as Error).cause;
        this.outcomes.push({ at, error: cause instanceof Error ? `${(e as Error).message}: ${cause.message}` : (e as Error).message });
      }
    }
  }

  /** Resolves once `check` holds for the outcomes so far; throws after `ms`. */
  async until(what: string, check: (loop: PageLoop) => boolean, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check(this)) {
      if (Date.now() > deadline) throw new Error(`page loop: ${what} not within ${ms / 1000} s (${this.outcomes.length} requests, ${this.ok} whole)`);
      await sleep(100);
    }
  }

  async stop(): Promise<LoopCounts> {
    this.#stopping = true;
    await Promise.all(this.#workers);
    return countOutcomes(this.outcomes, this.elapsedMs / 1000);
  }
}

/** What a KubeDriver's kubectl gave, or a thrown error naming the command. */
async function ok(r: Promise<RunResult>, what: string): Promise<string> {
  const x = await r;
  if (x.code !== 0) throw new Error(`${what} exited ${x.code}: ${x.stderr.trim() || x.stdout.trim()}`);
  return x.stdout;
}

interface SynczEntry {
  id: string;
  connectedAt: string;
  authenticated: boolean;
  types: Record<string, { status: string }>;
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string; annotations?: Record<string, string> };
  spec: { containers: { name: string; readinessProbe?: { httpGet?: { path?: string; port?: number | string } } }[] };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; ready: boolean }[] };
}

const systemNamespace = 'istio-system';

/** The day-2 tests, on a running kube driver (BookInfo at its defaults: no VirtualService, no DestinationRule). */
export function day2Scenarios(driver: () => KubeDriver): void {
  const d = () => driver();
  const kubectl = (...args: string[]) => ok(d().kubectl(args), `kubectl ${args.join(' ')}`);
  const ns = () => d().namespace;
  const weftdPods = async () => {
    const pods = JSON.parse(await kubectl('get', 'pods', '-n', systemNamespace, '-l', 'app=weftd', '-o', 'json')) as { items: PodJson[] };
    return pods.items;
  };
  const syncz = async (pod: string) => JSON.parse(await kubectl('get', '--raw', `/api/v1/namespaces/${systemNamespace}/pods/${pod}:15014/proxy/debug/syncz`)) as SynczEntry[];
  /** Node ids of BookInfo's sidecars as they are now (sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local). */
  const bookinfoProxies = async () => {
    const out: string[] = [];
    for (const w of ['details-v1', 'ratings-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'productpage-v1']) {
      for (const p of await d().podsOf(w)) out.push(nodeId({ type: 'sidecar', ip: p.ip, pod: p.name, namespace: ns() }));
    }
    return out;
  };
  const allAcked = (e: SynczEntry | undefined) => e !== undefined && Object.keys(e.types).length > 0 && Object.values(e.types).every((t) => t.status === 'ACKED');
  let vsFile = '';

  beforeAll(async () => {
    // Every page through reviews-v2: its rollout then carries all the traffic.
    vsFile = join(suiteConfig, 'virtual-service-reviews-v2.yaml');
    await d().apply([networking('destination-rule-all.yaml')]);
    await d().apply([vsFile]);
  }, 180_000);

  // No afterAll putting the defaults back: the driver's own namespace, with this config, goes at stop().

  /**
   * Replaces reviews-v2's pod by `change` (a rollout) while the loop runs: every page goes through
   * reviews-v2, so a request its old pod drops while terminating is a failed page.
   */
  /** `maxFailedShare`: the share of pages allowed to fail (0: none). */
  const rolloutDuringLoop = async (title: string, change: () => Promise<unknown>, maxFailedShare = 0) => {
    const old = await d().podsOf('reviews-v2');
    expect(old.length).toBe(1);
    const loop = new PageLoop(d().productpageUrl, { concurrency: 3, maxMs: 300_000 }).start();
    try {
      await loop.until('20 whole pages before the rollout', (l) => l.ok >= 20);
      const changeAt = loop.elapsedMs;
      await change();
      await kubectl('rollout', 'status', '-n', ns(), 'deployment/reviews-v2', '--timeout=240s');
      const readyAt = loop.elapsedMs;
      // the old pod drains, then goes
      await kubectl('wait', '-n', ns(), '--for=delete', `pod/${old[0]!.name}`, '--timeout=120s');
      const goneAt = loop.elapsedMs;
      const fresh = await d().podsOf('reviews-v2');
      expect(fresh.map((p) => p.name)).not.toContain(old[0]!.name);
      await loop.until('10 pages from the new reviews-v2 pod', (l) => l.outcomes.filter((o) => o.servedBy === fresh[0]!.name).length >= 10);
      await sleep(2000);
      const counts = await loop.stop();
      const lastOld = Math.max(...loop.outcomes.filter((o) => o.servedBy === old[0]!.name).map((o) => o.at));
      console.log(
        `${formatCounts(`${title} (${old[0]!.name} -> ${fresh.map((p) => p.name).join(', ')})`, counts)}\n` +
          `  timeline: rollout started at +${(changeAt / 1000).toFixed(1)} s, complete at +${(readyAt / 1000).toFixed(1)} s, old pod gone at +${(goneAt / 1000).toFixed(1)} s, last page from it sent at +${(lastOld / 1000).toFixed(1)} s`,
      );
      if (counts.failed > 0) {
        // what the caller saw: productpage logs each failed call to reviews (its status, or the error)
        const log = await d().kubectl(['logs', '-n', ns(), 'deployment/productpage-v1', '-c', 'productpage', '--since=5m']);
        const calls = log.stdout.split('\n').filter((l) => l.includes('call failed') && l.includes('reviews'));
        console.log(`productpage's failed calls to reviews (${calls.length}):\n${calls.slice(-10).join('\n')}`);
      }
      if (maxFailedShare === 0) {
        expect(counts.failed, counts.failures.join('\n')).toBe(0);
        expect(counts.byReviews).toEqual({ v2: counts.requests });
      } else {
        // The native-sidecar loss (below) is confined to the switchover: every failed page was sent
        // between 1 s before the old pod's last page and 3 s after it. How many pages that is follows the
        // loop's rate and the machine's load (a clean-clone CI run with another suite beside it: 20 of 520
        // pages, 1.8 s after the last old page; alone: 2-3 of ~1,000 within 0.3 s), so the share is only a
        // ceiling against an outage, and the window is what is held.
        const failedAt = loop.outcomes.filter((o) => pageFailure(o) !== undefined).map((o) => o.at);
        const outside = failedAt.filter((at) => at < lastOld - 1000 || at > lastOld + 3000);
        if (failedAt.length > 0) console.log(`  failed pages sent from +${((Math.min(...failedAt) - lastOld) / 1000).toFixed(2)} s to +${((Math.max(...failedAt) - lastOld) / 1000).toFixed(2)} s after the old pod's last page`);
        expect(outside.map((at) => `+${(at / 1000).toFixed(2)} s`), `failed pages outside the switchover (old pod's last page at +${(lastOld / 1000).toFixed(2)} s)`).toEqual([]);
        expect(counts.failed, counts.failures.join('\n')).toBeLessThan(counts.requests * maxFailedShare);
        expect(counts.byReviews.v2).toBe(counts.requests - counts.failed);
      }
      expect(counts.byPod[old[0]!.name] ?? 0).toBeGreaterThan(0);
      expect(counts.byPod[fresh[0]!.name] ?? 0).toBeGreaterThanOrEqual(10);
      return { old: old[0]!.name, fresh: fresh[0]!.name };
    } finally {
      await loop.stop();
    }
  };

  it('kubectl rollout restart deployment/reviews-v2 during a bounded request loop: no request fails', async () => {
    await rolloutDuringLoop('rollout restart deployment/reviews-v2', () => kubectl('rollout', 'restart', '-n', ns(), 'deployment/reviews-v2'));
  }, 420_000);

  it('deleting the weftd pod during a bounded request loop: no request fails; the new pod comes up and every proxy ACKs it', async () => {
    const [old, ...others] = (await weftdPods()).filter((p) => !p.metadata.deletionTimestamp);
    expect(old, 'a running weftd pod').toBeDefined();
    expect(others).toEqual([]);
    const expected = [...(await bookinfoProxies())];
    const loop = new PageLoop(d().productpageUrl, { concurrency: 3, maxMs: 300_000 }).start();
    try {
      await loop.until('20 whole pages before the deletion', (l) => l.ok >= 20);
      const deletedAt = new Date();
      const deleteAt = loop.elapsedMs;
      await kubectl('delete', 'pod', '-n', systemNamespace, old!.metadata.name, '--wait=false');
      await kubectl('wait', '-n', systemNamespace, '--for=delete', `pod/${old!.metadata.name}`, '--timeout=120s');
      const goneAt = loop.elapsedMs;
      await kubectl('rollout', 'status', '-n', systemNamespace, 'deployment/weftd', '--timeout=180s');
      const fresh = (await weftdPods()).filter((p) => !p.metadata.deletionTimestamp);
      expect(fresh.length).toBe(1);
      const pod = fresh[0]!.metadata.name;
      expect(pod).not.toBe(old!.metadata.name);
      const readyAt = loop.elapsedMs;
      // Every BookInfo sidecar and the gateway reconnect to the new pod and ACK every type it sent.
      // How long that takes varies (43-77 s on a quiet kube-local, over 120 s for some proxies under
      // CI's parallel suites: a known gap, in the README); the bound is for "they do come back".
      let entries: SynczEntry[] = [];
      const deadline = Date.now() + 240_000;
      const behind = () => [...expected.filter((id) => !allAcked(entries.find((e) => e.id === id))), ...(entries.some((e) => e.id.startsWith('router~') && allAcked(e)) ? [] : ['the ingress gateway'])];
      for (;;) {
        entries = await syncz(pod);
        if (behind().length === 0) break;
        if (Date.now() > deadline) {
          const state = (id: string) => {
            const e = entries.find((x) => x.id === id);
            return e ? `${id} (${Object.entries(e.types).map(([t, s]) => `${t.split('.').pop()} ${s.status}`).join(', ')})` : `${id} (not connected)`;
          };
          throw new Error(`not every proxy ACKed the new weftd pod ${pod} within 240 s; behind: ${behind().map(state).join('; ')}`);
        }
        await sleep(500);
      }
      const syncedAt = loop.elapsedMs;
      await sleep(3000);
      const counts = await loop.stop();
      console.log(
        `${formatCounts(`weftd pod ${old!.metadata.name} deleted, ${pod} took over`, counts)}\n` +
          `  timeline: deleted at +${(deleteAt / 1000).toFixed(1)} s, old pod gone at +${(goneAt / 1000).toFixed(1)} s, new pod ready at +${(readyAt / 1000).toFixed(1)} s, ` +
          `every proxy ACKed it at +${(syncedAt / 1000).toFixed(1)} s\n` +
          `  /debug/syncz of ${pod}: ${entries.length} proxies, ${entries.filter(allAcked).length} with every type ACKED: ${entries.map((e) => nodeIdWorkload(e.id)).join(', ')}`,
      );
      expect(counts.failed, counts.failures.join('\n')).toBe(0);
      for (const id of expected) {
        const e = entries.find((x) => x.id === id)!;
        expect(e.authenticated, id).toBe(true);
        expect(new Date(e.connectedAt).getTime(), `${id} connected to the new pod after the deletion`).toBeGreaterThanOrEqual(deletedAt.getTime() - 1000);
      }
      // the new pod serves config: a change reaches the proxies (apply returns once every proxy ACKed it)
      await d().apply([networking('virtual-service-all-v1.yaml')]);
      const page = await fetch(d().productpageUrl).then(async (r) => readPage(r.status, await r.text(), 0));
      expect(page.shown).toBe('v1');
      await d().delete([networking('virtual-service-all-v1.yaml')]);
      await d().apply([vsFile]);
    } finally {
      await loop.stop();
    }
  }, 420_000);

  it('pods whose sidecar cannot become ready get no traffic: not Ready, UNHEALTHY in the callers’ EDS, no request of the loop; the ready pod serves every page', async () => {
    const deployment = JSON.parse(await kubectl('get', 'deployment', '-n', ns(), 'reviews-v2', '-o', 'json')) as {
      spec: { template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string; containers: Record<string, unknown>[]; volumes?: unknown[] } } };
    };
    const template = deployment.spec.template;
    const names = ['reviews-v2-unready-1', 'reviews-v2-unready-2'];
    const manifest = names.map((name) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: ns(),
        labels: { ...template.metadata.labels, 'weft-test': 'unready' },
        // Istio's ProxyConfig: this pod's proxy asks an xDS server that does not exist, so it never gets config
        annotations: { 'proxy.istio.io/config': '{"discoveryAddress": "weftd-unreachable.istio-system.svc:15012"}' },
      },
      spec: {
        serviceAccountName: template.spec.serviceAccountName,
        terminationGracePeriodSeconds: 2,
        // the application is ready (its probe answers); only the sidecar is not
        containers: template.spec.containers.map((c) => ({ ...c, readinessProbe: { httpGet: { path: '/health', port: 9080 }, periodSeconds: 2 } })),
        volumes: template.spec.volumes ?? [],
      },
    }));
    const file = join(tmpdir(), `weft-day2-unready-${ns()}.json`);
    await writeFile(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifest }));
    try {
      await kubectl('apply', '-f', file);
      // the app container becomes ready through the proxy's 15020 /app-health; istio-proxy does not
      const deadline = Date.now() + 120_000;
      let pods: PodJson[] = [];
      const state = (p: PodJson) => Object.fromEntries((p.status.containerStatuses ?? []).map((c) => [c.name, c.ready]));
      for (;;) {
        pods = (JSON.parse(await kubectl('get', 'pods', '-n', ns(), '-l', 'weft-test=unready', '-o', 'json')) as { items: PodJson[] }).items;
        if (pods.length === 2 && pods.every((p) => p.status.podIP && state(p).reviews === true)) break;
        if (Date.now() > deadline) throw new Error(`the unready pods' applications are not ready within 120 s: ${JSON.stringify(pods.map((p) => [p.metadata.name, p.status.phase, state(p)]))}`);
        await sleep(1000);
      }
      for (const p of pods) {
        expect(state(p), p.metadata.name).toEqual({ reviews: true, 'istio-proxy': false });
        expect(p.status.conditions?.find((c) => c.type === 'Ready')?.status, p.metadata.name).toBe('False');
        expect(p.spec.containers.find((c) => c.name === 'reviews')?.readinessProbe?.httpGet).toEqual({ path: '/app-health/reviews/readyz', port: 15020, scheme: 'HTTP' });
      }
      const unreadyIps = pods.map((p) => p.status.podIP!);
      const ready = await d().podsOf('reviews-v2');
      const readyPod = ready.find((p) => !names.includes(p.name))!;
      // productpage's sidecar has them, as weftd sent them: UNHEALTHY in subset v2 beside the ready pod
      const subset = `outbound|9080|v2|reviews.${ns()}.svc.cluster.local`;
      const endpoints = async () => {
        const r = await d().weftctl(['proxy-config', 'endpoints', 'productpage-v1', '-n', ns(), '-o', 'json']);
        if (r.code !== 0) throw new Error(`weftctl proxy-config endpoints failed (${r.code}): ${r.stderr}`);
        const stats = new Map<string, Record<string, string>>();
        for (const line of JSON.parse(r.stdout) as string[]) {
          const [cluster, host, key, value] = line.split('::');
          if (cluster !== subset || !host || !key) continue;
          const ip = host.slice(0, host.lastIndexOf(':'));
          stats.set(ip, { ...stats.get(ip), [key]: value ?? '' });
        }
        return stats;
      };
      const epDeadline = Date.now() + 60_000;
      let before = await endpoints();
      while (!unreadyIps.every((ip) => before.get(ip)?.health_flags === '/failed_eds_health')) {
        if (Date.now() > epDeadline) throw new Error(`productpage's sidecar does not list the unready pods as UNHEALTHY in ${subset}: ${JSON.stringify([...before])}`);
        await sleep(1000);
        before = await endpoints();
      }
      expect(before.get(readyPod.ip)?.health_flags).toBe('healthy');

      const loop = new PageLoop(d().productpageUrl, { concurrency: 3, maxRequests: 90, maxMs: 180_000 }).start();
      await loop.until('90 pages', (l) => l.outcomes.length >= 90, 180_000);
      const counts = await loop.stop();
      const after = await endpoints();
      const sent = (ip: string) => Number(after.get(ip)?.rq_total ?? 0) - Number(before.get(ip)?.rq_total ?? 0);
      console.log(
        `${formatCounts(`two reviews-v2 pods with unready sidecars (${pods.map((p) => `${p.metadata.name} ${p.status.podIP}`).join(', ')}) beside ${readyPod.name}`, counts)}\n` +
          `  requests from productpage's sidecar in ${subset}: ${readyPod.name} ${sent(readyPod.ip)}, ${pods.map((p) => `${p.metadata.name} ${sent(p.status.podIP!)}`).join(', ')}`,
      );
      expect(counts.failed, counts.failures.join('\n')).toBe(0);
      expect(counts.byPod).toEqual({ [readyPod.name]: counts.requests });
      for (const ip of unreadyIps) expect(sent(ip), `requests sent to ${ip}`).toBe(0);
      expect(sent(readyPod.ip)).toBeGreaterThanOrEqual(90);
    } finally {
      await d().kubectl(['delete', '-f', file, '--ignore-not-found', '--wait=true', '--timeout=60s']);
      await rm(file, { force: true });
    }
  }, 420_000);

  // Native sidecars: each rollout to or of a native-sidecar pod loses 2-3 pages (0.2-0.5%), all
  // within ~300 ms of the moment the new pod is Ready and the old one starts terminating:
  // productpage's two attempts both get 503 after the caller's retries (URX). Classic sidecars
  // lose none in the same loop. Known and open (issue note); this test holds the rest and holds
  // the loss to the switchover (within 3 s of the old pod's last page, under 5% of the pages).
  it('reviews-v2 moved to native sidecars (sidecar.istio.io/nativeSidecar), then restarted: istio-proxy is a native sidecar, the old pods’ preStop drain hooks succeed, pages fail only at the switchover (counts printed)', async () => {
    const toNative = await rolloutDuringLoop(
      'reviews-v2 to a native sidecar',
      () => kubectl('patch', '-n', ns(), 'deployment/reviews-v2', '--type', 'merge', '-p', JSON.stringify({ spec: { template: { metadata: { annotations: { 'sidecar.istio.io/nativeSidecar': 'true' } } } } })),
      0.05,
    );
    const pod = JSON.parse(await kubectl('get', 'pod', '-n', ns(), toNative.fresh, '-o', 'json')) as {
      spec: { initContainers: { name: string; restartPolicy?: string; lifecycle?: unknown }[]; containers: { name: string }[] };
    };
    expect(pod.spec.initContainers.map((c) => [c.name, c.restartPolicy ?? ''])).toEqual([
      ['istio-init', ''],
      ['istio-proxy', 'Always'],
    ]);
    expect(pod.spec.initContainers[1]!.lifecycle).toEqual({ preStop: { exec: { command: ['weft-proxy', 'drain'] } } });
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['reviews']);
    const restart = await rolloutDuringLoop('rollout restart of native-sidecar reviews-v2', () => kubectl('rollout', 'restart', '-n', ns(), 'deployment/reviews-v2'), 0.05);
    // the kubelet reports a preStop hook that failed as an event on the pod
    const failedHooks = await kubectl('get', 'events', '-n', ns(), '--field-selector', `involvedObject.name=${restart.old},reason=FailedPreStopHook`, '-o', 'name');
    expect(failedHooks.trim()).toBe('');
  }, 840_000);
}
