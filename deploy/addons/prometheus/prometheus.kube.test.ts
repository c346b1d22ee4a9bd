// The Prometheus addon on the shared cluster, from the weft/prometheus image (`npm run images --
// prometheus`, a tag of this test's own, removed after): kubernetes_sd finds an injected pod through
// the prometheus.io annotations the injector wrote (the merged 15020 endpoint), the requests made
// through its sidecar show in istio_requests_total, and weftd's pilot metrics are scraped on 15014.
// weftd runs as a host process (--kubeconfig, discoverySelectors on this test's namespaces) on the
// node address behind a selector-less Service `weftd`, as apps/weftd's injected-pod test runs it.
// The addon's ClusterRole and ClusterRoleBinding are cluster-wide objects: the exclusive cluster lock.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployPrometheusAddon, holdClusterLock, hostWeftdManifests, kubeCluster, kubeLocalDir, kubectl, kubectlOk, kubectlPath, needsKube, noteSkip, type PrometheusAddon, ratingsManifests } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImages, repoRoot } from '../../images/build.ts';

const containerdSocket = join(kubeLocalDir(), 'run/containerd/containerd.sock');
const nodeAddress = '10.200.0.1';
const skip =
  needsKube() ??
  (kubectlPath() ? undefined : noteSkip('needs kubectl (on PATH, or kube-local’s)')) ??
  noteSkip(existsSync(containerdSocket) ? undefined : `needs kube-local's containerd (${containerdSocket}) to load the images`) ??
  noteSkip(spawnSync('ip', ['-4', 'addr', 'show']).stdout?.toString().includes(`inet ${nodeAddress}/`) ? undefined : `needs kube-local's node address ${nodeAddress} on this host`) ??
  noteSkip(spawnSync('go', ['version']).status === 0 || process.env.PROMETHEUS_BIN ? undefined : 'needs Go 1.26+ to build prometheus (deploy/images/prometheus.sh), or PROMETHEUS_BIN');
const suffix = randomBytes(3).toString('hex');
const scope = `weft-test-prometheus-${suffix}`;
const sysNs = `${scope}-sys`;
const appNs = `${scope}-app`;
const tag = `prometheus-${suffix}`;
const images = ['proxy', 'bookinfo', 'prometheus'];

const ctr = (...args: string[]) => spawnSync('ctr', ['--address', containerdSocket, '-n', 'k8s.io', ...args], { encoding: 'utf8' });

/**
 * `n` distinct ports free on `host` now: every one is held until all are found (ports taken one after
 * another can come back the same, which once gave weftd its CA and monitoring ports alike).
 */
async function freePorts(host: string, n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.on('error', reject);
          s.listen(0, host, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Polls `check` until it gives a value; throws naming `what` (and the last value seen) after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe.skipIf(skip !== undefined)('the Prometheus addon on the cluster', () => {
  let kubeconfig: string;
  let dir: string;
  let weftd: ChildProcess | undefined;
  let weftdLog = '';
  let monitoringPort: number;
  let prometheus: PrometheusAddon | undefined;
  let releaseLock: (() => Promise<void>) | undefined;
  let pod: { name: string; ip: string; annotations: Record<string, string> };
  const k = (args: readonly string[], input?: string) => kubectlOk(kubeconfig, args, input);

  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    dir = await mkdtemp(join(tmpdir(), 'weft-prometheus-addon-test-'));
    await buildImages({ outDir: dir, tag, only: images.map((i) => `weft/${i}`), log: (l) => console.error(`images: ${l}`) });
    for (const name of images) {
      const imported = ctr('images', 'import', join(dir, `${name}.tar`));
      if (imported.status !== 0) throw new Error(`ctr images import ${name}.tar: ${imported.stderr}`);
    }
    releaseLock = await holdClusterLock('exclusive');
    const meshConfig = join(dir, 'mesh.yaml');
    await writeFile(meshConfig, `discoverySelectors:\n- matchLabels: {weft-test: ${scope}}\n`);
    await k(['create', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${sysNs}, labels: {weft-test: ${scope}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ${appNs}, labels: {weft-test: ${scope}, istio-injection: enabled}}\n`);
    const ports = await freePorts(nodeAddress, 3);
    const [caPort, webhookPort] = [ports[0]!, ports[1]!];
    monitoringPort = ports[2]!;
    // weftd on the node address: pods reach its 15012 and Prometheus its 15014 there
    weftd = spawn(
      process.execPath,
      [
        join(repoRoot, 'apps/weftd/bin/weftd.js'),
        ...['--kubeconfig', kubeconfig, '--system-namespace', sysNs, '--mesh-config', meshConfig, '--listen-address', nodeAddress, '--xds-port', 'off'],
        ...['--ca-port', String(caPort), '--monitoring-port', String(monitoringPort), '--webhook-port', String(webhookPort)],
        ...['--injection-webhook', scope, '--validation-webhook', `${scope}-none`, '--proxy-image', `weft/proxy:${tag}`],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    weftd.stderr!.on('data', (b: Buffer) => {
      weftdLog = (weftdLog + b.toString()).slice(-200_000);
    });
    for (const end = Date.now() + 120_000; !weftdLog.includes('"msg":"weftd ready"'); await new Promise((r) => setTimeout(r, 100))) {
      if (weftd.exitCode !== null || Date.now() > end) throw new Error(`weftd did not get ready (exit ${weftd.exitCode}):\n${weftdLog.slice(-4000)}`);
    }
    // weftd.<ns>.svc: 15012 for the sidecar, 15014 (http-monitoring, the chart's port name) for Prometheus
    await k(['create', '-f', '-'], hostWeftdManifests({ systemNamespace: sysNs, scope, nodeAddress, caPort, webhookPort, monitoringPort }));
    await until('the caBundle set', async () => ((await k(['get', 'mutatingwebhookconfiguration', scope, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).length > 0 ? true : undefined));
    await k(['create', '-f', '-'], ratingsManifests(appNs, `weft/bookinfo:${tag}`));
    // the addon as users deploy it, in weftd's namespace (Istio's: istio-system), scraping every 2 s
    prometheus = await deployPrometheusAddon(kubeconfig, { namespace: sysNs, image: `weft/prometheus:${tag}`, nameSuffix: `-${suffix}`, scrapeInterval: '2s' });
    const name = await until('the ratings pod', async () => (await k(['get', 'pods', '-n', appNs, '-l', 'app=ratings', '-o', 'name'])).trim().replace('pod/', '') || undefined, 30_000);
    const ready = await kubectl(kubeconfig, ['wait', '-n', appNs, `pod/${name}`, '--for=condition=Ready', '--timeout=180s']);
    if (ready.code !== 0) throw new Error(`the ratings pod is not Ready: ${(await kubectl(kubeconfig, ['describe', '-n', appNs, `pod/${name}`])).stdout}`);
    const got = JSON.parse(await k(['get', '-n', appNs, `pod/${name}`, '-o', 'json'])) as { metadata: { annotations?: Record<string, string> }; status: { podIP: string } };
    pod = { name, ip: got.status.podIP, annotations: got.metadata.annotations ?? {} };
  }, 30 * 60_000);

  afterAll(async () => {
    await prometheus?.remove();
    if (kubeconfig) await kubectl(kubeconfig, ['delete', 'mutatingwebhookconfiguration', scope, '--ignore-not-found']).catch(() => {});
    if (weftd && weftd.exitCode === null) {
      const exited = new Promise((r) => weftd!.once('exit', r));
      weftd.kill('SIGTERM');
      const timer = setTimeout(() => weftd!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (kubeconfig) for (const ns of [appNs, sysNs]) await kubectl(kubeconfig, ['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']).catch(() => {});
    for (const name of images) ctr('images', 'rm', `docker.io/weft/${name}:${tag}`);
    if (dir) await rm(dir, { recursive: true, force: true });
    await releaseLock?.();
  }, 120_000);

  it('runs the weft/prometheus image: Prometheus 3 with Kubernetes discovery', async () => {
    const build = (await prometheus!.api('/api/v1/status/buildinfo')) as { version: string };
    expect(build.version).toMatch(/^3\.\d+\.\d+$/);
  });

  it('lists the injected pod, found by kubernetes_sd, at the port and path of the annotations the injector wrote', async () => {
    expect(pod.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus' });
    const target = await until(
      `an up target for ${appNs}/${pod.name} in kubernetes-pods`,
      async () => (await prometheus!.targets()).find((t) => t.scrapePool === 'kubernetes-pods' && t.labels.namespace === appNs && t.labels.pod === pod.name && t.health === 'up'),
      90_000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}; targets: ${JSON.stringify((await prometheus!.targets()).map((t) => [t.scrapePool, t.scrapeUrl, t.health, t.lastError]))}`);
    });
    expect(target.scrapeUrl).toBe(`http://${pod.ip}:15020/stats/prometheus`);
    expect(target.discoveredLabels).toMatchObject({ __meta_kubernetes_pod_annotation_prometheus_io_port: '15020', __meta_kubernetes_pod_annotation_prometheus_io_path: '/stats/prometheus' });
    // the pod's labels come along, as Istio's addon maps them
    expect(target.labels).toMatchObject({ app: 'ratings', version: 'v1' });
  });

  it('counts the requests made through the sidecar in istio_requests_total', async () => {
    const n = 7;
    // the ones this test makes: from ratings-v1 itself, through its sidecar, over mutual TLS
    const promql = `sum(istio_requests_total{namespace="${appNs}",reporter="destination",source_workload="ratings-v1",destination_workload="ratings-v1",response_code="200"})`;
    const before = (await prometheus!.value(promql)) ?? 0;
    const out = await k([
      'exec',
      '-n',
      appNs,
      pod.name,
      '-c',
      'ratings',
      '--',
      'node',
      '-e',
      `(async () => { for (let i = 0; i < ${n}; i++) { const r = await fetch('http://ratings.${appNs}:9080/ratings/0'); await r.text(); console.log(r.status); } })()`,
    ]);
    expect(out.trim().split('\n')).toEqual(Array(n).fill('200'));
    const after = await until(`istio_requests_total to reach ${before + n}`, async () => {
      const v = (await prometheus!.value(promql)) ?? 0;
      return v >= before + n ? v : undefined;
    });
    const series = await prometheus!.query(`istio_requests_total{namespace="${appNs}"}`);
    expect(after - before, JSON.stringify(series)).toBe(n);
  });

  it('scrapes weftd’s pilot metrics on 15014 through its Service', async () => {
    const target = await until('an up weftd target', async () => (await prometheus!.targets()).find((t) => t.scrapePool === 'weftd' && t.labels.namespace === sysNs && t.health === 'up'), 60_000);
    expect(target.scrapeUrl).toBe(`http://${nodeAddress}:${monitoringPort}/metrics`);
    // the ratings pod's sidecar is this weftd's one proxy
    expect(await until('pilot_xds_connected', () => prometheus!.value(`sum(pilot_xds_connected{job="weftd",namespace="${sysNs}"})`))).toBe(1);
    expect(await prometheus!.value(`sum(pilot_xds_pushes{job="weftd",namespace="${sysNs}"})`)).toBeGreaterThan(0);
  });
});
