// An injected pod runs on the shared cluster: the images `npm run images` builds (a tag of this
// test's own, removed after), weftd as a host process on the node's address (10.200.0.1) behind a
// selector-less Service `weftd` in its namespace, the injection webhook pointing at it by URL. The
// pod of a Deployment gets the sidecar; istio-init applies the capture rules; istio-proxy gets its
// certificate with the projected token and its config over TLS from weftd; the application's
// readiness probe, rewritten to 15020 /app-health, makes the pod Ready; a request to the Service
// goes through the sidecar.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { holdClusterLock, hostWeftdManifests, kubeCluster, kubeLocalDir, kubectl, kubectlOk, kubectlPath, needsKube, noteSkip, ratingsManifests } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, until, WeftdProcess } from './kube-test-support.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const containerdSocket = join(kubeLocalDir(), 'run/containerd/containerd.sock');
const nodeAddress = '10.200.0.1';
const skip =
  needsKube() ??
  (kubectlPath() ? undefined : noteSkip('needs kubectl (on PATH, or kube-local’s)')) ??
  noteSkip(existsSync(containerdSocket) ? undefined : `needs kube-local's containerd (${containerdSocket}) to load the images`) ??
  noteSkip(spawnSync('ip', ['-4', 'addr', 'show']).stdout?.toString().includes(`inet ${nodeAddress}/`) ? undefined : `needs kube-local's node address ${nodeAddress} on this host`);
const suffix = randomBytes(3).toString('hex');
const scope = `weft-test-injected-${suffix}`;
const sysNs = `${scope}-sys`;
const appNs = `${scope}-app`;
const tag = `injected-${suffix}`;

const ctr = (...args: string[]) => spawnSync('ctr', ['--address', containerdSocket, '-n', 'k8s.io', ...args], { encoding: 'utf8' });

describe.skipIf(skip !== undefined)('an injected pod on the cluster', () => {
  let kubeconfig: string;
  let dir: string;
  let weftd: WeftdProcess | undefined;
  let releaseLock: (() => Promise<void>) | undefined;
  let pod: string;
  const k = (args: readonly string[], input?: string) => kubectlOk(kubeconfig, args, input);

  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    dir = await mkdtemp(join(tmpdir(), 'weftd-injected-'));
    const built = spawnSync(process.execPath, [join(root, 'deploy/images/build.ts'), '--out-dir', dir, '--tag', tag, 'weft/proxy', 'weft/bookinfo'], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`npm run images failed: ${built.stderr}`);
    for (const name of ['proxy', 'bookinfo']) {
      const imported = ctr('images', 'import', join(dir, `${name}.tar`));
      if (imported.status !== 0) throw new Error(`ctr images import ${name}.tar: ${imported.stderr}`);
    }
    releaseLock = await holdClusterLock('shared');
    const meshConfig = join(dir, 'mesh.yaml');
    await writeFile(meshConfig, `discoverySelectors:\n- matchLabels: {weft-test: ${scope}}\n`);
    await k(['create', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${sysNs}, labels: {weft-test: ${scope}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ${appNs}, labels: {weft-test: ${scope}, istio-injection: enabled}}\n`);
    const caPort = await freePort(nodeAddress);
    // Two ports found one after the other can be the same one (each is released before the next).
    let webhookPort = await freePort(nodeAddress);
    while (webhookPort === caPort) webhookPort = await freePort(nodeAddress);
    weftd = new WeftdProcess([
      '--kubeconfig',
      kubeconfig,
      '--system-namespace',
      sysNs,
      '--mesh-config',
      meshConfig,
      '--listen-address',
      nodeAddress,
      '--xds-port',
      'off',
      '--ca-port',
      String(caPort),
      '--monitoring-port',
      '0',
      '--webhook-port',
      String(webhookPort),
      '--injection-webhook',
      scope,
      '--validation-webhook',
      `${scope}-none`,
      '--proxy-image',
      `weft/proxy:${tag}`,
    ]);
    await weftd.waitFor((l) => l.msg === 'weftd ready', 'weftd ready');
    // weftd.<ns>.svc:15012, as the template dials it, is weftd on the host.
    await k(['create', '-f', '-'], hostWeftdManifests({ systemNamespace: sysNs, scope, nodeAddress, caPort, webhookPort }));
    await until('the caBundle set', async () => ((await k(['get', 'mutatingwebhookconfiguration', scope, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).length > 0 ? true : undefined));
    await k(['create', '-f', '-'], ratingsManifests(appNs, `weft/bookinfo:${tag}`));
    pod = await until('the ratings pod', async () => (await k(['get', 'pods', '-n', appNs, '-l', 'app=ratings', '-o', 'name'])).trim() || undefined, 30_000);
  }, 20 * 60_000);

  afterAll(async () => {
    if (kubeconfig) await kubectl(kubeconfig, ['delete', 'mutatingwebhookconfiguration', scope, '--ignore-not-found']).catch(() => {});
    await weftd?.stop();
    if (kubeconfig) for (const ns of [appNs, sysNs]) await kubectl(kubeconfig, ['delete', 'namespace', ns, '--wait=false']).catch(() => {});
    for (const name of ['proxy', 'bookinfo']) ctr('images', 'rm', `docker.io/weft/${name}:${tag}`);
    if (dir) await rm(dir, { recursive: true, force: true });
    await releaseLock?.();
  }, 120_000);

  it('turns Ready: capture rules applied, the proxy certified with the projected token and configured over TLS, the app probed through 15020', async () => {
    const ready = await kubectl(kubeconfig, ['wait', '-n', appNs, pod, '--for=condition=Ready', '--timeout=120s']);
    const why = ready.code === 0 ? '' : `${(await kubectl(kubeconfig, ['describe', '-n', appNs, pod])).stdout}\n${(await kubectl(kubeconfig, ['logs', '-n', appNs, pod, '--all-containers'])).stdout}`;
    expect(ready.code, why).toBe(0);
    const spec = JSON.parse(await k(['get', '-n', appNs, pod, '-o', 'json'])) as { spec: { containers: { name: string; readinessProbe?: { httpGet?: { path: string; port: number } } }[] } };
    expect(spec.spec.containers.map((c) => c.name)).toEqual(['ratings', 'istio-proxy']);
    expect(spec.spec.containers[0]!.readinessProbe?.httpGet).toMatchObject({ path: '/app-health/ratings/readyz', port: 15020 });
    const init = await k(['logs', '-n', appNs, pod, '-c', 'istio-init']);
    expect(init).toMatch(/"msg":"applied capture rules","family":"ipv4"/);
    const proxy = await k(['logs', '-n', appNs, pod, '-c', 'istio-proxy']);
    expect(proxy).toContain(`"msg":"workload certificate ready"`);
    expect(proxy).toContain(`spiffe://cluster.local/ns/${appNs}/sa/default`);
    expect(proxy).toMatch(new RegExp(`"msg":"initial configuration complete".*"pilot":"weftd\\.${sysNs}\\.svc:15012"`));
    expect(weftd!.lines.find((l) => l.msg === 'sidecar injected')).toMatchObject({ pod: expect.stringMatching(new RegExp(`^${appNs}/ratings-v1-`)) });
  });

  it('sends the application’s request to its Service through the sidecar', async () => {
    const out = await k([
      'exec',
      '-n',
      appNs,
      pod,
      '-c',
      'ratings',
      '--',
      'node',
      '-e',
      `fetch('http://ratings.${appNs}:9080/ratings/0').then(async (r) => console.log(r.status, r.headers.get('server'), await r.text()))`,
    ]);
    expect(out.trim()).toBe('200 istio-envoy {"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}');
  });
});
