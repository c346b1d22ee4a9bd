// The one place a kubeconfig becomes a client: everything in this package (and nothing outside it)
// talks to the API server through @kubernetes/client-node, reached only through a kubeconfig, so
// the same code runs against kube-local, kind or a cloud cluster.
import { KubeConfig } from '@kubernetes/client-node';

/** A KubeConfig from `path`, else $KUBECONFIG, else in-cluster (a pod's service account), else ~/.kube/config. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error(path ? `kubeconfig ${path} names no current cluster` : 'no kubeconfig: set KUBECONFIG or run inside a pod');
  return kc;
}

/** The API server's address, for messages. */
export function apiServerOf(kc: KubeConfig): string {
  return kc.getCurrentCluster()?.server ?? '(unknown)';
}

/** The HTTP status of a failed API call (client-node's ApiException), e.g. 404 or 409; undefined for other errors. */
export function apiStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  return typeof e.statusCode === 'number' ? e.statusCode : undefined;
}
