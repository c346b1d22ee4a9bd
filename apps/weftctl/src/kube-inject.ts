// `weftctl kube-inject`: the sidecar injection weftd's webhook does, offline (no cluster), from the
// same template code (@weft/kube), so `weftctl kube-inject -f app.yaml | kubectl apply -f -` gives
// the pods the webhook would.
import { readFile } from 'node:fs/promises';
import { formatProblem } from '@weft/model';

export const kubeInjectUsage = `  weftctl kube-inject -f FILE [-n NAMESPACE] [--system-namespace NS] [--proxy-image IMAGE]
      Print FILE's Kubernetes objects with the Weft sidecar injected into each Pod and the pod template of
      each Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob, as weftd's webhook would (- reads stdin).`;

export const kubeInjectFlags = ['filename', 'namespace', 'system-namespace', 'proxy-image'] as const;

export interface KubeInjectCommand {
  files: readonly string[];
  namespace?: string | undefined;
  systemNamespace?: string | undefined;
  proxyImage?: string | undefined;
}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Thrown for a bad command line (exit 2). */
export class KubeInjectUsageError extends Error {}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function kubeInjectCommand(c: KubeInjectCommand, io: Io): Promise<number> {
  if (c.files.length !== 1) throw new KubeInjectUsageError('kube-inject needs exactly one -f FILE (- for stdin)');
  const file = c.files[0]!;
  if (c.systemNamespace !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(c.systemNamespace)) throw new KubeInjectUsageError(`--system-namespace must be a namespace name, not ${JSON.stringify(c.systemNamespace)}`);
  if (c.proxyImage === '') throw new KubeInjectUsageError('--proxy-image needs an image name');
  let text: string;
  try {
    text = await readInput(file);
  } catch (e) {
    io.err(`weftctl: cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`);
    return 1;
  }
  // Loaded on use: the Kubernetes client library is not needed by any other command.
  const { defaultInjectionValues, kubeInject } = await import('@weft/kube');
  const values = defaultInjectionValues({
    ...(c.systemNamespace ? { discoveryAddress: `weftd.${c.systemNamespace}.svc:15012` } : {}),
    ...(c.proxyImage ? { proxyImage: c.proxyImage } : {}),
  });
  const result = kubeInject(text, file === '-' ? '<stdin>' : file, values, c.namespace ? { namespace: c.namespace } : {});
  for (const p of result.problems) io.err(`${formatProblem(p)}\n`);
  if (result.problems.some((p) => p.severity === 'error')) return 1;
  for (const w of result.workloads) if (!w.injected) io.err(`weftctl: ${w.kind} ${w.namespace}/${w.name}: not injected: ${w.reason}\n`);
  io.out(result.output);
  return 0;
}
