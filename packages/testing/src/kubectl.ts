// kubectl for tests outside @weft/kube (which alone imports the Kubernetes client): the tool a
// user types, against the test's kubeconfig.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOnPath } from './host.ts';
import { kubeLocalDir } from './kube.ts';

/** kubectl on PATH, else kube-local's; undefined when there is none. */
export function kubectlPath(): string | undefined {
  const local = join(kubeLocalDir(), 'bin', 'kubectl');
  return findOnPath('kubectl') ?? (existsSync(local) ? local : undefined);
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `kubectl <args>` with KUBECONFIG=`kubeconfig` (and `input` on stdin). Resolves with the
 * exit code and output; `kubectlOk` throws with stderr when the exit code is not 0.
 */
export function kubectl(kubeconfig: string, args: readonly string[], input?: string): Promise<KubectlResult> {
  const bin = kubectlPath();
  if (!bin) return Promise.reject(new Error(`no kubectl on PATH or in ${join(kubeLocalDir(), 'bin')}`));
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [...args], { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** `kubectl <args>`'s stdout; throws naming the command and its stderr when it fails. */
export async function kubectlOk(kubeconfig: string, args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(kubeconfig, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The CRDs model generates (Istio's and Gateway API's kinds). */
export const weftCrdsFile = fileURLToPath(new URL('../../../deploy/crds/crd-all.gen.yaml', import.meta.url));

/**
 * Installs (or updates) Weft's CRDs with server-side apply and waits until they are Established:
 * idempotent, so any test may call it (TEAM.md: CRDs are never deleted outside the exclusive lock).
 */
export async function installWeftCrds(kubeconfig: string): Promise<void> {
  await kubectlOk(kubeconfig, ['apply', '--server-side', '--force-conflicts', '--field-manager=weft-tests', '-f', weftCrdsFile]);
  // `kubectl wait` fails at once, instead of waiting, on a CRD whose status has no conditions yet
  // (the moment after it is created): ask again until every CRD says Established.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await kubectl(kubeconfig, ['get', 'crd', '-l', 'app.kubernetes.io/part-of=weft', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}']);
    const pending = r.code === 0 ? r.stdout.split('\n').filter((l) => l && !l.endsWith('=True')) : [`kubectl get crd exited ${r.code}: ${r.stderr.trim()}`];
    if (r.code === 0 && r.stdout.trim() && pending.length === 0) return;
    if (Date.now() > deadline) throw new Error(`Weft's CRDs not Established within 60 s: ${pending.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

