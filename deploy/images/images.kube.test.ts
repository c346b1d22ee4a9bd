// An image archive loads into the cluster's containerd as kube-local's image.sh --load does
// (`ctr -n k8s.io images import`), and a pod runs from it: the BookInfo image, as user 1000, serves
// ratings on 9080 and turns Ready on its /health. A tag of its own, removed afterwards.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeCluster, kubeLocalDir, kubeLocalTool, needsKube, noteSkip, withClusterLock } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildImages, repoRoot } from './build.ts';

const containerdSocket = join(kubeLocalDir(), 'run/containerd/containerd.sock');
const skip =
  needsKube() ?? noteSkip(process.env.KUBECONFIG && !existsSync(containerdSocket) ? `needs kube-local's containerd (${containerdSocket}) to load images; this cluster is another one` : undefined);

// out is stdout alone: kubectl's own warnings on stderr (exec over websockets logs "Unknown stream id 1,
// discarding message" at times) are not the command's output; err carries them for failure messages.
function kubectl(kubeconfig: string, ...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync('kubectl', args, { encoding: 'utf8', env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 120_000 });
  return { code: r.status ?? 1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

describe.skipIf(skip !== undefined)('an image archive in the cluster', () => {
  let kubeconfig: string;
  let dir: string;
  let image: BuiltImage;
  let loaded: string[] = [];
  const tag = `imagetest-${Math.random().toString(36).slice(2, 8)}`;
  const ns = `weft-test-images-${Math.random().toString(36).slice(2, 8)}`;
  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    dir = mkdtempSync(join(tmpdir(), 'weft-images-kube-'));
    image = (await buildImages({ outDir: dir, tag, only: ['weft/bookinfo'] }))[0]!;
  });
  afterAll(() => {
    if (kubeconfig) kubectl(kubeconfig, 'delete', 'namespace', ns, '--wait=false', '--ignore-not-found');
    spawnSync('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'rm', ...new Set([`docker.io/weft/bookinfo:${tag}`, ...loaded])]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads with image.sh --load and runs a pod that turns Ready', () =>
    withClusterLock('shared', async () => {
      const load = spawnSync(join(kubeLocalTool, 'image.sh'), ['--load', image.file], { encoding: 'utf8', env: { ...process.env, KUBE_LOCAL_DIR: kubeLocalDir() } });
      expect(load.status, load.stderr).toBe(0);
      // one line per image in the archive: weft/bookinfo and the variants Istio's bookinfo.yaml names
      loaded = load.stdout.trim().split('\n');
      expect(loaded).toContain(`docker.io/weft/bookinfo:${tag}`);
      // containerd lists it under the manifest digest the build reported
      const listed = spawnSync('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'ls'], { encoding: 'utf8' }).stdout;
      expect(listed).toMatch(new RegExp(`docker\\.io/weft/bookinfo:${tag}\\s+\\S+\\s+${image.digest}`));

      expect(kubectl(kubeconfig, 'create', 'namespace', ns).code).toBe(0);
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'ratings', namespace: ns },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'ratings',
              image: `weft/bookinfo:${tag}`,
              imagePullPolicy: 'Never',
              env: [{ name: 'SERVICE', value: 'ratings' }],
              readinessProbe: { httpGet: { path: '/health', port: 9080 }, periodSeconds: 1 },
              securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false },
            },
          ],
        },
      };
      const applied = spawnSync('kubectl', ['apply', '-f', '-'], { input: JSON.stringify(pod), encoding: 'utf8', env: { ...process.env, KUBECONFIG: kubeconfig } });
      expect(applied.status, applied.stderr).toBe(0);
      const ready = kubectl(kubeconfig, 'wait', '-n', ns, 'pod/ratings', '--for=condition=Ready', '--timeout=90s');
      const why = ready.code === 0 ? '' : [kubectl(kubeconfig, 'describe', '-n', ns, 'pod/ratings'), kubectl(kubeconfig, 'logs', '-n', ns, 'ratings')].map((r) => `${r.out}${r.err}`).join('\n');
      expect(ready.code, why).toBe(0);
      const user = kubectl(kubeconfig, 'exec', '-n', ns, 'ratings', '--', 'node', '-p', 'process.getuid() + " " + process.version');
      const pinned = (JSON.parse(readFileSync(join(repoRoot, 'node_modules/node/package.json'), 'utf8')) as { version: string }).version;
      expect(user.out.trim(), user.err).toBe(`1000 v${pinned}`);
    }));
});
