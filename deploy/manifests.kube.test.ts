// Every manifest under deploy/ is accepted by a real API server (server-side apply, dry run: the
// API server validates each object, CRD schemas and CEL rules included, and stores nothing): the
// charts as `weftctl install` renders them, with their defaults (EKS: a LoadBalancer gateway) and with
// deploy/kind/values.yaml; each kustomization of deploy/addons. Namespaced objects go to a namespace
// of this test's own (the API server refuses them in one that does not exist); the shared lock,
// since nothing is stored. A YAML file under deploy/ that none of these covers fails the first test.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { installValues, type Manifest, renderInstall, type Values } from '@weft/kube';
import { parseYamlDocuments } from '@weft/model';
import { holdClusterLock, kubeCluster, kubectl, kubectlOk, kubectlPath, needsKube, noteSkip } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './images/build.ts';

const deployDir = join(repoRoot, 'deploy');
const skip = needsKube() ?? noteSkip(kubectlPath() ? undefined : 'needs kubectl (on PATH, or kube-local’s)');

/** Every YAML file under deploy/, relative to it. */
function yamlFiles(dir = deployDir, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yamlFiles(p, out);
    else if (/\.ya?ml$/.test(e.name)) out.push(relative(deployDir, p));
  }
  return out.sort();
}

/** The directories holding a kustomization.yaml (under deploy/addons). */
const kustomizations = yamlFiles()
  .filter((f) => f.endsWith('/kustomization.yaml'))
  .map((f) => dirname(f));

/** The files each kustomization pulls in (its own resources, recursively through `../base`). */
function kustomizationFiles(dir: string): string[] {
  const file = join(deployDir, dir, 'kustomization.yaml');
  const k = (parseYamlDocuments(readFileSync(file, 'utf8'), file).documents[0]?.value ?? {}) as { resources?: string[] };
  const out = [relative(deployDir, file)];
  for (const r of k.resources ?? []) {
    const target = join(deployDir, dir, r);
    if (existsSync(join(target, 'kustomization.yaml'))) out.push(...kustomizationFiles(relative(deployDir, target)));
    else out.push(relative(deployDir, target));
  }
  return out;
}

/** Why each YAML file is covered: rendered, dry-run, or not an API object (and where it is checked). */
function coverage(file: string): string | undefined {
  if (file.startsWith('charts/') || file.startsWith('crds/')) return 'rendered by weftctl’s renderer (@weft/kube install/manifests.ts)';
  if (file === 'kind/values.yaml' || file === 'addons/tracing/values.yaml') return 'values: rendered with them';
  if (file === 'kind/cluster.yaml') return 'kind’s own config, not an API object (deploy/kind/kind.test.ts)';
  if (file.startsWith('addons/grafana/provisioning/')) return 'Grafana’s provisioning, not an API object: in the ConfigMaps addons/grafana generates (deploy/addons/grafana/grafana.test.ts)';
  if (file.startsWith('kube-local/')) return 'kube-local’s: check.sh’s templates and CoreDNS, applied for real by up.sh and check.sh';
  if (kustomizations.some((d) => kustomizationFiles(d).includes(file))) return 'a kustomization’s';
  return undefined;
}

function values(file: string): Partial<Record<'base' | 'weftd' | 'gateway', Values>> {
  const path = join(deployDir, file);
  return (parseYamlDocuments(readFileSync(path, 'utf8'), path).documents[0]?.value ?? {}) as Partial<Record<'base' | 'weftd' | 'gateway', Values>>;
}

/** What each kustomization holds, by kind: a kustomization that lost or gained objects fails here. */
const kustomizationKinds: Record<string, string[]> = {
  'addons/prometheus/base': ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Service', 'ServiceAccount'],
  'addons/prometheus/local': ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Service', 'ServiceAccount'],
  'addons/grafana': ['ConfigMap', 'ConfigMap', 'ConfigMap', 'Deployment', 'Service'],
  'addons/tracing': ['ConfigMap', 'ConfigMap', 'Deployment', 'Deployment', 'Service', 'Service', 'Service'],
};

describe('deploy/ manifests', () => {
  it('are all covered by the dry run below or checked elsewhere', () => {
    const uncovered = yamlFiles().filter((f) => coverage(f) === undefined);
    expect(uncovered).toEqual([]);
    expect(kustomizations).toEqual(Object.keys(kustomizationKinds).sort());
  });
});

describe.skipIf(skip !== undefined)('deploy/ manifests, server-side dry run', () => {
  let kubeconfig: string;
  let release: (() => Promise<void>) | undefined;
  const ns = `weft-test-dryrun-${randomBytes(3).toString('hex')}`;
  const work = mkdtempSync(join(tmpdir(), 'weft-dryrun-'));

  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    release = await holdClusterLock('shared');
    await kubectlOk(kubeconfig, ['create', 'namespace', ns]);
  }, 30 * 60_000);
  afterAll(async () => {
    if (kubeconfig) await kubectl(kubeconfig, ['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']).catch(() => {});
    rmSync(work, { recursive: true, force: true });
    await release?.();
  });

  /** Server-side apply, dry run: every object must come back applied. */
  async function dryRun(objects: readonly Manifest[]): Promise<void> {
    const r = await kubectl(kubeconfig, ['apply', '--server-side', '--dry-run=server', '--force-conflicts', '--field-manager=weft-dry-run', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    expect(r.stderr.trim(), 'kubectl apply --dry-run=server').toBe('');
    expect(r.code).toBe(0);
    const applied = r.stdout.trim().split('\n');
    expect(applied.every((l) => l.endsWith(' serverside-applied (server dry run)')), r.stdout).toBe(true);
    expect(applied.length).toBe(objects.length);
  }

  it.each([
    ['the charts’ defaults (EKS: LoadBalancer gateway)', undefined],
    ['deploy/kind/values.yaml', 'kind/values.yaml'],
    ['deploy/addons/tracing/values.yaml (the mesh exporting spans to the tracing addon)', 'addons/tracing/values.yaml'],
  ])('weftctl install’s objects with %s', async (_, file) => {
    const objects = renderInstall(installValues(file ? values(file) : {}, { namespace: ns })).flatMap((c) => c.manifests);
    expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(['CustomResourceDefinition', 'Deployment', 'MutatingWebhookConfiguration', 'Service']));
    await dryRun(objects);
  });

  it.each(kustomizations)('the kustomization deploy/%s', async (dir) => {
    // the same objects in this test's namespace: an overlay that only sets it
    const overlay = mkdtempSync(join(work, 'overlay-'));
    writeFileSync(join(overlay, 'kustomization.yaml'), `resources:\n- ${JSON.stringify(relative(overlay, join(deployDir, dir)))}\nnamespace: ${ns}\n`);
    const yaml = await kubectlOk(kubeconfig, ['kustomize', overlay]);
    const objects = yaml
      .split(/^---$/m)
      .map((d) => parseYamlDocuments(d, dir).documents[0]?.value as Manifest | undefined)
      .filter((o): o is Manifest => o !== undefined);
    expect(objects.map((o) => o.kind).sort()).toEqual(kustomizationKinds[dir]);
    await dryRun(objects);
  });
});
