// The images: the same inputs give the same digests, and an archive is what ctr, kind and docker
// read (an OCI layout and docker's manifest.json, every blob named by its sha256), holding the
// running code and its production dependencies, not the tests or the dev tools.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isRoot, needs, noteSkip } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseYamlDocuments } from '@weft/model';
import { appPaths, type BuiltImage, buildImages, fullImageName, istioBookinfoVariants, readArchive, repoRoot, runtimeClosure, weftVersion } from './build.ts';

const tar = (...args: string[]) => {
  const r = spawnSync('tar', args, { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr.toString()}`);
  return r.stdout;
};

/** A frozen copy of what an image is made of: other engineers edit the checkout while this runs. */
function snapshot(to: string): void {
  for (const p of [...appPaths(repoRoot), 'node_modules/node/bin/node', 'deploy/kube-local/lib/mkrootfs-node.sh', 'apps/weftctl/package.json']) {
    const src = join(repoRoot, p);
    const dst = join(to, p);
    const st = lstatSync(src);
    mkdirSync(dirname(dst), { recursive: true });
    if (st.isDirectory()) mkdirSync(dst, { recursive: true });
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else copyFileSync(src, dst);
  }
}

const skip = needs({ tools: ['tar', 'ldd', 'bash'] });

describe.skipIf(skip !== undefined)('npm run images', () => {
  let dir: string;
  let first: BuiltImage;
  let second: BuiltImage;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-images-'));
    const root = join(dir, 'root');
    snapshot(root);
    first = (await buildImages({ root, outDir: join(dir, 'a'), only: ['weft/weftd'] }))[0]!;
    second = (await buildImages({ root, outDir: join(dir, 'b'), only: ['weft/weftd'] }))[0]!;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the same digest and the same bytes for the same inputs', () => {
    expect(first!.name).toBe(`docker.io/weft/weftd:${weftVersion()}`);
    expect(first!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(second!.digest).toBe(first!.digest);
    const sum = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(sum(second!.file)).toBe(sum(first!.file));
  });

  it('is an OCI layout with docker’s manifest.json, every blob named by its sha256', () => {
    const file = first!.file;
    const entries = tar('-tf', file).toString().trim().split('\n');
    expect(entries.slice(0, 3)).toEqual(['oci-layout', 'index.json', 'manifest.json']);
    const archive = readArchive(file);
    expect(archive).toEqual({ name: `docker.io/weft/weftd:${weftVersion()}`, digest: first!.digest, dockerTags: [`weft/weftd:${weftVersion()}`] });
    for (const blob of entries.filter((e) => e.startsWith('blobs/sha256/') && !e.endsWith('/'))) {
      expect(createHash('sha256').update(tar('-xOf', file, blob)).digest('hex'), blob).toBe(blob.split('/').pop());
    }
    const docker = JSON.parse(tar('-xOf', file, 'manifest.json').toString()) as { Config: string; Layers: string[] }[];
    const manifest = JSON.parse(tar('-xOf', file, `blobs/sha256/${first!.digest.slice(7)}`).toString()) as { config: { digest: string }; layers: { digest: string }[] };
    expect(docker[0]!.Config).toBe(`blobs/sha256/${manifest.config.digest.slice(7)}`);
    expect(docker[0]!.Layers).toEqual(manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`));
    const config = JSON.parse(tar('-xOf', file, docker[0]!.Config).toString()) as { config: { Entrypoint: string[]; User: string } };
    expect(config.config).toMatchObject({ Entrypoint: ['/usr/local/bin/weftd'], User: '1337:1337' });
  });

  it('holds node 24, the sources and production dependencies, and neither tests nor dev tools', () => {
    const docker = JSON.parse(tar('-xOf', first!.file, 'manifest.json').toString()) as { Layers: string[] }[];
    const [runtime, app] = docker[0]!.Layers;
    // a layer is a tar inside the archive: list it through a pipe
    const list = (layer: string) => {
      const r = spawnSync('sh', ['-c', `tar -xOf "$1" "$2" | tar -tvf -`, 'sh', first!.file, layer], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
      return r.stdout;
    };
    const rt = list(runtime!);
    expect(rt).toMatch(/-rwx.* 0\/0 .* 1970-01-01 00:00 \.\/usr\/bin\/node\n/);
    expect(rt).toMatch(/ \.\/usr\/local\/bin\/weft-iptables\n/);
    expect(rt).toMatch(/ \.\/usr\/sbin\/xtables-nft-multi\n/);
    const files = list(app!);
    expect(files).toMatch(/ app\/apps\/weftd\/src\/main\.ts\n/);
    expect(files).toMatch(/ app\/node_modules\/@weft\/pilot -> \.\.\/\.\.\/packages\/pilot\n/);
    expect(files).toMatch(/ app\/node_modules\/@grpc\/grpc-js\/package\.json\n/);
    expect(files).not.toMatch(/\.test\.ts\n/);
    expect(files).not.toMatch(/ app\/node_modules\/\S+\.(d\.ts|js\.map)\n/);
    expect(files).not.toMatch(/ app\/node_modules\/(vitest|typescript|nx|@biomejs)\//);
    expect(files).not.toMatch(/ app\/(e2e|bench)\//);
    // weftd's Kubernetes mode: the client where npm put it (packages/kube/node_modules)
    const { packages } = runtimeClosure(repoRoot);
    const clientNode = packages.find((p) => p.endsWith('node_modules/@kubernetes/client-node'));
    expect(clientNode).toBeDefined();
    expect(files).toContain(` app/${clientNode}/package.json\n`);
  });

  it.skipIf(!isRoot())('runs every command as Istio’s proxy user on the image’s own node and libraries (chroot)', () => {
    const rootfs = join(dir, 'rootfs');
    mkdirSync(rootfs);
    const docker = JSON.parse(tar('-xOf', first!.file, 'manifest.json').toString()) as { Layers: string[] }[];
    for (const layer of docker[0]!.Layers) {
      const r = spawnSync('sh', ['-c', 'tar -xOf "$1" "$2" | tar -xf - -C "$3"', 'sh', first!.file, layer, rootfs]);
      expect(r.status).toBe(0);
    }
    // every command loads its whole module graph from the production closure (a runtime module that
    // imports a devDependency fails here, not in a pod)
    for (const [command, banner] of [
      ['weftd', /^weftd: the Weft control plane/],
      ['weft-proxy', /^weft-proxy: /],
      ['weft-ingress', /^weft-ingress: the Weft ingress gateway/],
      ['weft-iptables', /weft-iptables/],
      ['weftctl', /^weftctl: operate a Weft mesh/],
      ['bookinfo', /bookinfo --service/],
    ] as const) {
      const r = spawnSync('chroot', ['--userspec=1337:1337', rootfs, `/usr/local/bin/${command}`, '--help'], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      expect(r.stderr, command).toBe('');
      expect(r.stdout, command).toMatch(banner);
      expect(r.status, command).toBe(0);
    }
  });

  it('names images as the kubelet expands them', () => {
    expect(fullImageName('weft/proxy', '1.2.3')).toBe('docker.io/weft/proxy:1.2.3');
    expect(fullImageName('busybox', '1')).toBe('docker.io/library/busybox:1');
    expect(fullImageName('registry.example:5000/weft/proxy', 'x')).toBe('registry.example:5000/weft/proxy:x');
  });
});

/**
 * Istio's bookinfo.yaml runs on Weft's images with only its image names mapped
 * (examples/bookinfo/platform/istio-images): the bookinfo archive holds, over the same layers, one
 * image per Istio image, whose environment names the service and version Istio's image runs.
 */
describe.skipIf(skip !== undefined)('npm run images: Istio’s BookInfo images', () => {
  const kustomization = join(repoRoot, 'examples/bookinfo/platform/istio-images/kustomization.yaml');
  const istioYaml = join(repoRoot, '../shared/reference/istio/samples/bookinfo/platform/kube/bookinfo.yaml');
  const mapping = () => (parseYamlDocuments(readFileSync(kustomization, 'utf8'), kustomization).documents[0]!.value as { images: { name: string; newName: string; newTag: string }[] }).images;

  it('the bookinfo archive holds weft/bookinfo and the six images the mapping names, sharing its layers, each with its service and version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-images-bookinfo-'));
    try {
      const [built] = await buildImages({ outDir: dir, only: ['weft/bookinfo'] });
      expect(built!.variants?.map((v) => v.name)).toEqual(mapping().map((m) => fullImageName(m.newName, m.newTag)));
      expect(mapping().every((m) => m.newTag === weftVersion())).toBe(true);
      const index = JSON.parse(tar('-xOf', built!.file, 'index.json').toString()) as { manifests: { digest: string; annotations: Record<string, string> }[] };
      expect(index.manifests.map((m) => m.annotations['io.containerd.image.name'])).toEqual([built!.name, ...built!.variants!.map((v) => v.name)]);
      const docker = JSON.parse(tar('-xOf', built!.file, 'manifest.json').toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
      expect(docker.map((d) => d.RepoTags[0])).toEqual(['weft/bookinfo', ...istioBookinfoVariants.map((v) => v.name)].map((n) => `${n}:${weftVersion()}`));
      expect(new Set(docker.map((d) => JSON.stringify(d.Layers))).size).toBe(1);
      for (const d of docker.slice(1)) {
        const env = (JSON.parse(tar('-xOf', built!.file, d.Config).toString()) as { config: { Env: string[] } }).config.Env;
        const [, service, version] = /examples-bookinfo-(\w+)-(v\d)/.exec(d.RepoTags[0]!)!;
        expect(env, d.RepoTags[0]).toEqual(expect.arrayContaining([`SERVICE=${service}`, `SERVICE_VERSION=${version}`, 'PORT=9080']));
        // reviews' ratings and star colour, as Istio's reviews-v1/v2/v3 Dockerfiles set them
        if (service === 'reviews') expect(env.filter((e) => /^(ENABLE_RATINGS|STAR_COLOR)=/.test(e))).toEqual({ v1: ['ENABLE_RATINGS=false'], v2: ['ENABLE_RATINGS=true', 'STAR_COLOR=black'], v3: ['ENABLE_RATINGS=true', 'STAR_COLOR=red'] }[version!]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(noteSkip(existsSync(istioYaml) ? undefined : `Istio's bookinfo.yaml is not in the reference data (${istioYaml})`) !== undefined)('the mapping covers every image of Istio’s bookinfo.yaml, and nothing else', () => {
    const images = [...readFileSync(istioYaml, 'utf8').matchAll(/^\s*image: (\S+?):[^\s:]+$/gm)].map((m) => m[1]);
    expect(images.length).toBe(6);
    expect(mapping().map((m) => m.name).sort()).toEqual([...new Set(images)].sort());
  });
});
