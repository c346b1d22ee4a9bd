// `npm run images`: Weft's container images as OCI archives in dist/images/*.tar, built without a
// Docker daemon or a registry, from what the checkout already has: the pinned Node 24
// (node_modules/node), the repository's sources and the production part of node_modules.
//
// Every image has the same two layers (so a cluster stores them once) and differs only in its
// config (entrypoint, user, ports):
//   1. the runtime: node, /bin/sh, iptables and ip with their shared libraries
//      (deploy/kube-local/lib/mkrootfs-node.sh), /etc/passwd with Istio's proxy user 1337, and
//      /usr/local/bin wrappers for each Weft command;
//   2. /app: the workspaces the images run, their production dependencies from package-lock.json
//      (the transitive closure of `dependencies`, as `npm ci --omit=dev` installs them), and
//      scripts/launch.js.
// weft/prometheus is the exception, built only when named: one layer of its own, a static prometheus
// (images/prometheus.sh), for the Prometheus addon on clusters that pull no image (deploy/addons).
// Reproducible: the same inputs give the same digests (entries sorted, mtime 0, owner root, modes
// normalized, no timestamps in the configs). Each archive is an OCI image layout (oci-layout,
// index.json naming the image with io.containerd.image.name) plus docker's manifest.json in one tar,
// which `ctr -n k8s.io images import`, `kind load image-archive` and `docker load` all read.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { arch } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The version the images are tagged with: weftctl's, so that `weftctl install` asks for images of its own version. */
export function weftVersion(root = repoRoot): string {
  return (JSON.parse(readFileSync(join(root, 'apps/weftctl/package.json'), 'utf8')) as { version: string }).version;
}

export interface ImageSpec {
  /** Short name without the tag, as users write it: weft/weftd. */
  name: string;
  entrypoint: string[];
  cmd?: string[];
  user?: string;
  env?: string[];
  ports?: number[];
  /** Default /app. */
  workdir?: string;
  description: string;
  /** What the image holds: Weft's runtime and /app layers (default), or prometheus alone. */
  contents?: 'weft' | 'prometheus';
  /** More images in the same archive, over the same layers: each a name of its own and more environment. */
  variants?: readonly ImageVariant[];
  /** Built only when named (`npm run images -- prometheus`), not in the default set. */
  byName?: boolean;
}

/** An image that differs from its archive's main image only by name and environment. */
export interface ImageVariant {
  name: string;
  env: string[];
  description: string;
}

/**
 * Istio's six BookInfo images (registry.istio.io/release/examples-bookinfo-<service>-<version>) as
 * Weft's: each knows from its own environment which service and version it runs, as Istio's do,
 * so Istio's bookinfo.yaml runs on them with only its image names mapped
 * (examples/bookinfo/platform/istio-images).
 */
export const istioBookinfoVariants: readonly ImageVariant[] = (
  [
    ['details', 'v1', []],
    ['ratings', 'v1', []],
    ['reviews', 'v1', ['ENABLE_RATINGS=false']],
    ['reviews', 'v2', ['ENABLE_RATINGS=true', 'STAR_COLOR=black']],
    ['reviews', 'v3', ['ENABLE_RATINGS=true', 'STAR_COLOR=red']],
    ['productpage', 'v1', []],
  ] as const
).map(([service, version, more]) => ({
  name: `weft/examples-bookinfo-${service}-${version}`,
  env: [`SERVICE=${service}`, `SERVICE_VERSION=${version}`, ...more],
  description: `BookInfo's ${service} ${version} (Istio's examples-bookinfo-${service}-${version})`,
}));

/** The images `npm run images` builds. The proxy image is also the init image (weft-iptables) and the ingress gateway's (weft-ingress). */
export const imageSpecs: readonly ImageSpec[] = [
  { name: 'weft/weftd', entrypoint: ['/usr/local/bin/weftd'], user: '1337:1337', ports: [15010, 15012, 15014, 15017], description: 'weftd, the control plane (pilot, citadel, webhooks)' },
  {
    name: 'weft/proxy',
    entrypoint: ['/usr/local/bin/weft-proxy'],
    user: '1337:1337',
    ports: [15001, 15006, 15020, 15021, 15090],
    description: 'weft-proxy (sidecar), weft-ingress (gateway) and weft-iptables (the init container)',
  },
  {
    name: 'weft/bookinfo',
    entrypoint: ['/usr/local/bin/bookinfo'],
    user: '1000:1000',
    ports: [9080],
    env: ['PORT=9080'],
    description: 'the BookInfo services (env SERVICE, SERVICE_VERSION); also Istio’s six BookInfo images as weft/examples-bookinfo-<service>-<version>',
    variants: istioBookinfoVariants,
  },
  // the upstream prom/prometheus image's layout (binary, user, working directory, default command), so
  // that the addon's Deployment runs either image with the same args; by name only: its first build
  // compiles Prometheus (minutes), and clusters with a registry use prom/prometheus
  {
    name: 'weft/prometheus',
    contents: 'prometheus',
    byName: true,
    entrypoint: ['/bin/prometheus'],
    cmd: ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'],
    user: '65534:65534',
    workdir: '/prometheus',
    ports: [9090],
    description: 'Prometheus with Kubernetes service discovery, for deploy/addons/prometheus',
  },
];

/** The workspaces the images run; their workspace dependencies come along (packages/kube: weftd's Kubernetes mode). */
const rootWorkspaces = ['apps/weftd', 'apps/proxy', 'apps/ingress', 'apps/weftctl', 'examples/bookinfo/apps', 'packages/kube'];

/** Commands on PATH in every image: /usr/local/bin/NAME runs /app/BIN on the image's node. */
const commands: Record<string, string> = {
  weftd: 'apps/weftd/bin/weftd.js',
  'weft-proxy': 'apps/proxy/bin/weft-proxy.js',
  'weft-ingress': 'apps/ingress/bin/weft-ingress.js',
  'weft-iptables': 'packages/proxy/bin/weft-iptables.js',
  weftctl: 'apps/weftctl/bin/weftctl.js',
  bookinfo: 'examples/bookinfo/apps/bin/bookinfo.js',
};

/** docker.io/library/ and docker.io/ prefixes and a tag, as the kubelet and containerd expand names. */
export function fullImageName(name: string, tag: string): string {
  const first = name.split('/')[0]!;
  const withDomain = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? name : `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  return `${withDomain}:${tag}`;
}

interface LockEntry {
  version?: string;
  resolved?: string;
  link?: boolean;
  dev?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * The lock keys (paths) of everything the root workspaces need at run time: the workspaces
 * themselves and each package reached through `dependencies`, `optionalDependencies` and
 * `peerDependencies`, found as Node finds them (the nearest node_modules up the tree). Optional
 * packages that are not installed (another platform's) are skipped.
 */
export function runtimeClosure(root: string, roots: readonly string[] = rootWorkspaces): { workspaces: string[]; packages: string[]; links: Map<string, string> } {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const entries = lock.packages;
  const workspaces = new Set<string>();
  const packages = new Set<string>();
  const links = new Map<string, string>();
  const find = (from: string, name: string): string | undefined => {
    let dir = from;
    for (;;) {
      const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
      if (entries[candidate]) return candidate;
      if (!dir) return undefined;
      const up = dirname(dir);
      dir = up === '.' ? '' : up;
    }
  };
  const queue = [...roots];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const key = queue.shift()!;
    if (seen.has(key)) continue;
    seen.add(key);
    const entry = entries[key];
    if (!entry) throw new Error(`package-lock.json has no entry ${key}: run npm install`);
    if (!key.includes('node_modules/')) workspaces.add(key);
    else packages.add(key);
    const wanted: [string, boolean][] = [
      ...Object.keys(entry.dependencies ?? {}).map((n): [string, boolean] => [n, false]),
      ...Object.keys(entry.optionalDependencies ?? {}).map((n): [string, boolean] => [n, true]),
      ...Object.keys(entry.peerDependencies ?? {}).map((n): [string, boolean] => [n, true]),
    ];
    for (const [name, optional] of wanted) {
      const at = find(key, name);
      if (!at || !existsSync(join(root, at))) {
        if (optional) continue;
        throw new Error(`${key} depends on ${name}, which is not installed: run npm ci`);
      }
      const target = entries[at]!;
      if (target.link) {
        if (!target.resolved) throw new Error(`package-lock.json: link ${at} names no target`);
        links.set(at, target.resolved);
        queue.push(target.resolved);
      } else queue.push(at);
    }
  }
  return { workspaces: [...workspaces].sort(), packages: [...packages].sort(), links };
}

/** Files of a workspace that tests and tools use, never the running code. */
function skipInWorkspace(name: string, isDir: boolean): boolean {
  if (isDir) return name === 'node_modules' || name === 'testdata' || name.startsWith('.');
  return name.endsWith('.test.ts') || /^vitest\.config\.[cm]?[jt]s$/.test(name) || name.startsWith('.');
}

/** Every path under `dir` (relative to `root`), directories included, not descending where `skip` says so. */
function walk(root: string, dir: string, skip: (name: string, isDir: boolean) => boolean, out: string[]): void {
  out.push(dir);
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${e.name}`;
    const isDir = e.isDirectory();
    if (skip(e.name, isDir)) continue;
    if (isDir) walk(root, path, skip, out);
    else out.push(path);
  }
}

/** The paths of the /app layer, relative to the repository (directories, files and symlinks). */
export function appPaths(root = repoRoot): string[] {
  const { workspaces, packages, links } = runtimeClosure(root);
  const paths = new Set<string>(['package.json', 'package-lock.json', 'scripts', 'scripts/launch.js', 'node_modules']);
  const add = (p: string) => {
    // parent directories first: a tar without them would leave their modes to the unpacker
    for (let d = dirname(p); d !== '.'; d = dirname(d)) paths.add(d);
    paths.add(p);
  };
  const out: string[] = [];
  for (const w of workspaces) walk(root, w, skipInWorkspace, out);
  // a package's own nested node_modules are other lock entries, in the closure or not; type
  // declarations and source maps are for editors and debuggers, never loaded (a third of the bytes)
  for (const p of packages) walk(root, p, (name, isDir) => (isDir ? name === 'node_modules' : /\.d\.[cm]?ts$|\.map$/.test(name)), out);
  for (const p of out) add(p);
  for (const link of links.keys()) add(link);
  return [...paths].sort(byteOrder);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

const tarFlags = ['--format=gnu', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--hard-dereference'];
/** The checkout's modes depend on the umask it was made with; the image's should not. */
const appModes = '--mode=u+w,go-w,a+rX';

function run(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { ...options, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} ... exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

interface Blob {
  digest: string;
  size: number;
  path: string;
  /** The image config's history entry. */
  createdBy: string;
}

/** Layer 1: the runtime root filesystem. */
async function runtimeLayer(root: string, work: string): Promise<Blob> {
  const rootfs = join(work, 'rootfs');
  const node = join(root, 'node_modules/node/bin/node');
  if (!existsSync(node)) throw new Error(`no pinned Node at ${node}: run npm ci`);
  run('bash', [join(root, 'deploy/kube-local/lib/mkrootfs-node.sh'), rootfs], { env: { ...process.env, NODE_BIN: node } });
  // Istio's proxy user, and the BookInfo apps' (Istio's samples run as 1000)
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nistio-proxy:x:1337:1337:istio-proxy:/nonexistent:/bin/sh\napp:x:1000:1000:app:/nonexistent:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nistio-proxy:x:1337:\napp:x:1000:\nnogroup:x:65534:\n');
  mkdirSync(join(rootfs, 'usr/local/bin'), { recursive: true });
  for (const [name, bin] of Object.entries(commands)) {
    writeFileSync(join(rootfs, 'usr/local/bin', name), `#!/bin/sh\nexec /usr/bin/node /app/${bin} "$@"\n`, { mode: 0o755 });
  }
  mkdirSync(join(rootfs, 'app'), { recursive: true });
  const layer = join(work, 'runtime.tar');
  run('tar', ['--sort=name', ...tarFlags, '-C', rootfs, '-cf', layer, '.']);
  rmSync(rootfs, { recursive: true, force: true });
  return { digest: await sha256File(layer), size: statSync(layer).size, path: layer, createdBy: 'deploy/images/build.ts: runtime (node, sh, iptables, ip)' };
}

/** Layer 2: /app, the sources and the production node_modules. */
async function appLayer(root: string, work: string): Promise<Blob> {
  const list = join(work, 'app.list');
  writeFileSync(list, `${appPaths(root).join('\n')}\n`);
  const layer = join(work, 'app.tar');
  run('tar', [...tarFlags, appModes, '--no-recursion', '--verbatim-files-from', '--transform=s,^,app/,S', '-C', root, '-cf', layer, '-T', list]);
  return { digest: await sha256File(layer), size: statSync(layer).size, path: layer, createdBy: 'deploy/images/build.ts: /app (sources, production node_modules)' };
}

/**
 * The prometheus binary weft/prometheus holds: $PROMETHEUS_BIN, else the one images/prometheus.sh
 * builds from the Go module proxy (cached; minutes the first time). Debian's package will not do: it
 * is built without Kubernetes service discovery, which the addon's scrape config is made of.
 */
function prometheusBinary(): string {
  if (process.env.PROMETHEUS_BIN) {
    if (!existsSync(process.env.PROMETHEUS_BIN)) throw new Error(`PROMETHEUS_BIN=${process.env.PROMETHEUS_BIN} does not exist`);
    return process.env.PROMETHEUS_BIN;
  }
  const r = spawnSync('bash', [fileURLToPath(new URL('./prometheus.sh', import.meta.url))], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`weft/prometheus: deploy/images/prometheus.sh exited ${r.status} (its message is above)`);
  return r.stdout.trim();
}

/**
 * The one layer of weft/prometheus: a static prometheus at /bin/prometheus, a default config, users
 * (the upstream image's layout), and no web UI (its assets come from a JavaScript build; the HTTP
 * API, which the tests, Grafana and Kiali use, is all there).
 */
async function prometheusLayer(work: string): Promise<{ layer: Blob; version: string }> {
  const bin = prometheusBinary();
  const version = /version (\S+)/.exec(run(bin, ['--version']))?.[1] ?? 'unknown';
  const rootfs = join(work, 'prometheus-rootfs');
  const file = (path: string, text: string) => {
    mkdirSync(dirname(join(rootfs, path)), { recursive: true });
    writeFileSync(join(rootfs, path), text);
  };
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync(bin, join(rootfs, 'bin/prometheus'));
  chmodSync(join(rootfs, 'bin/prometheus'), 0o755);
  file('/etc/passwd', 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  file('/etc/group', 'root:x:0:\nnogroup:x:65534:\n');
  file('/etc/nsswitch.conf', 'hosts: files dns\n');
  // what `docker run weft/prometheus` scrapes: itself, as the upstream image's default
  file('/etc/prometheus/prometheus.yml', 'global:\n  scrape_interval: 15s\nscrape_configs:\n- job_name: prometheus\n  static_configs:\n  - targets: [localhost:9090]\n');
  for (const d of ['prometheus', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
  normalizeModes(rootfs);
  // writable by any user: the image runs as nobody, a pod may run it as any UID
  for (const d of ['prometheus', 'tmp']) chmodSync(join(rootfs, d), 0o1777);
  const layer = join(work, 'prometheus.tar');
  run('tar', ['--sort=name', ...tarFlags, '-C', rootfs, '-cf', layer, '.']);
  rmSync(rootfs, { recursive: true, force: true });
  return { layer: { digest: await sha256File(layer), size: statSync(layer).size, path: layer, createdBy: `deploy/images/build.ts: prometheus ${version}` }, version };
}

/** Directories and executables 0755, other files 0644: the modes the checkout's umask gave them do not reach the image. */
function normalizeModes(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) normalizeModes(p);
    else if (e.isFile()) chmodSync(p, statSync(p).mode & 0o111 ? 0o755 : 0o644);
  }
}

export interface BuiltImage {
  /** Full name, as the kubelet asks for it: docker.io/weft/weftd:0.1.0. */
  name: string;
  /** The archive. */
  file: string;
  /** The manifest's digest: the image's identity (what `ctr images ls` and `crictl images --digests` show). */
  digest: string;
  /** The archive's size in bytes. */
  size: number;
  /** The other images of the same archive (ImageSpec.variants), by full name and manifest digest. */
  variants?: { name: string; digest: string }[];
}

export interface BuildOptions {
  root?: string;
  outDir?: string;
  tag?: string;
  /** Build only these short names (weft/weftd...). */
  only?: readonly string[];
  log?: (line: string) => void;
}

/** Builds the images into outDir (dist/images by default); one archive per image. */
export async function buildImages(options: BuildOptions = {}): Promise<BuiltImage[]> {
  const root = options.root ?? repoRoot;
  const outDir = resolve(options.outDir ?? join(root, 'dist/images'));
  const tag = options.tag ?? weftVersion(root);
  const log = options.log ?? (() => {});
  const specs = imageSpecs.filter((s) => (options.only ? options.only.includes(s.name) : !s.byName));
  if (options.only) for (const n of options.only) if (!imageSpecs.some((s) => s.name === n)) throw new Error(`no image ${n}; images: ${imageSpecs.map((s) => s.name).join(', ')}`);
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(outDir, '.build-'));
  try {
    const t0 = Date.now();
    const built: BuiltImage[] = [];
    if (specs.some((s) => (s.contents ?? 'weft') === 'weft')) {
      const runtime = await runtimeLayer(root, work);
      log(`runtime layer: ${mb(runtime.size)} (node ${run(join(root, 'node_modules/node/bin/node'), ['--version']).trim()}, sh, iptables, ip) sha256:${runtime.digest.slice(0, 12)}`);
      const app = await appLayer(root, work);
      log(`app layer: ${mb(app.size)} (sources and production node_modules) sha256:${app.digest.slice(0, 12)}`);
      for (const spec of specs) if ((spec.contents ?? 'weft') === 'weft') built.push(await writeArchive(spec, tag, [runtime, app], work, outDir));
    }
    const prometheusSpec = specs.find((s) => s.contents === 'prometheus');
    if (prometheusSpec) {
      const { layer, version } = await prometheusLayer(work);
      log(`prometheus layer: ${mb(layer.size)} (prometheus ${version}, static) sha256:${layer.digest.slice(0, 12)}`);
      built.push(await writeArchive({ ...prometheusSpec, description: prometheusSpec.description.replace('Prometheus', `Prometheus ${version}`) }, tag, [layer], work, outDir));
    }
    for (const b of built) log(`${b.name}: ${relative(process.cwd(), b.file) || b.file} ${mb(b.size)} ${b.digest}`);
    log(`${built.length} images in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return built;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const ociArch = (): string => (({ x64: 'amd64', arm64: 'arm64' }) as Record<string, string>)[arch()] ?? arch();

async function writeArchive(spec: ImageSpec, tag: string, layers: readonly Blob[], work: string, outDir: string): Promise<BuiltImage> {
  const full = fullImageName(spec.name, tag);
  const images = [{ name: spec.name, env: [] as string[], description: spec.description }, ...(spec.variants ?? [])].map((image) => {
    const config = {
      architecture: ociArch(),
      os: 'linux',
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...(spec.env ?? []), ...image.env],
        Entrypoint: spec.entrypoint,
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
        WorkingDir: spec.workdir ?? '/app',
        ...(spec.user ? { User: spec.user } : {}),
        ...(spec.ports ? { ExposedPorts: Object.fromEntries(spec.ports.map((p) => [`${p}/tcp`, {}])) } : {}),
        Labels: { 'org.opencontainers.image.title': image.name, 'org.opencontainers.image.version': tag, 'org.opencontainers.image.description': image.description },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${l.digest}`) },
      history: layers.map((l) => ({ created_by: l.createdBy })),
    };
    const configJson = JSON.stringify(config);
    const configDigest = sha256(configJson);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: Buffer.byteLength(configJson) },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${l.digest}`, size: l.size })),
    });
    return { name: image.name, full: fullImageName(image.name, tag), configJson, configDigest, manifest, manifestDigest: sha256(manifest) };
  });
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map((i) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${i.manifestDigest}`,
      size: Buffer.byteLength(i.manifest),
      platform: { architecture: ociArch(), os: 'linux' },
      // containerd's importer names the image after io.containerd.image.name; the OCI ref name is the tag
      annotations: { 'io.containerd.image.name': i.full, 'org.opencontainers.image.ref.name': tag },
    })),
  });
  // docker load (before Docker 25 it reads only this file) finds the images through manifest.json
  const dockerManifest = JSON.stringify(images.map((i) => ({ Config: `blobs/sha256/${i.configDigest}`, RepoTags: [`${i.name}:${tag}`], Layers: layers.map((l) => `blobs/sha256/${l.digest}`) })));
  const manifestDigest = images[0]!.manifestDigest;

  const dir = join(work, spec.name.replace(/\//g, '_'));
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  for (const l of layers) linkSync(l.path, join(blobs, l.digest));
  for (const i of images) {
    writeFileSync(join(blobs, i.configDigest), i.configJson);
    writeFileSync(join(blobs, i.manifestDigest), i.manifest);
  }
  writeFileSync(join(dir, 'index.json'), index);
  writeFileSync(join(dir, 'manifest.json'), dockerManifest);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const file = join(outDir, `${spec.name.split('/').pop()}.tar`);
  const tmp = `${file}.tmp`;
  run('tar', ['--sort=name', ...tarFlags, '-C', dir, '-cf', tmp, 'oci-layout', 'index.json', 'manifest.json', 'blobs']);
  renameSync(tmp, file);
  rmSync(dir, { recursive: true, force: true });
  const variants = images.slice(1).map((i) => ({ name: i.full, digest: `sha256:${i.manifestDigest}` }));
  return { name: full, file, digest: `sha256:${manifestDigest}`, size: statSync(file).size, ...(variants.length > 0 ? { variants } : {}) };
}

/** Reads an archive's image name and manifest digest back (what a loader will see). */
export function readArchive(file: string): { name: string; digest: string; dockerTags: string[] } {
  const index = JSON.parse(run('tar', ['-xOf', file, 'index.json'])) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const docker = JSON.parse(run('tar', ['-xOf', file, 'manifest.json'])) as { RepoTags: string[] }[];
  const m = index.manifests[0]!;
  return { name: m.annotations?.['io.containerd.image.name'] ?? '', digest: m.digest, dockerTags: docker[0]?.RepoTags ?? [] };
}

async function main(argv: readonly string[]): Promise<number> {
  const only: string[] = [];
  let outDir: string | undefined;
  let tag: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-o' || a === '--out-dir') outDir = argv[++i];
    else if (a === '--tag') tag = argv[++i];
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        `Usage: npm run images [-- [--out-dir DIR] [--tag TAG] [IMAGE...]]\nBuilds ${imageSpecs.filter((s) => !s.byName).map((s) => s.name).join(', ')} as OCI archives (default dist/images/*.tar, tag ${weftVersion()}).\nweft/prometheus only when named (its first build compiles Prometheus from the Go module proxy: minutes).\nLoad one: ctr -n k8s.io images import FILE | kind load image-archive FILE | docker load -i FILE\n`,
      );
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`images: unknown option ${a}\n`);
      return 2;
    } else only.push(a.includes('/') ? a : `weft/${a}`);
  }
  const built = await buildImages({ outDir, tag, only: only.length ? only : undefined, log: (l) => process.stderr.write(`images: ${l}\n`) });
  for (const b of built) process.stdout.write(`${b.name} ${b.digest} ${b.size} ${b.file}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`images: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
