// weftctl install / check / uninstall on the shared cluster, as a user runs them, with weftd's real
// images (npm run images, loaded into kube-local's containerd). The whole file holds the exclusive
// cluster lock: while Weft is installed its webhooks (failurePolicy Fail) see every namespace, and
// one test stops weftd behind them.
//   - install, then check exits 0; weftd runs under exactly the RBAC the chart grants (the rules are
//     listed and compared, and weftd's log has no "forbidden");
//   - weftd stopped: kubectl apply of a VirtualService and a pod in an injected namespace fail,
//     naming the webhook; once weftd is back both succeed (and the pod is injected);
//   - uninstall leaves no object install made (every kind listed), nor weftd's root-cert ConfigMaps;
//     --purge takes the CRDs too; check then fails naming weftd.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crdManifests, installValues, renderInstall, weftdClusterAccess, weftdNamespaceAccess } from '@weft/kube';
import { kubeCluster, kubeLocalDir, kubeLocalTool, needsKube, noteSkip, withClusterLock } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const containerdSocket = join(kubeLocalDir(), 'run/containerd/containerd.sock');
const skip = needsKube() ?? noteSkip(process.env.KUBECONFIG && !existsSync(containerdSocket) ? `needs kube-local's containerd (${containerdSocket}) to load Weft's images` : undefined);

interface Run {
  code: number;
  out: string;
}

/** A command as a user types it, its output kept (and echoed, for a failing run's story). */
function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, [...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, out }));
    child.stdin.end(input ?? '');
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip !== undefined)('weftctl install, check, uninstall on a real cluster', () => {
  let kubeconfig: string;
  let release: (() => void) | undefined;
  let held: Promise<void> | undefined;
  const suffix = Math.random().toString(36).slice(2, 8);
  /** Whether istio-system was there before install (then uninstall leaves it). */
  let hadNamespace = false;
  const injected = `weft-test-install-${suffix}`;
  const weftctl = (...args: string[]) => run(process.execPath, [join(root, 'apps/weftctl/bin/weftctl.js'), ...args], { KUBECONFIG: kubeconfig });
  const kubectl = (args: string[], input?: string) => run('kubectl', args, { KUBECONFIG: kubeconfig }, input);

  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    await new Promise<void>((locked) => {
      held = withClusterLock('exclusive', () => {
        locked();
        return new Promise<void>((r) => (release = r));
      });
    });
    // a run that died half-way left an install: start from none
    await weftctl('uninstall', '--timeout', '120');
    const dir = mkdtempSync(join(tmpdir(), 'weft-install-images-'));
    try {
      const built = spawnSync(process.execPath, [join(root, 'deploy/images/build.ts'), '-o', dir, 'weftd', 'proxy'], { encoding: 'utf8' });
      if (built.status !== 0) throw new Error(`npm run images failed:\n${built.stderr}`);
      for (const name of ['weftd', 'proxy']) {
        const load = spawnSync(join(kubeLocalTool, 'image.sh'), ['--load', join(dir, `${name}.tar`)], { encoding: 'utf8', env: { ...process.env, KUBE_LOCAL_DIR: kubeLocalDir() } });
        if (load.status !== 0) throw new Error(`image.sh --load ${name}.tar failed:\n${load.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 15 * 60_000);

  afterAll(async () => {
    if (kubeconfig) {
      await kubectl(['delete', 'namespace', injected, '--ignore-not-found', '--wait=false']);
      await weftctl('uninstall', '--timeout', '120');
      // other suites expect Istio's and Gateway API's CRDs (they install them idempotently too)
      await kubectl(['apply', '--server-side', '-f', join(root, 'deploy/crds/crd-all.gen.yaml')]);
    }
    release?.();
    await held;
  }, 5 * 60_000);

  it('check --pre passes on the empty cluster; install shows its steps; check then exits 0', async () => {
    const pre = await weftctl('check', '--pre');
    expect(pre.out).toMatch(/^ok {3}API server reachable: https:\/\//m);
    expect(pre.code, pre.out).toBe(0);
    hadNamespace = (await kubectl(['get', 'namespace', 'istio-system'])).code === 0;
    const install = await weftctl('install', '--timeout', '400');
    expect(install.code, install.out).toBe(0);
    const steps = install.out.trim().split('\n');
    expect(steps[0]).toMatch(/^install: Kubernetes v1\.\d+\.\d+ at https:\/\//);
    expect(install.out).toMatch(/^install: base: \d+ CustomResourceDefinitions established/m);
    expect(install.out).toMatch(/^install: weftd: Deployment istio-system\/weftd ready/m);
    expect(install.out).toMatch(/^install: weftd: webhooks answer: validation refuses an invalid VirtualService, injection adds istio-proxy/m);
    expect(install.out).toMatch(/^install: gateway: Deployment istio-system\/istio-ingressgateway ready/m);
    expect(steps.at(-1)).toMatch(/^install: installed in [\d.]+ s/);
    // the gateway connects once its certificate is issued: give it a moment to ACK
    let check: Run = { code: 1, out: '' };
    for (let i = 0; i < 20; i++) {
      check = await weftctl('check');
      if (check.code === 0) break;
      await sleep(1500);
    }
    expect(check.code, check.out).toBe(0);
    expect(check.out).toMatch(/^ok {3}weftd ready: 1\/1 replicas of weft\/weftd:/m);
    expect(check.out).toMatch(/^ok {3}webhooks answer: /m);
    expect(check.out).toMatch(/^ok {3}proxies synced: [1-9]\d* connected, every one has ACKed/m);
    expect(check.out).toMatch(/checks passed\n$/);
  }, 10 * 60_000);

  it('weftd runs with exactly the verbs and resources its ClusterRole and Role grant, and needs no more', async () => {
    const role = JSON.parse((await kubectl(['get', 'clusterrole', 'weftd-istio-system', '-o', 'json'])).out) as { rules: unknown[] };
    const strip = (rules: { by?: string[] }[]) => rules.map(({ by: _, ...r }) => r);
    expect(role.rules).toEqual(strip(weftdClusterAccess('istio-system')));
    const nsRole = JSON.parse((await kubectl(['get', 'role', '-n', 'istio-system', 'weftd', '-o', 'json'])).out) as { rules: unknown[] };
    expect(nsRole.rules).toEqual(strip([...weftdNamespaceAccess]));
    // what the API server lets weftd's service account do, as it answers: no wildcard, no delete
    const can = await kubectl(['auth', 'can-i', '--list', '--as=system:serviceaccount:istio-system:weftd', '-n', 'istio-system']);
    expect(can.code, can.out).toBe(0);
    expect(can.out).not.toMatch(/^\s*\*\.\*\s/m);
    expect(can.out).toMatch(/tokenreviews\.authentication\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/);
    const logs = await kubectl(['logs', '-n', 'istio-system', 'deployment/weftd', '--tail=-1']);
    expect(logs.code).toBe(0);
    expect(logs.out).not.toMatch(/forbidden/i);
  });

  it('with weftd stopped, Istio config and pods of an injected namespace are refused naming the webhook; back, both succeed', async () => {
    expect((await kubectl(['create', 'namespace', injected])).code).toBe(0);
    expect((await kubectl(['label', 'namespace', injected, 'istio-injection=enabled'])).code).toBe(0);
    const vs = JSON.stringify({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: injected },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    });
    const pod = (name: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: injected },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: 'docker.io/kube-local/node:local', imagePullPolicy: 'Never', command: ['sleep', '3600'] }] },
      });
    expect((await kubectl(['scale', '-n', 'istio-system', 'deployment/weftd', '--replicas=0'])).code).toBe(0);
    const gone = await kubectl(['wait', '-n', 'istio-system', '--for=delete', 'pod', '-l', 'app=weftd', '--timeout=90s']);
    expect(gone.code, gone.out).toBe(0);
    // the Service has no endpoint now: the API server cannot call either webhook, and Fail refuses
    let refusedVs: Run = { code: 0, out: '' };
    for (let i = 0; i < 20 && refusedVs.code === 0; i++) {
      refusedVs = await kubectl(['apply', '-f', '-'], vs);
      if (refusedVs.code === 0) {
        await kubectl(['delete', 'virtualservice', '-n', injected, 'reviews', '--ignore-not-found']);
        await sleep(500);
      }
    }
    expect(refusedVs.code).not.toBe(0);
    expect(refusedVs.out).toMatch(/failed calling webhook "rev\.validation\.istio\.io"/);
    const refusedPod = await kubectl(['apply', '-f', '-'], pod('app-while-down'));
    expect(refusedPod.code).not.toBe(0);
    expect(refusedPod.out).toMatch(/failed calling webhook "namespace\.sidecar-injector\.istio\.io"/);

    expect((await kubectl(['scale', '-n', 'istio-system', 'deployment/weftd', '--replicas=1'])).code).toBe(0);
    const back = await kubectl(['rollout', 'status', '-n', 'istio-system', 'deployment/weftd', '--timeout=120s']);
    expect(back.code, back.out).toBe(0);
    // ready, and its Service forwards to it after kube-proxy's next sync (kube-local gotcha 5): retry
    let applied: Run = { code: 1, out: '' };
    for (let i = 0; i < 60 && applied.code !== 0; i++) {
      applied = await kubectl(['apply', '-f', '-'], vs);
      if (applied.code !== 0) await sleep(1000);
    }
    expect(applied.code, applied.out).toBe(0);
    let created: Run = { code: 1, out: '' };
    for (let i = 0; i < 30 && created.code !== 0; i++) {
      created = await kubectl(['apply', '-f', '-'], pod('app'));
      if (created.code !== 0) await sleep(1000);
    }
    expect(created.code, created.out).toBe(0);
    const containers = (await kubectl(['get', 'pod', '-n', injected, 'app', '-o', 'jsonpath={.spec.initContainers[*].name} {.spec.containers[*].name}'])).out;
    expect(containers).toBe('istio-init app istio-proxy');
    await kubectl(['delete', 'namespace', injected, '--wait=false']);
  }, 6 * 60_000);

  it('uninstall leaves no object install made (every kind listed), --purge takes the CRDs, and check then fails naming weftd', async () => {
    const rendered = renderInstall(installValues()).flatMap((c) => c.manifests);
    const kinds = [...new Set(rendered.map((m) => m.kind))].sort();
    expect(kinds).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'CustomResourceDefinition',
      'Deployment',
      'MutatingWebhookConfiguration',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
      'ValidatingWebhookConfiguration',
    ]);
    const rootCerts = async () => (await kubectl(['get', 'configmap', '-A', '--field-selector=metadata.name=istio-ca-root-cert', '-l', 'istio.io/config=true', '-o', 'name'])).out.trim();
    expect(await rootCerts()).not.toBe('');
    const un = await weftctl('uninstall', '--timeout', '300');
    expect(un.code, un.out).toBe(0);
    expect(un.out).toMatch(/^uninstall: kept \d+ CustomResourceDefinitions and the mesh config in them \(weftctl uninstall --purge deletes them\)/m);
    const exists = async (m: { kind: string; metadata: { name: string; namespace?: string } }) => {
      const r = await kubectl(['get', m.kind, m.metadata.name, ...(m.metadata.namespace ? ['-n', m.metadata.namespace] : []), '-o', 'name']);
      return r.code === 0;
    };
    const left: string[] = [];
    for (const m of rendered) if (m.kind !== 'CustomResourceDefinition' && (await exists(m))) left.push(`${m.kind} ${m.metadata.name}`);
    expect(left).toEqual([]);
    expect(await rootCerts()).toBe('');
    const labelled = await kubectl(['get', kinds.map((k) => k.toLowerCase()).join(','), '-A', '-l', 'app.kubernetes.io/managed-by=weftctl', '-o', 'name']);
    expect(labelled.out.trim().split('\n').every((l) => l.startsWith('customresourcedefinition.apiextensions.k8s.io/'))).toBe(true);
    expect((await kubectl(['get', 'namespace', 'istio-system'])).code === 0).toBe(hadNamespace);

    const purge = await weftctl('uninstall', '--purge', '--timeout', '300');
    expect(purge.code, purge.out).toBe(0);
    for (const crd of crdManifests()) expect(await exists(crd), crd.metadata.name).toBe(false);
    const nothing = await kubectl(['get', [...kinds, 'Namespace'].map((k) => k.toLowerCase()).join(','), '-A', '-l', 'app.kubernetes.io/managed-by=weftctl', '-o', 'name']);
    expect(nothing.out.trim()).toBe('');

    const check = await weftctl('check');
    expect(check.code).toBe(1);
    expect(check.out).toMatch(/^FAIL CRDs: missing: /m);
    expect(check.out).toMatch(/^FAIL weftd ready: no Deployment istio-system\/weftd \(run weftctl install\)/m);
  }, 10 * 60_000);
});
