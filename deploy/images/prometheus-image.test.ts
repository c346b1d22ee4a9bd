// weft/prometheus: the same inputs give the same image, laid out as the upstream prom/prometheus
// (so the addon's Deployment runs either with the same args), and its one layer is all the binary
// needs: it runs chrooted into it, as nobody, with Kubernetes discovery compiled in.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, needs, noteSkip } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildImages, readArchive } from './build.ts';

const skip =
  needs({ tools: ['tar'] }) ?? noteSkip(spawnSync('go', ['version']).status === 0 || process.env.PROMETHEUS_BIN ? undefined : 'needs Go 1.26+ to build prometheus (deploy/images/prometheus.sh), or PROMETHEUS_BIN');
const tar = (...args: string[]) => spawnSync('tar', args, { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 }).stdout;
const blob = (file: string, digest: string) => tar('-xOf', file, `blobs/sha256/${digest.replace('sha256:', '')}`);

describe.skipIf(skip !== undefined)('weft/prometheus', () => {
  let dir: string;
  let first: BuiltImage;
  let second: BuiltImage;
  let config: { config: { Entrypoint: string[]; Cmd: string[]; User: string; WorkingDir: string; Labels: Record<string, string> } };
  let layer: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-prometheus-image-'));
    first = (await buildImages({ outDir: join(dir, 'a'), tag: 'test', only: ['weft/prometheus'] }))[0]!;
    second = (await buildImages({ outDir: join(dir, 'b'), tag: 'test', only: ['weft/prometheus'] }))[0]!;
    const manifest = JSON.parse(blob(first.file, first.digest).toString()) as { config: { digest: string }; layers: { digest: string }[] };
    config = JSON.parse(blob(first.file, manifest.config.digest).toString());
    expect(manifest.layers).toHaveLength(1);
    layer = join(dir, 'layer.tar');
    writeFileSync(layer, blob(first.file, manifest.layers[0]!.digest));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is the same image from the same inputs, named as the kubelet asks for it', () => {
    expect(second.digest).toBe(first.digest);
    expect(readFileSync(second.file).equals(readFileSync(first.file))).toBe(true);
    expect(readArchive(first.file)).toMatchObject({ name: 'docker.io/weft/prometheus:test', dockerTags: ['weft/prometheus:test'] });
  });

  it('has the upstream image’s layout: /bin/prometheus, user nobody, /prometheus, the same default command', () => {
    expect(config.config).toMatchObject({ Entrypoint: ['/bin/prometheus'], Cmd: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'], User: '65534:65534', WorkingDir: '/prometheus' });
    expect(config.config.Labels['org.opencontainers.image.description']).toMatch(/^Prometheus 3\.\d+\.\d+ with Kubernetes service discovery/);
    const entries = tar('-tvf', layer).toString();
    expect(entries).toMatch(/^-rwxr-xr-x 0\/0 .* \.\/bin\/prometheus$/m);
    expect(entries).toMatch(/^drwxrwxrwt 0\/0 .* \.\/prometheus\/$/m);
    expect(entries).toMatch(/ \.\/etc\/prometheus\/prometheus\.yml$/m);
  });

  it.skipIf(!isRoot())('runs from its own layer alone, as nobody, with Kubernetes discovery compiled in', () => {
    const root = join(dir, 'rootfs');
    mkdirSync(root);
    expect(spawnSync('tar', ['-C', root, '-xf', layer]).status).toBe(0);
    const version = spawnSync('chroot', ['--userspec=65534:65534', root, '/bin/prometheus', '--version'], { encoding: 'utf8' });
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^prometheus, version 3\.\d+\.\d+ /);
    expect(version.stdout).toMatch(/tags: +remove_all_sd,enable_kubernetes_sd/);
  });
});
