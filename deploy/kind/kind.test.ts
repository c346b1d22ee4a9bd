// The kind path, checked without kind (no Docker daemon here): shellcheck of every shell script,
// scripts/kind-e2e.sh stopping before it creates anything when the container engine or kind is
// missing, and deploy/kind's files agreeing with the charts and the addon they configure. The
// server-side dry run of the manifests is deploy/manifests.kube.test.ts.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseYamlDocuments } from '@weft/model';
import { findOnPath, needs } from '@weft/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, weftVersion } from '../images/build.ts';

const script = join(repoRoot, 'scripts/kind-e2e.sh');

function yaml(path: string): unknown[] {
  const { documents, problems } = parseYamlDocuments(readFileSync(path, 'utf8'), path);
  expect(problems).toEqual([]);
  return documents.map((d) => d.value);
}

/** Every shell script of the repository's own (not node_modules). */
function shellScripts(dir = repoRoot, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.') || e.name === 'dist') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) shellScripts(p, out);
    else if (e.name.endsWith('.sh')) out.push(p);
  }
  return out;
}

describe.skipIf(needs({ tools: ['shellcheck'] }) !== undefined)('shellcheck', () => {
  const scripts = shellScripts();
  it('finds the kind script among the shell scripts', () => {
    expect(scripts).toContain(script);
  });
  it.each(scripts.map((s) => [s.slice(repoRoot.length + 1), s]))('%s passes', (_, path) => {
    // following what it sources: kube-local's scripts source $TOOL/lib/common.sh, $TOOL being theirs or its parent
    const r = spawnSync('shellcheck', ['-x', '-P', 'SCRIPTDIR', '-P', 'SCRIPTDIR/..', path], { encoding: 'utf8' });
    expect(r.stdout + r.stderr, `shellcheck -x ${path}`).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('scripts/kind-e2e.sh before it touches anything', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-kind-e2e-'));
  const calls = join(dir, 'calls');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** A PATH of stubs: each records its arguments; `docker info` fails as with no daemon. */
  const stubs = (names: readonly string[]) => {
    const bin = mkdtempSync(join(dir, 'bin-'));
    for (const n of names) {
      writeFileSync(join(bin, n), `#!/bin/sh\necho "${n} $*" >> ${calls}\n${n === 'docker' ? '[ "$1" = info ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }\n' : ''}exit 0\n`);
      chmodSync(join(bin, n), 0o755);
    }
    // what the script itself needs to start
    for (const tool of ['dirname']) symlinkSync(findOnPath(tool)!, join(bin, tool));
    return bin;
  };
  const run = (path: string) => {
    writeFileSync(calls, '');
    const r = spawnSync(findOnPath('bash')!, [script], { encoding: 'utf8', env: { PATH: path, HOME: dir } });
    return { code: r.status, stderr: r.stderr, calls: readFileSync(calls, 'utf8') };
  };

  it('without kind: exit 1 naming kind and where to get it', () => {
    const r = run(stubs(['docker', 'kubectl', 'node', 'npm', 'curl']));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^kind-e2e\.sh: needs kind on PATH \(kind: https:\/\/kind\.sigs\.k8s\.io\//);
    expect(r.calls).toBe('');
  });
  it('without docker or kind: names both', () => {
    const r = run(stubs(['kubectl', 'node', 'npm', 'curl']));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs docker kind on PATH/);
  });
  it('with docker but no daemon (as on this machine): exit 1 saying so, no cluster created', () => {
    const r = run(stubs(['docker', 'kind', 'kubectl', 'node', 'npm', 'curl']));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/docker is installed but its daemon does not answer \(docker info failed\)/);
    // docker was asked, kind never was
    expect(r.calls.trim()).toBe('docker info');
  });
  it('an unknown option is a usage error (exit 2)', () => {
    const r = spawnSync(findOnPath('bash')!, [script, '--bogus'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^Usage: scripts\/kind-e2e\.sh/);
  });
});

describe('deploy/kind', () => {
  const cluster = yaml(join(repoRoot, 'deploy/kind/cluster.yaml'))[0] as { kind: string; apiVersion: string; nodes: { role: string; extraPortMappings: { containerPort: number; hostPort: number; listenAddress: string }[] }[] };
  const values = yaml(join(repoRoot, 'deploy/kind/values.yaml'))[0] as { gateway: { service: { type: string; ports: Record<string, unknown>[] } } };
  const chartPorts = (yaml(join(repoRoot, 'deploy/charts/gateway/values.yaml'))[0] as { service: { ports: Record<string, unknown>[] } }).service.ports;

  it('is a kind Cluster of one node publishing the gateway’s NodePorts on the host’s loopback', () => {
    expect(cluster).toMatchObject({ kind: 'Cluster', apiVersion: 'kind.x-k8s.io/v1alpha4' });
    expect(cluster.nodes.map((n) => n.role)).toEqual(['control-plane']);
    const nodePorts = Object.fromEntries(values.gateway.service.ports.map((p) => [p.name, p.nodePort]));
    expect(cluster.nodes[0]!.extraPortMappings).toEqual([
      { containerPort: nodePorts.http2, hostPort: 8080, listenAddress: '127.0.0.1', protocol: 'TCP' },
      { containerPort: nodePorts.https, hostPort: 8443, listenAddress: '127.0.0.1', protocol: 'TCP' },
    ]);
  });

  it('values: the gateway a NodePort with the chart’s own ports, each with a nodePort', () => {
    expect(values.gateway.service.type).toBe('NodePort');
    expect(values.gateway.service.ports.map(({ nodePort, ...rest }) => rest)).toEqual(chartPorts);
    for (const p of values.gateway.service.ports) expect(p.nodePort).toEqual(expect.any(Number));
  });
});

describe('deploy/addons/prometheus', () => {
  const local = yaml(join(repoRoot, 'deploy/addons/prometheus/local/kustomization.yaml'))[0] as { images: { name: string; newName: string; newTag: string }[] };
  const deployment = yaml(join(repoRoot, 'deploy/addons/prometheus/base/prometheus.yaml')).find((o) => (o as { kind: string }).kind === 'Deployment') as {
    spec: { template: { spec: { containers: { image: string; command?: string[] }[] } } };
  };
  const moduleVersion = /WEFT_PROMETHEUS_VERSION:-(v[0-9.]+)/.exec(readFileSync(join(repoRoot, 'deploy/images/prometheus.sh'), 'utf8'))![1]!;

  it('names the Prometheus release that weft/prometheus is built from, and the local overlay weftctl’s version of weft/prometheus', () => {
    // module v0.3MM.P is Prometheus 3.MM.P
    const [, minor, patch] = /^v0\.3(\d\d)\.(\d+)$/.exec(moduleVersion)!;
    const container = deployment.spec.template.spec.containers[0]!;
    expect(container.image).toBe(`prom/prometheus:v3.${Number(minor)}.${patch}`);
    // args only: both images start their own /bin/prometheus
    expect(container.command).toBeUndefined();
    expect(local.images).toEqual([{ name: 'prom/prometheus', newName: 'weft/prometheus', newTag: weftVersion() }]);
  });
});
