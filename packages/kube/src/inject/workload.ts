// The workload a pod belongs to, for ISTIO_META_WORKLOAD_NAME and ISTIO_META_OWNER: Istio's
// heuristic over the controller reference (a ReplicaSet named <deployment>-<pod-template-hash> is
// its Deployment; a Job named <cronjob>-<8-10 digits> is its CronJob).
import type { V1ObjectMeta } from '@kubernetes/client-node';

export interface WorkloadRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
}

const cronJobName = /^(.+)-\d{8,10}$/;

/** The workload of a pod as the API server hands it to the webhook. */
export function workloadOfPod(metadata: V1ObjectMeta | undefined, namespace: string): WorkloadRef {
  const name = metadata?.name ?? '';
  const out: WorkloadRef = { apiVersion: 'v1', kind: 'Pod', name, namespace };
  if (!metadata?.generateName) return out;
  const controller = metadata.ownerReferences?.find((r) => r.controller === true);
  if (!controller) return out;
  out.apiVersion = controller.apiVersion;
  out.kind = controller.kind;
  out.name = controller.name;
  const hash = metadata.labels?.['pod-template-hash'];
  if (controller.kind === 'ReplicaSet' && hash && controller.name.endsWith(`-${hash}`)) {
    out.name = controller.name.slice(0, -(hash.length + 1));
    out.kind = 'Deployment';
    out.apiVersion = 'apps/v1';
  } else if (controller.kind === 'Job') {
    const m = cronJobName.exec(controller.name);
    if (m) {
      out.name = m[1]!;
      out.kind = 'CronJob';
      out.apiVersion = 'batch/v1';
    }
  }
  if (!out.name) out.name = name;
  return out;
}

/** Istio's ISTIO_META_OWNER value. */
export function ownerUri(w: WorkloadRef): string {
  return `kubernetes://apis/${w.apiVersion}/namespaces/${w.namespace || 'default'}/${w.kind.toLowerCase()}s/${w.name}`;
}
