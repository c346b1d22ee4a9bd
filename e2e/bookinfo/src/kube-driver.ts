// The kube driver: BookInfo on a real Kubernetes cluster, reached only through a kubeconfig
// ($KUBECONFIG when set, else kube-local brought up by @weft/testing's kubeCluster()), so the same
// code runs against kube-local here and against kind or EKS (README: "kube driver").
//
// start, each phase timed:
//   1. images: deploy/images/build.ts (what `npm run images` runs) into a temporary directory, imported
//      into kube-local's containerd with deploy/kube-local/image.sh --load, with weft/prometheus (a
//      cluster that pulls nothing); on another cluster the user loads dist/images/*.tar first
//      (`kind load image-archive`), the driver imports nothing and the addon pulls prom/prometheus;
//   2. the OTLP receiver on the host address pods reach (hostAddress below), then `weftctl install`
//      with a MeshConfig that traces every request to it (a leftover install is uninstalled first);
//   3. a namespace `weft-test-bookinfo-<id>` labelled istio-injection=enabled; BookInfo
//      (examples/bookinfo/platform/kube/bookinfo.yaml, or Istio's own bookinfo.yaml through the
//      kustomize image mapping of examples/bookinfo/platform/istio-images) with kubectl apply; Istio's
//      bookinfo-gateway.yaml unchanged with `weftctl apply --kubeconfig`; a client pod without a sidecar;
//   4. every Deployment available, every proxy ACKed in weftd's /debug/syncz, the product page whole
//      through the ingress gateway's NodePort on the node's InternalIP;
//   5. the Prometheus addon (deploy/addons/prometheus) in BookInfo's namespace, scraping every 2 s:
//      it finds the sidecars by their prometheus.io annotations through kubernetes_sd, and the
//      metrics scenario asks it (driver.prometheus) through the API server's service proxy.
// Then: apply/delete are `weftctl apply|delete -f FILE -n NS --kubeconfig` (server-side apply, then
// weftd's /debug/* read through the API server's pod proxy until every proxy ACKed); proxy stats
// are each pod's 15090 through the API server's pod proxy (pod IPs are not routable from the host
// on kind or EKS); a plaintext call is `kubectl exec` of node in the client pod, straight to the
// workload's pod IP on 9080.
//
// stop() deletes the namespace (and with it Prometheus; its ClusterRole and binding after), uninstalls Weft (with --purge when the CRDs were not there before),
// removes the images it imported that were not there before and closes the receiver; also on a
// failed start, and (synchronously, best effort) from exit and signal hooks. leftovers() lists
// what is still there.
import { nodeId } from '@weft/mesh';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OtlpReceiver, startOtlpReceiver } from '@weft/proxy/testing';
import { deployPrometheusAddon, kubeCluster, kubeLocalDir, kubeLocalKubeconfig, kubeLocalTool, kubectlPath, type PrometheusAddon } from '@weft/testing';
import { applyKube, removeKube } from '@weft/weftctl';
import { containerdSocket, ctr, nodeChecks, nodeLeftovers, nodeSnapshot, podContainers } from './kube-node.ts';
import { type BookinfoDriver, type PlaintextAnswer, runWeftctl, tracingMeshConfig } from './driver.ts';
import { hasNetworking, networking, repoRoot } from './reference.ts';

export const systemNamespace = 'istio-system';
/** Istio's samples/bookinfo/platform/kube/bookinfo.yaml, beside the repository. */
export const istioBookinfoYaml = join(repoRoot, '../shared/reference/istio/samples/bookinfo/platform/kube/bookinfo.yaml');
export const weftBookinfoYaml = join(repoRoot, 'examples/bookinfo/platform/kube/bookinfo.yaml');
/** The kustomization that maps Istio's BookInfo images to Weft's (its `resources:` is bookinfo.yaml, copied beside it). */
export const istioImagesKustomization = join(repoRoot, 'examples/bookinfo/platform/istio-images/kustomization.yaml');
const weftctlBin = join(repoRoot, 'apps/weftctl/bin/weftctl.js');
/** The workloads of BookInfo (Deployment names), each with the app and version labels its pods carry. */
export const bookinfoWorkloads = ['details-v1', 'ratings-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'productpage-v1'] as const;

/** Why the kube driver cannot run here, or undefined. */
export function kubeDriverSkipReason(): string | undefined {
  if (!kubectlPath()) return 'needs kubectl (on PATH, or kube-local’s)';
  // weft/prometheus for kube-local is built from the Go module proxy (deploy/images/prometheus.sh)
  const cached = join(process.env.WEFT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'weft'), 'prometheus');
  if (isKubeLocal(process.env.KUBECONFIG ?? kubeLocalKubeconfig()) && !process.env.PROMETHEUS_BIN && !existsSync(cached) && spawnSync('go', ['version']).status !== 0)
    return 'needs Go 1.26+ on PATH to build weft/prometheus (deploy/images/prometheus.sh), or PROMETHEUS_BIN';
  return undefined;
}

export interface KubeDriverOptions {
  /** Which BookInfo: Weft's examples/bookinfo/platform/kube/bookinfo.yaml (default), or Istio's own through istio-images. */
  bookinfo?: 'weft' | 'istio';
  /** A line per phase as it ends (default: console.log). */
  onProgress?: (phase: string, text: string) => void;
}

export interface Phase {
  phase: string;
  seconds: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubeDriver extends BookinfoDriver {
  readonly kubeconfig: string;
  /** The namespace BookInfo runs in (istio-injection=enabled). */
  readonly namespace: string;
  /** The address pods reach the host at (the OTLP receiver listens there). */
  readonly hostAddress: string;
  /** How long each phase of start (and stop) took. */
  readonly timings: Phase[];
  /** `kubectl ARGS` against the driver's cluster (stdin: `input`). */
  kubectl(args: readonly string[], input?: string): Promise<RunResult>;
  /** `weftctl ARGS --kubeconfig` as a user runs it (a child process). */
  weftctl(args: readonly string[]): Promise<RunResult>;
  /** The running pods of a workload (`reviews-v2`: labels app=reviews,version=v2), not terminating. */
  podsOf(workload: string): Promise<{ name: string; ip: string }[]>;
}

/** The app and version labels of a workload name (`reviews-v2`). */
export function workloadLabels(workload: string): { app: string; version: string } {
  const m = /^(.+)-(v\d+)$/.exec(workload);
  if (!m) throw new Error(`${workload} is not a BookInfo workload name (<app>-v<N>)`);
  return { app: m[1]!, version: m[2]! };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the driver made (and must remove); kept for the exit hook, which cannot wait. */
interface Made {
  kubeconfig: string;
  namespace?: string;
  installed: boolean;
  purgeCrds: boolean;
  images: string[];
  /** The Prometheus addon's cluster-wide objects (its ClusterRole and binding, named prometheus-<id>); the rest is in the namespace. */
  prometheusClusterObjects?: string;
  children: Set<ChildProcess>;
}

function run(argv: readonly string[], made: Made, o: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, KUBECONFIG: made.kubeconfig, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    made.children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      stderr += e.message;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      made.children.delete(child);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(o.input ?? '');
  });
}

/** Whether `kubeconfig` is kube-local's, on this host (then images go into its containerd). */
function isKubeLocal(kubeconfig: string): boolean {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : p);
  return real(kubeconfig) === real(kubeLocalKubeconfig()) && existsSync(containerdSocket());
}

/**
 * The host address pods reach: the source address this host uses towards the node's InternalIP
 * (kube-local: the node address 10.200.0.1 itself; kind: the Docker network's gateway, 172.18.0.1),
 * or $WEFT_E2E_HOST_ADDRESS (a cluster whose pods reach this host some other way).
 */
function hostAddressFor(nodeIp: string): string {
  if (process.env.WEFT_E2E_HOST_ADDRESS) return process.env.WEFT_E2E_HOST_ADDRESS;
  const r = spawnSync('ip', ['-4', 'route', 'get', nodeIp], { encoding: 'utf8' });
  const src = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(r.stdout ?? '')?.[1];
  if (!src) throw new Error(`no route from this host to the node's InternalIP ${nodeIp} (ip route get: ${(r.stdout || r.stderr || '').trim()}); set WEFT_E2E_HOST_ADDRESS to an address of this host the pods reach`);
  return src;
}

/** The script the client pod runs for a plaintext GET: one answer as a JSON line. */
const plaintextScript = `const u=process.argv[1];const r=require('node:http').get(u,{timeout:5000},(res)=>{let b='';res.setEncoding('utf8');res.on('data',(c)=>{b+=c});res.on('end',()=>console.log(JSON.stringify({ok:true,status:res.statusCode,body:b})));res.on('error',(e)=>console.log(JSON.stringify({ok:false,error:e.message})))});r.on('timeout',()=>r.destroy(new Error('no answer within 5000 ms')));r.on('error',(e)=>console.log(JSON.stringify({ok:false,error:e.code?e.code+': '+e.message:e.message})));`;

function clientPod(namespace: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'client', namespace, labels: { app: 'client', 'sidecar.istio.io/inject': 'false' } },
    spec: {
      // node as PID 1 ignores SIGTERM: do not wait 30 s for it (kube-local gotcha 6)
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'client', image: 'weft/bookinfo:0.1.0', imagePullPolicy: 'IfNotPresent', command: ['node', '-e', 'setInterval(() => {}, 3600000)'] }],
    },
  });
}

/** Synchronous, best-effort removal for exit and signal hooks: they cannot wait for promises. */
function removeSync(made: Made): void {
  const env = { ...process.env, KUBECONFIG: made.kubeconfig };
  for (const c of made.children) c.kill('SIGKILL');
  if (made.namespace) spawnSync(kubectlPath() ?? 'kubectl', ['delete', 'namespace', made.namespace, '--ignore-not-found', '--wait=false'], { env, timeout: 30_000 });
  if (made.installed) spawnSync(process.execPath, [weftctlBin, 'uninstall', '--kubeconfig', made.kubeconfig, '--timeout', '120', ...(made.purgeCrds ? ['--purge'] : [])], { env, timeout: 150_000 });
  if (made.prometheusClusterObjects) spawnSync(kubectlPath() ?? 'kubectl', ['delete', 'clusterrole,clusterrolebinding', made.prometheusClusterObjects, '--ignore-not-found'], { env, timeout: 30_000 });
  for (const image of made.images) ctr('images', 'rm', image);
}

export async function startKubeDriver(o: KubeDriverOptions = {}): Promise<KubeDriver> {
  const progress = o.onProgress ?? ((phase, text) => console.log(`kube driver: ${phase}: ${text}`));
  const timings: Phase[] = [];
  const timed = async <T>(phase: string, fn: () => Promise<T>, says: (v: T) => string): Promise<T> => {
    const t0 = Date.now();
    const v = await fn();
    const seconds = (Date.now() - t0) / 1000;
    timings.push({ phase, seconds });
    progress(phase, `${says(v)} (${seconds.toFixed(1)} s)`);
    return v;
  };
  const kubeconfig = await timed('cluster', () => kubeCluster((l) => progress('cluster', l)), (k) => `kubeconfig ${k}`);
  const made: Made = { kubeconfig, installed: false, purgeCrds: false, images: [], children: new Set() };
  const exitHook = () => removeSync(made);
  const signalHook = (signal: NodeJS.Signals) => {
    removeSync(made);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', exitHook);
  process.once('SIGINT', signalHook);
  process.once('SIGTERM', signalHook);
  const unhook = () => {
    process.off('exit', exitHook);
    process.off('SIGINT', signalHook);
    process.off('SIGTERM', signalHook);
  };
  const kubectl = (args: readonly string[], input?: string) => run([kubectlPath() ?? 'kubectl', ...args], made, input === undefined ? {} : { input });
  const kubectlOk = async (args: readonly string[], input?: string) => {
    const r = await kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const weftctl = (args: readonly string[]) => run([process.execPath, weftctlBin, ...args, '--kubeconfig', kubeconfig], made, { timeoutMs: 600_000 });
  const id = randomBytes(3).toString('hex');
  const namespace = `weft-test-bookinfo-${id}`;
  const work = await mkdtemp(join(tmpdir(), 'weft-e2e-bookinfo-kube-'));
  let otlp: OtlpReceiver | undefined;
  let stopped = false;
  /** Every image imported that containerd did not have before (made.images: those not removed yet). */
  const imported: string[] = [];

  const kubeLocal = isKubeLocal(kubeconfig);
  /** kube-local: the node before the driver made anything, and what its pods were (for leftovers()). */
  const node = kubeLocal ? { before: nodeSnapshot(), podUids: new Set<string>(), containerIds: new Set<string>() } : undefined;
  const recordPods = async () => {
    if (!node) return;
    for (const [ns, selector] of [
      [namespace, []],
      [systemNamespace, ['-l', 'app.kubernetes.io/part-of=weft']],
    ] as const) {
      const r = await kubectl(['get', 'pods', '-n', ns, ...selector, '-o', 'jsonpath={.items[*].metadata.uid}']);
      for (const u of r.stdout.split(/\s+/).filter(Boolean)) node.podUids.add(u);
      for (const c of podContainers(ns)) node.containerIds.add(c);
    }
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const t0 = Date.now();
    await recordPods();
    if (made.namespace) {
      // the client pod first, at once: its node ignores SIGTERM
      await kubectl(['delete', 'pod', '-n', made.namespace, 'client', '--ignore-not-found', '--grace-period=0', '--force']);
      const r = await kubectl(['delete', 'namespace', made.namespace, '--ignore-not-found', '--timeout=180s']);
      if (r.code !== 0) progress('stop', `kubectl delete namespace ${made.namespace}: ${r.stderr.trim()}`);
      else made.namespace = undefined;
    }
    if (made.prometheusClusterObjects) {
      const r = await kubectl(['delete', 'clusterrole,clusterrolebinding', made.prometheusClusterObjects, '--ignore-not-found']);
      if (r.code !== 0) progress('stop', `kubectl delete clusterrole,clusterrolebinding ${made.prometheusClusterObjects}: ${r.stderr.trim()}`);
      else made.prometheusClusterObjects = undefined;
    }
    if (made.installed) {
      const r = await weftctl(['uninstall', '--timeout', '300', ...(made.purgeCrds ? ['--purge'] : [])]);
      if (r.code !== 0) progress('stop', `weftctl uninstall failed (${r.code}): ${r.stderr.trim()}${r.stdout.trim()}`);
      else made.installed = false;
    }
    for (const image of [...made.images]) {
      const r = ctr('images', 'rm', image);
      if (r.code === 0 || /not found/.test(r.stderr)) made.images.splice(made.images.indexOf(image), 1);
    }
    await otlp?.close();
    await rm(work, { recursive: true, force: true });
    unhook();
    timings.push({ phase: 'stop', seconds: (Date.now() - t0) / 1000 });
    progress('stop', `namespace, Weft${made.purgeCrds ? ' and its CRDs' : ''}, imported images removed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  };

  try {
    // 1. images
    let prometheusImage: string | undefined;
    await timed(
      'images',
      async () => {
        const out = join(work, 'images');
        // weft/prometheus only where the cluster pulls nothing (kube-local); elsewhere the addon's prom/prometheus
        const built = await run([process.execPath, join(repoRoot, 'deploy/images/build.ts'), '--out-dir', out, 'weftd', 'proxy', 'bookinfo', ...(kubeLocal ? ['prometheus'] : [])], made, { timeoutMs: 1_200_000 });
        if (built.code !== 0) throw new Error(`deploy/images/build.ts failed (${built.code}):\n${built.stderr}`);
        const names = built.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[0]!);
        if (!kubeLocal) return `built ${names.join(', ')}; not imported: this cluster is not kube-local, load dist/images/*.tar yourself (kind load image-archive)`;
        const before = new Set(ctr('images', 'ls', '-q').stdout.split('\n'));
        prometheusImage = names.find((n) => /(^|\/)weft\/prometheus:/.test(n));
        for (const file of ['weftd', 'proxy', 'bookinfo', 'prometheus']) {
          const r = await run([join(kubeLocalTool, 'image.sh'), '--load', join(out, `${file}.tar`)], made, { env: { KUBE_LOCAL_DIR: kubeLocalDir() } });
          if (r.code !== 0) throw new Error(`image.sh --load ${file}.tar failed (${r.code}):\n${r.stderr}`);
          for (const n of r.stdout.trim().split('\n')) if (n && !before.has(n) && !made.images.includes(n)) made.images.push(n);
          imported.push(...made.images.filter((n) => !imported.includes(n)));
        }
        await rm(out, { recursive: true, force: true });
        return `built and imported into kube-local's containerd: ${names.join(', ')}`;
      },
      (s) => s,
    );

    // 2. the OTLP receiver where pods reach this host, and Weft
    const nodeIp = (await kubectlOk(['get', 'nodes', '-o', 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}'])).trim();
    if (!nodeIp) throw new Error('the cluster’s first node has no InternalIP');
    const hostAddress = hostAddressFor(nodeIp);
    otlp = await startOtlpReceiver(hostAddress);
    const receiver = otlp;
    await timed(
      'install',
      async () => {
        const crd = await kubectl(['get', 'crd', 'virtualservices.networking.istio.io', '-o', 'name']);
        made.purgeCrds = crd.code !== 0;
        const existing = await kubectl(['get', 'deployment', '-n', systemNamespace, 'weftd', '-o', 'jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}']);
        if (existing.code === 0) {
          if (existing.stdout.trim() !== 'weftctl') throw new Error(`${systemNamespace}/weftd exists and was not installed by weftctl: this driver installs Weft itself`);
          // a run that died half-way left an install: start from none
          const un = await weftctl(['uninstall', '--timeout', '300']);
          if (un.code !== 0) throw new Error(`weftctl uninstall of a leftover install failed (${un.code}): ${un.stderr}${un.stdout}`);
          progress('install', 'uninstalled a leftover install first');
        }
        const meshConfig = join(work, 'mesh-config.yaml');
        await writeFile(meshConfig, tracingMeshConfig(hostAddress, receiver.httpPort));
        made.installed = true;
        const r = await weftctl(['install', '--mesh-config', meshConfig, '--timeout', '400']);
        if (r.code !== 0) throw new Error(`weftctl install failed (${r.code}):\n${r.stdout}${r.stderr}`);
        return `weftctl install: ${r.stdout.trim().split('\n').pop()}; tracing to ${hostAddress}:${receiver.httpPort}`;
      },
      (s) => s,
    );

    // 3. BookInfo
    const bookinfo = o.bookinfo ?? 'weft';
    await timed(
      'bookinfo',
      async () => {
        await kubectlOk(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'istio-injection': 'enabled', 'weft-test': namespace } } }));
        made.namespace = namespace;
        let manifests: string;
        if (bookinfo === 'istio') {
          // Istio's file unchanged, its images mapped by the kustomization the repository ships
          const dir = join(work, 'istio-bookinfo');
          await mkdir(dir, { recursive: true });
          await writeFile(join(dir, 'kustomization.yaml'), await readFile(istioImagesKustomization, 'utf8'));
          await copyFile(istioBookinfoYaml, join(dir, 'bookinfo.yaml'));
          manifests = await kubectlOk(['kustomize', dir]);
        } else manifests = await readFile(weftBookinfoYaml, 'utf8');
        await kubectlOk(['apply', '-n', namespace, '-f', '-'], manifests);
        await kubectlOk(['apply', '-f', '-'], clientPod(namespace));
        const gateway = hasNetworking('bookinfo-gateway.yaml') ? networking('bookinfo-gateway.yaml') : join(repoRoot, 'examples/bookinfo/networking/bookinfo-gateway.yaml');
        await runWeftctl(`weftctl apply -f ${gateway}`, (x) => applyKube({ kubeconfig, files: [gateway], namespace, waitMs: 0, systemNamespace }, x));
        return `${bookinfo === 'istio' ? `Istio's ${istioBookinfoYaml} through ${istioImagesKustomization}` : weftBookinfoYaml} and ${gateway} in ${namespace}`;
      },
      (s) => s,
    );

    const podsOf = async (workload: string) => {
      const { app, version } = workloadLabels(workload);
      const list = JSON.parse(await kubectlOk(['get', 'pods', '-n', namespace, '-l', `app=${app},version=${version}`, '-o', 'json'])) as {
        items: { metadata: { name: string; deletionTimestamp?: string }; status: { phase?: string; podIP?: string } }[];
      };
      return list.items.filter((p) => !p.metadata.deletionTimestamp && p.status.phase === 'Running' && p.status.podIP).map((p) => ({ name: p.metadata.name, ip: p.status.podIP! }));
    };
    const podOf = async (workload: string) => {
      const pods = await podsOf(workload);
      if (pods.length === 0) throw new Error(`no running pod of ${workload} in ${namespace}`);
      return pods[0]!;
    };

    // 4. ready: Deployments, proxies ACKed, the page through the gateway
    const url = await timed(
      'ready',
      async () => {
        const rollout = await kubectl(['wait', '-n', namespace, '--for=condition=Available', 'deployment', '--all', '--timeout=300s']);
        if (rollout.code !== 0) {
          const pods = await kubectl(['get', 'pods', '-n', namespace, '-o', 'wide']);
          throw new Error(`BookInfo's Deployments not available: ${rollout.stderr.trim()}\n${pods.stdout}`);
        }
        const client = await kubectl(['wait', '-n', namespace, '--for=condition=Ready', 'pod/client', '--timeout=120s']);
        if (client.code !== 0) throw new Error(`the client pod is not Ready: ${client.stderr.trim()}`);
        const expected = (await Promise.all(bookinfoWorkloads.map(podOf))).map((p) => nodeId({ type: 'sidecar', ip: p.ip, pod: p.name, namespace }));
        let last = '';
        const deadline = Date.now() + 120_000;
        for (;;) {
          const weftd = (await kubectlOk(['get', 'pods', '-n', systemNamespace, '-l', 'app=weftd', '-o', 'jsonpath={.items[*].metadata.name}'])).split(/\s+/).filter(Boolean);
          const entries: { id: string; types: Record<string, { status: string }> }[] = [];
          for (const pod of weftd) {
            const r = await kubectl(['get', '--raw', `/api/v1/namespaces/${systemNamespace}/pods/${pod}:15014/proxy/debug/syncz`]);
            if (r.code === 0) entries.push(...(JSON.parse(r.stdout) as typeof entries));
          }
          const synced = (id: string) => {
            const e = entries.find((x) => x.id === id);
            return e !== undefined && Object.keys(e.types).length > 0 && Object.values(e.types).every((t) => t.status === 'ACKED');
          };
          const gatewaySynced = entries.some((e) => e.id.startsWith('router~') && e.id.includes(`.${systemNamespace}~`) && synced(e.id));
          if (gatewaySynced && expected.every(synced)) break;
          last = `gateway ${gatewaySynced ? 'synced' : 'not synced'}; not synced: ${expected.filter((e) => !synced(e)).join(', ') || 'none'}`;
          if (Date.now() > deadline) throw new Error(`not every proxy ACKed within 120 s: ${last}`);
          await sleep(500);
        }
        const nodePort = (await kubectlOk(['get', 'service', '-n', systemNamespace, 'istio-ingressgateway', '-o', 'jsonpath={.spec.ports[?(@.name=="http2")].nodePort}'])).trim();
        const url = process.env.WEFT_E2E_INGRESS_URL ? `${process.env.WEFT_E2E_INGRESS_URL.replace(/\/$/, '')}/productpage` : `http://${nodeIp}:${nodePort}/productpage`;
        let answer = '';
        const pageDeadline = Date.now() + 60_000;
        for (;;) {
          try {
            const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
            const body = await r.text();
            answer = `${r.status}: ${body.slice(0, 200)}`;
            if (r.status === 200 && body.includes('Book Reviews')) break;
          } catch (e) {
            answer = (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message;
          }
          if (Date.now() > pageDeadline) throw new Error(`${url} did not answer with the product page within 60 s (last: ${answer})`);
          await sleep(500);
        }
        return url;
      },
      (u) => `every Deployment available, every proxy ACKed, ${u} answers`,
    );

    // 5. Prometheus as a user deploys it (deploy/addons/prometheus), in BookInfo's namespace (so the
    // namespace takes it along) with a name of its own for its cluster-wide role; scraping every 2 s
    // so the metrics scenario does not wait out the addon's 15 s
    const prometheus: PrometheusAddon = await timed(
      'prometheus',
      async () => {
        made.prometheusClusterObjects = `prometheus-${id}`;
        return deployPrometheusAddon(kubeconfig, { namespace, nameSuffix: `-${id}`, scrapeInterval: '2s', ...(prometheusImage ? { image: prometheusImage } : {}) });
      },
      (p) => `deploy/addons/prometheus as ${p.namespace}/${p.service} (${prometheusImage ?? 'prom/prometheus'}), scraping every 2 s`,
    );

    const io = { kubeconfig, namespace, waitMs: 30_000, systemNamespace };
    const driver: KubeDriver = {
      name: `kube${bookinfo === 'istio' ? ' (Istio’s bookinfo.yaml)' : ''}`,
      namespace,
      kubeconfig,
      hostAddress,
      timings,
      productpageUrl: url,
      otlp: receiver,
      prometheus,
      kubectl,
      weftctl,
      podsOf,
      async apply(files) {
        await runWeftctl(`weftctl apply -f ${files.join(' -f ')} --kubeconfig`, (x) => applyKube({ ...io, files }, x));
      },
      async delete(files) {
        await runWeftctl(`weftctl delete -f ${files.join(' -f ')} --kubeconfig`, (x) => removeKube({ ...io, files }, x));
      },
      async proxyStats(workload) {
        const pod = await podOf(workload);
        // 15090 is excluded from capture (istio-init -d 15090,15021,15020); through the API server, which reaches any pod IP
        const r = await kubectl(['get', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod.name}:15090/proxy/stats/prometheus`]);
        if (r.code !== 0) throw new Error(`${workload}'s 15090 through the API server: ${r.stderr.trim()}`);
        return r.stdout;
      },
      async plaintextCall(workload, path): Promise<PlaintextAnswer> {
        // from the client pod, which has no sidecar, straight to the pod's service port
        const pod = await podOf(workload);
        const r = await kubectl(['exec', '-n', namespace, 'client', '--', 'node', '-e', plaintextScript, `http://${pod.ip}:9080${path}`]);
        if (r.code !== 0) throw new Error(`kubectl exec in the client pod failed (${r.code}): ${r.stderr.trim()}`);
        return JSON.parse(r.stdout.trim().split('\n').pop()!) as PlaintextAnswer;
      },
      stop,
      async leftovers() {
        const left: string[] = [];
        const ns = await kubectl(['get', 'namespace', namespace, '-o', 'name']);
        if (ns.code === 0) left.push(`namespace ${namespace}`);
        const managed = await kubectl([
          'get',
          'mutatingwebhookconfigurations,validatingwebhookconfigurations,clusterroles,clusterrolebindings,deployments,services,configmaps,serviceaccounts,roles,rolebindings,poddisruptionbudgets,namespaces',
          '-A',
          '-l',
          'app.kubernetes.io/managed-by=weftctl',
          '-o',
          'name',
        ]);
        for (const l of managed.stdout.split('\n').filter(Boolean)) left.push(`installed by weftctl: ${l}`);
        const hooks = await kubectl(['get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations', '-o', 'name']);
        for (const l of hooks.stdout.split('\n').filter((h) => /istio/.test(h))) left.push(`webhook configuration ${l}`);
        const promRbac = await kubectl(['get', 'clusterroles,clusterrolebindings', '-l', 'app=prometheus,app.kubernetes.io/part-of=weft', '-o', 'name']);
        for (const l of promRbac.stdout.split('\n').filter((x) => x.endsWith(`/prometheus-${id}`))) left.push(`the Prometheus addon's ${l}`);
        const rootCerts = await kubectl(['get', 'configmaps', '-A', '--field-selector=metadata.name=istio-ca-root-cert', '-o', 'name']);
        for (const l of rootCerts.stdout.split('\n').filter(Boolean)) left.push(`weftd's root certificate: ${l}`);
        const weftPods = await kubectl(['get', 'pods', '-A', '-l', 'app.kubernetes.io/part-of=weft', '-o', 'name']);
        for (const l of weftPods.stdout.split('\n').filter(Boolean)) left.push(`pod ${l}`);
        if (made.purgeCrds) {
          const crds = await kubectl(['get', 'crd', '-l', 'app.kubernetes.io/part-of=weft', '-o', 'name']);
          for (const l of crds.stdout.split('\n').filter(Boolean)) left.push(`CRD ${l} (not there before)`);
        }
        if (kubeLocal) {
          const images = new Set(ctr('images', 'ls', '-q').stdout.split('\n'));
          for (const i of imported) if (images.has(i)) left.push(`containerd image ${i}`);
        }
        for (const c of made.children) left.push(`process ${c.pid} (${c.spawnargs.slice(0, 3).join(' ')})`);
        // the receiver's port: nothing of ours listens on the host address any more
        const ss = spawnSync('ss', ['-ltnH'], { encoding: 'utf8' }).stdout ?? '';
        for (const l of ss.split('\n')) if (l.includes(`${hostAddress}:${receiver.httpPort} `)) left.push(`listening: ${l.trim()}`);
        if (existsSync(work)) left.push(`directory ${work}`);
        // the node: the kubelet and containerd remove what the pods had, some of it at the kubelet's next garbage collection
        let nodeWait = '';
        if (node) {
          const t0 = Date.now();
          let onNode = nodeLeftovers(node.before, [namespace, systemNamespace], [...node.podUids], [...node.containerIds]);
          while (stopped && onNode.length > 0 && Date.now() - t0 < 150_000) {
            await sleep(2000);
            onNode = nodeLeftovers(node.before, [namespace, systemNamespace], [...node.podUids], [...node.containerIds]);
          }
          left.push(...onNode);
          nodeWait = `; on the node (${node.podUids.size} pods, ${node.containerIds.size} containerd containers; ${onNode.length === 0 ? 'gone' : 'still there'} after ${((Date.now() - t0) / 1000).toFixed(1)} s): ${nodeChecks}`;
        }
        progress(
          'leftovers',
          `checked: namespace ${namespace}; the Prometheus addon's ClusterRole and binding prometheus-${id}; objects labelled app.kubernetes.io/managed-by=weftctl (webhook configurations, cluster roles and bindings, deployments, services, config maps, service accounts, roles and bindings, PDBs, namespaces); istio* webhook configurations; istio-ca-root-cert ConfigMaps; pods labelled app.kubernetes.io/part-of=weft; ${made.purgeCrds ? "Weft's CRDs (not there before)" : "Weft's CRDs kept (they were there before)"}; ${kubeLocal ? `containerd images imported: ${imported.length ? imported.join(', ') : 'none new'}` : 'no images imported'}; child processes; ${hostAddress}:${receiver.httpPort}; ${work}${nodeWait}: ${left.length === 0 ? 'nothing left' : `${left.length} left`}`,
        );
        return left;
      },
    };
    return driver;
  } catch (e) {
    console.error(`kube driver: start failed: ${(e as Error).message}`);
    await stop();
    throw e;
  }
}
