// The images the suite's manifests name, built here from Go modules (no registry is reachable) and
// imported into kube-local's containerd under exactly those names, so that no pod ever pulls
// (their imagePullPolicy is IfNotPresent, explicitly or by a tag other than :latest).
//
//   echo-basic     sigs.k8s.io/gateway-api/conformance/echo-basic, from this directory's go.mod
//                  (the suite's own version): the HTTP/gRPC backend of every Gateway test
//   echo-advanced  Istio's echo app (server in the pod, client run through kubectl exec by the mesh
//                  tests), from echo-advanced/go.mod: what gcr.io/istio-release/app, the image
//                  upstream tags as echo-advanced, contains
//   coredns        CoreDNS with the plugins the base manifests' Corefile names, from coredns/go.mod
//
// Build output goes to a directory under the OS temp dir; Go's build cache makes a second build fast.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { kubeLocalDir, kubeLocalTool } from '@weft/testing';

export const moduleDir = resolve(import.meta.dirname, '..');

/** Where Go is: $GO, else /usr/local/go/bin/go when present, else `go` on PATH. */
export function goBinary(): string {
  return process.env.GO ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go');
}

/** Why Go cannot build the suite here (undefined: it can). go.mod asks for 1.26 and GOTOOLCHAIN is local. */
export function goUnmet(): string | undefined {
  const r = spawnSync(goBinary(), ['env', 'GOVERSION'], { encoding: 'utf8' });
  const v = /^go(\d+)\.(\d+)/.exec(r.stdout?.trim() ?? '');
  const install = 'install Go 1.26+ from https://go.dev/dl/ (Debian\'s golang-go is older), or set GO=/path/to/go';
  if (r.status !== 0 || !v) return `needs Go to build the conformance suite and its images (${goBinary()} did not run): ${install}`;
  if (Number(v[1]) === 1 && Number(v[2]) < 26) return `needs Go 1.26+ to build the conformance suite (${goBinary()} is ${r.stdout.trim()}): ${install}`;
  return undefined;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; stderr lines go to `onLine` as they come (progress of long builds). */
export function runCommand(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, [...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGTERM'), options.timeoutMs) : undefined;
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      const s = b.toString();
      stderr += s;
      if (!options.onLine) return;
      pending += s;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) options.onLine(l);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

async function goBuild(module: string, out: string, packages: readonly string[], onLine: (l: string) => void): Promise<void> {
  const t0 = Date.now();
  const r = await runCommand(goBinary(), ['build', '-trimpath', '-ldflags=-s -w', '-o', out, ...packages], {
    cwd: module,
    env: { CGO_ENABLED: '0', GOFLAGS: '-mod=readonly', GOTOOLCHAIN: 'local' },
  });
  if (r.code !== 0) throw new Error(`go build ${packages.join(' ')} (in ${module}) failed:\n${r.stderr.slice(-4000)}`);
  onLine(`built ${packages.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** `go list -m -f {{.Dir}} <module>` in `cwd`: where a dependency's source is (downloading it if needed). */
export async function moduleSource(cwd: string, module: string): Promise<string> {
  const r = await runCommand(goBinary(), ['list', '-m', '-f', '{{.Dir}}', module], { cwd, env: { GOFLAGS: '-mod=readonly', GOTOOLCHAIN: 'local' } });
  const dir = r.stdout.trim();
  if (r.code !== 0 || !dir) throw new Error(`go list -m ${module} failed: ${r.stderr.trim()}`);
  return dir;
}

/** Every image name the suite's manifests (base, mesh, tests) reference, read from the module's source. */
export async function referencedImages(): Promise<string[]> {
  const conformance = await moduleSource(moduleDir, 'sigs.k8s.io/gateway-api/conformance');
  const names = new Set<string>();
  for (const dir of ['base', 'mesh', 'tests']) {
    for (const f of readdirSync(join(conformance, dir))) {
      if (!f.endsWith('.yaml')) continue;
      for (const m of readFileSync(join(conformance, dir, f), 'utf8').matchAll(/^\s*image:\s*(\S+)\s*$/gm)) names.add(m[1] as string);
    }
  }
  return [...names].sort();
}

/** The image families this harness builds, by the names the manifests give them. */
export const imageFamilies = {
  'echo-basic': (name: string) => name.startsWith('registry.k8s.io/gateway-api/echo-basic:'),
  'echo-advanced': (name: string) => name.startsWith('registry.k8s.io/gateway-api/echo-advanced:'),
  coredns: (name: string) => name.startsWith('registry.k8s.io/coredns/coredns:'),
} as const;

/** Which family a referenced image name is (undefined: none this harness builds). */
export function imageFamily(name: string): keyof typeof imageFamilies | undefined {
  return (Object.keys(imageFamilies) as (keyof typeof imageFamilies)[]).find((f) => imageFamilies[f](name));
}

interface ImageSpec {
  rootfs: string;
  entrypoint: string;
  user?: string;
}

async function importImage(spec: ImageSpec, name: string): Promise<void> {
  const args = ['--entrypoint', spec.entrypoint, ...(spec.user ? ['--user', spec.user] : []), spec.rootfs, name];
  const r = await runCommand(join(kubeLocalTool, 'image.sh'), args, { env: { KUBE_LOCAL_DIR: kubeLocalDir() } });
  if (r.code !== 0) throw new Error(`image.sh ${name} failed:\n${r.stderr.slice(-2000)}`);
}

/**
 * Builds the three images and imports each under every name the manifests reference. Returns the
 * names imported; throws naming a referenced image it cannot provide.
 */
export async function buildAndImportImages(onLine: (line: string) => void = (l) => console.error(l)): Promise<string[]> {
  const work = join(tmpdir(), 'weft-gateway-conformance');
  rmSync(join(work, 'rootfs'), { recursive: true, force: true });
  const rootfs = (name: string) => {
    const dir = join(work, 'rootfs', name);
    mkdirSync(join(dir, 'etc'), { recursive: true });
    mkdirSync(join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
    return dir;
  };

  const echoBasic = rootfs('echo-basic');
  await goBuild(moduleDir, join(echoBasic, 'echo-basic'), ['sigs.k8s.io/gateway-api/conformance/echo-basic'], onLine);
  // distroless/static:nonroot's user, as upstream's image runs
  writeFileSync(join(echoBasic, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');

  const advanced = rootfs('echo-advanced');
  const advancedModule = join(moduleDir, 'echo-advanced');
  mkdirSync(join(advanced, 'usr/local/bin'), { recursive: true });
  await goBuild(advancedModule, join(advanced, 'usr/local/bin/'), ['istio.io/istio/pkg/test/echo/cmd/server', 'istio.io/istio/pkg/test/echo/cmd/client'], onLine);
  // Istio's Dockerfile.app: the DNS test certificate as the server's TLS pair, user 1338
  const istio = await moduleSource(advancedModule, 'istio.io/istio');
  cpSync(join(istio, 'tests/testdata/certs/dns/cert-chain.pem'), join(advanced, 'cert.crt'));
  cpSync(join(istio, 'tests/testdata/certs/dns/key.pem'), join(advanced, 'cert.key'));
  writeFileSync(join(advanced, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\napplication:x:1338:1338::/home/application:/sbin/nologin\n');
  mkdirSync(join(advanced, 'home/application'), { recursive: true });

  const coredns = rootfs('coredns');
  await goBuild(join(moduleDir, 'coredns'), join(coredns, 'coredns'), ['.'], onLine);
  writeFileSync(join(coredns, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\n');

  const specs: Record<keyof typeof imageFamilies, ImageSpec> = {
    'echo-basic': { rootfs: echoBasic, entrypoint: '["/echo-basic"]', user: '65532:65532' },
    'echo-advanced': { rootfs: advanced, entrypoint: '["/usr/local/bin/server"]', user: '1338:1338' },
    coredns: { rootfs: coredns, entrypoint: '["/coredns"]' },
  };
  const names = await referencedImages();
  for (const name of names) {
    const family = imageFamily(name);
    if (!family) throw new Error(`the suite's manifests reference ${name}, which this harness does not build`);
    await importImage(specs[family], name);
    onLine(`imported ${name}`);
  }
  return names;
}
