// The Kubernetes tier of the tests: a real API server, reached only through a kubeconfig, so the
// same tests run against kube-local here, kind on a laptop or a cloud cluster.
//
// - KUBECONFIG set: that cluster is used as it is (never brought up or down here).
// - Otherwise, as root with Go on PATH: kube-local (deploy/kube-local, the project's copy of the
//   recipe) is built (5-10 min cold, cached in $KUBE_LOCAL_DIR) and brought up, once per machine,
//   under a lock so that test projects running side by side share one cluster. `npm test` brings it
//   up before the projects run and down after, when it was not up before (scripts/test.ts).
// - Otherwise the tests skip, saying why.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOnPath, isRoot, noteSkip } from './host.ts';

/** The project's copy of kube-local. */
export const kubeLocalTool = resolve(dirname(fileURLToPath(import.meta.url)), '../../../deploy/kube-local');

/** kube-local's state directory (binaries, images, Go caches, the kubeconfig while up). */
export function kubeLocalDir(): string {
  return resolve(process.env.KUBE_LOCAL_DIR ?? '/var/tmp/kube-local');
}

/** The kubeconfig kube-local writes while it is up. */
export function kubeLocalKubeconfig(): string {
  return join(kubeLocalDir(), 'kubeconfig');
}

/** Why tests that need a Kubernetes cluster cannot run here (undefined: they can). Nothing printed. */
export function kubeUnmet(env: NodeJS.ProcessEnv = process.env, root = isRoot()): string | undefined {
  if (env.KUBECONFIG) return existsSync(env.KUBECONFIG) ? undefined : `needs a Kubernetes cluster: KUBECONFIG=${env.KUBECONFIG} does not exist`;
  if (env.WEFT_TEST_KUBE === '0') return 'needs a Kubernetes cluster: WEFT_TEST_KUBE=0 turned the Kubernetes tier off';
  if (!root) return 'needs a Kubernetes cluster: set KUBECONFIG, or run as root so the tests bring up kube-local (sudo npm test)';
  if (!findOnPath('go')) return 'needs a Kubernetes cluster: kube-local builds Kubernetes with Go, and there is no `go` on PATH (install Go 1.26+, or set KUBECONFIG)';
  if (!existsSync(join(kubeLocalTool, 'up.sh'))) return `needs a Kubernetes cluster: no kube-local at ${kubeLocalTool}`;
  return undefined;
}

/** `noteSkip(kubeUnmet())`, for `describe.skipIf`. */
export function needsKube(): string | undefined {
  return noteSkip(kubeUnmet());
}

function run(script: string, args: readonly string[], onLine: (line: string) => void): Promise<{ code: number; stdout: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(join(kubeLocalTool, script), [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBE_LOCAL_DIR: kubeLocalDir() } });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    let pending = '';
    child.stderr.on('data', (b: Buffer) => {
      pending += b.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) onLine(l);
    });
    child.on('error', () => resolvePromise({ code: 127, stdout }));
    child.on('exit', (code) => resolvePromise({ code: code ?? 1, stdout }));
  });
}

/**
 * Runs `fn` holding a flock(1) lock on `file`, shared or exclusive (test projects run side by side,
 * each in its own processes). A shell takes the lock on its fd 3 and then becomes `cat` reading our
 * stdin, which keeps fd 3 (and so the lock) open: it goes away with this process even if this one is
 * killed before `finally` runs. Waits at most `waitMs`.
 */
async function withLock<T>(file: string, fn: () => Promise<T>, mode: 'shared' | 'exclusive' = 'exclusive', waitMs = 30 * 60_000): Promise<T> {
  mkdirSync(dirname(file), { recursive: true });
  const script = `exec 3>>"$1" && flock --${mode} --timeout ${Math.ceil(waitMs / 1000)} 3 && echo locked && exec cat >/dev/null`;
  const holder = spawn('sh', ['-c', script, 'lock', file], { stdio: ['pipe', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolveExit) => holder.once('exit', () => resolveExit()));
  await new Promise<void>((resolvePromise, reject) => {
    holder.stdout!.once('data', () => resolvePromise());
    holder.once('exit', (code) => reject(new Error(code === 1 ? `waited ${Math.round(waitMs / 1000)} s for the ${mode} lock ${file} (another test run holds it)` : `flock ${file} exited (${code})`)));
    holder.once('error', reject);
  });
  try {
    return await fn();
  } finally {
    holder.stdin!.end();
    await exited;
  }
}

/** The lock every Kubernetes-tier test holds while it uses the shared cluster. */
export function clusterLockFile(): string {
  return join(kubeLocalDir(), 'weft-cluster.lock');
}

/**
 * Runs `fn` holding the shared cluster's lock (TEAM.md, issue 12): `shared` for a test that only adds
 * and removes its own namespaces and uniquely named objects; `exclusive` for one that changes what the
 * whole cluster sees (deleting CRDs, stopping a weftd behind a cluster-wide webhook with failurePolicy
 * Fail). Never nest calls: a test holding `shared` that asks for `exclusive` waits for itself.
 */
export function withClusterLock<T>(mode: 'shared' | 'exclusive', fn: () => Promise<T>, options: { waitMs?: number } = {}): Promise<T> {
  return withLock(clusterLockFile(), fn, mode, options.waitMs);
}

/**
 * Takes the cluster lock for the length of a suite (beforeAll): resolves, once it is held, to the
 * function that releases it (afterAll), which resolves once the lock is given back.
 */
export function holdClusterLock(mode: 'shared' | 'exclusive', options: { waitMs?: number } = {}): Promise<() => Promise<void>> {
  return new Promise((acquired, failed) => {
    const held: Promise<void> = withClusterLock(
      mode,
      () =>
        new Promise<void>((release) =>
          acquired(async () => {
            release();
            await held;
          }),
        ),
      options,
    );
    held.catch(failed);
  });
}

/** Whether the API server of `kubeconfig` (kube-local's by default) answers /readyz now. */
export function clusterAnswers(kubeconfig = kubeLocalKubeconfig()): Promise<boolean> {
  if (!existsSync(kubeconfig)) return Promise.resolve(false);
  const text = readFileSync(kubeconfig, 'utf8');
  const server = /server:\s*(\S+)/.exec(text)?.[1];
  const caData = /certificate-authority-data:\s*(\S+)/.exec(text)?.[1];
  if (!server) return Promise.resolve(false);
  // /readyz is readable without credentials (system:public-info-viewer).
  return new Promise((resolvePromise) => {
    const req = httpsGet(`${server}/readyz`, { timeout: 3000, ...(caData ? { ca: Buffer.from(caData, 'base64') } : {}) }, (res) => {
      res.resume();
      resolvePromise(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolvePromise(false));
  });
}

/**
 * A kubeconfig for a running cluster: $KUBECONFIG when set, else kube-local's when it answers, else
 * kube-local built and brought up here (root). Progress lines go to `progress`. Throws with the reason when neither is possible.
 */
export async function kubeCluster(progress: (line: string) => void = (l) => console.error(l)): Promise<string> {
  const unmet = kubeUnmet();
  if (unmet) throw new Error(unmet);
  if (process.env.KUBECONFIG) return process.env.KUBECONFIG;
  // kube-local already up (a second test file, or a developer who did not export KUBECONFIG): up.sh would refuse
  if (await clusterAnswers()) return kubeLocalKubeconfig();
  return withLock(join(kubeLocalDir(), 'weft-tests.lock'), async () => {
    if (await clusterAnswers()) return kubeLocalKubeconfig();
    for (const [script, what] of [
      ['build.sh', 'building'],
      ['up.sh', 'starting'],
    ] as const) {
      const t0 = Date.now();
      const tail: string[] = [];
      const r = await run(script, [], (line) => {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        progress(`kube-local: ${line}`);
      });
      if (r.code !== 0) throw new Error(`kube-local ${script} failed (exit ${r.code}) after ${Math.round((Date.now() - t0) / 1000)} s while ${what} the cluster:\n${tail.join('\n')}`);
    }
    return kubeLocalKubeconfig();
  });
}

/** Takes kube-local down (down.sh), printing its progress. */
export async function kubeLocalDown(progress: (line: string) => void = (l) => console.error(l)): Promise<number> {
  const r = await run('down.sh', [], (line) => progress(`kube-local: ${line}`));
  return r.code;
}
