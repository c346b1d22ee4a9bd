// The tutorial through the kube driver, on a real cluster ($KUBECONFIG, else kube-local): Weft
// installed with `weftctl install`, BookInfo in an injected namespace, every scenario of the suite
// unchanged; then `weftctl proxy-config listeners` through the cluster. Twice: on Weft's
// examples/bookinfo/platform/kube/bookinfo.yaml, then on Istio's own bookinfo.yaml with only its
// images mapped (examples/bookinfo/platform/istio-images). Weft is installed cluster-wide (webhooks
// with failurePolicy Fail, CRDs), so the whole file holds the exclusive cluster lock. Each phase's
// time is printed, and a summary at the end.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { holdClusterLock, needsKube, noteSkip } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookinfoDriver } from './driver.ts';
import { istioBookinfoYaml, istioImagesKustomization, type KubeDriver, kubeDriverSkipReason, type Phase, startKubeDriver } from './kube-driver.ts';
import { describeBookinfo } from './scenarios.ts';

const skip = needsKube() ?? noteSkip(kubeDriverSkipReason());
const istioSkip =
  skip ??
  noteSkip(existsSync(istioBookinfoYaml) ? undefined : `Istio's bookinfo.yaml is not in the reference data (${istioBookinfoYaml})`) ??
  noteSkip(existsSync(istioImagesKustomization) ? undefined : `no image mapping for Istio's bookinfo.yaml (${istioImagesKustomization})`);
/** Starting (images, install, BookInfo, every proxy ACKed) and stopping (namespace, uninstall) a cluster mesh. */
const hookTimeoutMs = 15 * 60_000;

const runs: { title: string; timings: Phase[]; suiteSeconds?: number }[] = [];

/** The scenarios' own checks of what only a cluster has: capture and its dispatch, seen through the cluster. */
function kubeExtras(driver: () => BookinfoDriver): void {
  const d = () => driver() as KubeDriver;
  it('weftctl proxy-config listeners through the cluster shows the original-destination dispatch of a captured pod', async () => {
    const table = await d().weftctl(['proxy-config', 'listeners', 'reviews-v2', '-n', d().namespace]);
    expect(table.code, table.stderr).toBe(0);
    console.log(`${d().name}: weftctl proxy-config listeners reviews-v2 -n ${d().namespace} --kubeconfig ...:\n${table.stdout.split('\n').slice(0, 12).join('\n')}`);
    // iptables sends every outbound connection to 15001 and every inbound one to 15006, which
    // dispatch on the connection's original destination
    expect(table.stdout).toMatch(/^virtualOutbound\s+0\.0\.0\.0\s+15001\s/m);
    expect(table.stdout).toMatch(/^virtualInbound\s+0\.0\.0\.0\s+15006\s+port 9080;.*Inline Route: inbound\|9080\|\|/m);
    // the reviews Service's ClusterIP gets a listener of its own (HTTP services by port: 0.0.0.0_9080)
    expect(table.stdout).toMatch(/^0\.0\.0\.0_9080\s+0\.0\.0\.0\s+9080\s+ALL\s+Route: 9080$/m);
    const json = await d().weftctl(['proxy-config', 'listeners', 'reviews-v2', '-n', d().namespace, '-o', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const listeners = (JSON.parse(json.stdout) as { dynamic_listeners: { name: string; active_state: { listener: { use_original_dst?: { value: boolean } } } }[] }).dynamic_listeners;
    expect(listeners.find((l) => l.name === 'virtualOutbound')?.active_state.listener.use_original_dst).toEqual({ value: true });
    // the pod's capture rules, as istio-init left them: the init container ran weft-iptables with Istio's arguments
    const pod = (await d().podsOf('reviews-v2'))[0]!;
    const init = await d().kubectl(['get', 'pod', '-n', d().namespace, pod.name, '-o', 'jsonpath={.spec.initContainers[0].name} {.status.initContainerStatuses[0].state.terminated.exitCode}']);
    expect(init.stdout).toBe('istio-init 0');
  });
  it('weftctl dashboard --kubeconfig runs the dashboard here against the cluster: weftd and the Prometheus addon through port-forwards, the graph and the proxies from them, Ctrl-C ends it', async () => {
    const bin = fileURLToPath(new URL('../../../apps/weftctl/bin/weftctl.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'dashboard', 'weft', '--kubeconfig', d().kubeconfig], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await until(() => /^http:\/\/127\.0\.0\.1:\d+\/\S*$/m.exec(out)?.[0], 60_000, () => `no URL from weftctl dashboard; stderr:\n${err}`);
      const base = url.replace(/\/$/, '');
      type Sources = { sources: { weftd: { ok: boolean; error?: string }; prometheus: { ok: boolean; error?: string } } };
      const status = await until(
        async () => {
          const s = (await (await fetch(`${base}/api/status`)).json()) as Sources;
          return s.sources.weftd.ok && s.sources.prometheus.ok ? s : undefined;
        },
        60_000,
        () => `the dashboard did not reach weftd and Prometheus; stderr:\n${err}`,
      );
      expect(status.sources.weftd.ok).toBe(true);
      // the scenarios sent traffic through productpage to reviews: the graph has that edge, from the addon's Prometheus
      const graph = await until(
        async () => {
          const g = (await (await fetch(`${base}/api/graph?window=5m`)).json()) as { edges: { source: string; target: string; rps: number }[] };
          return g.edges.some((e) => e.source.includes('productpage') && e.target.includes('reviews') && e.rps > 0) ? g : undefined;
        },
        90_000,
        () => 'no productpage -> reviews edge in /api/graph',
      );
      console.log(`${d().name}: weftctl dashboard --kubeconfig: ${graph.edges.length} edges (${graph.edges.map((e) => `${e.source} -> ${e.target}`).join(', ')})`);
      const proxies = (await (await fetch(`${base}/api/proxies`)).json()) as { proxies: { id: string; types: Record<string, { status: string }> }[] };
      expect(proxies.proxies.some((p) => p.id.includes(d().namespace) && Object.values(p.types).every((t) => t.status === 'ACKED'))).toBe(true);
      // why, from productpage's proxy on the cluster (its admin port over a port-forward): the tutorial's rules are gone, so reviews' plain cluster
      const why = (await (await fetch(`${base}/api/why?source=${d().namespace}/productpage-v1&authority=reviews:9080&path=/reviews/0&method=GET`)).json()) as { cluster?: string; error?: string };
      expect(why.error).toBeUndefined();
      expect(why.cluster).toBe(`outbound|9080||reviews.${d().namespace}.svc.cluster.local`);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
  it('timings', () => {
    runs.at(-1)!.suiteSeconds = (Date.now() - suiteStart) / 1000;
  });
}

let suiteStart = 0;

/** Polls `check` until it gives a value; throws with `why()` after `ms`. */
async function until<T>(check: () => T | undefined | Promise<T | undefined>, ms: number, why: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve()
      .then(check)
      .catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${why()} (after ${ms} ms)`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe.skipIf(skip !== undefined)('BookInfo tutorial, kube driver (a Kubernetes cluster through its kubeconfig)', () => {
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await holdClusterLock('exclusive');
  }, 60 * 60_000);
  afterAll(async () => {
    await release?.();
    for (const r of runs) {
      const total = r.timings.reduce((s, p) => s + p.seconds, 0) + (r.suiteSeconds ?? 0);
      console.log(`${r.title}: ${r.timings.map((p) => `${p.phase} ${p.seconds.toFixed(1)} s`).join(', ')}${r.suiteSeconds !== undefined ? `, scenarios ${r.suiteSeconds.toFixed(1)} s` : ''}; ${total.toFixed(1)} s in all`);
    }
  });

  for (const bookinfo of ['weft', 'istio'] as const) {
    const title = bookinfo === 'weft' ? "Weft's examples/bookinfo/platform/kube/bookinfo.yaml" : "Istio's samples/bookinfo/platform/kube/bookinfo.yaml, images mapped by istio-images";
    describeBookinfo(
      title,
      bookinfo === 'weft' ? undefined : istioSkip,
      async () => {
        const driver = await startKubeDriver({ bookinfo });
        runs.push({ title, timings: driver.timings });
        suiteStart = Date.now();
        return driver;
      },
      kubeExtras,
      hookTimeoutMs,
    );
  }
});
