// `weftctl kube-inject`: the webhook's injection, offline. Each Pod, and the pod template of each
// Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob in a YAML stream, is injected by
// injectPod with the same values weftd uses; every other document passes through unchanged.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { type Problem, parseYamlDocuments, toYaml } from '@weft/model';
import { injectPod, type PodParts } from './inject.ts';
import { InjectionError } from './template.ts';
import type { InjectionValues } from './values.ts';
import { type WorkloadRef, workloadOfPod } from './workload.ts';

export interface KubeInjectOptions {
  /** Namespace of objects that name none (default: default). */
  namespace?: string;
}

export interface KubeInjectEntry {
  kind: string;
  name: string;
  namespace: string;
  injected: boolean;
  /** Why a workload got no sidecar. */
  reason?: string;
}

export interface KubeInjectResult {
  /** The documents, injected where they hold a pod, as YAML separated by `---`. */
  output: string;
  /** One entry per workload document. */
  workloads: KubeInjectEntry[];
  /** Syntax errors and annotations the injector cannot honour, located in the input. */
  problems: Problem[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where each kind keeps its pod: the path to the pod template (empty for a Pod itself). */
const podPaths: Record<string, readonly string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

/** Injects every pod in `text` (YAML or JSON, one or more documents) read from `file`. */
export function kubeInject(text: string, file: string, values: InjectionValues, options: KubeInjectOptions = {}): KubeInjectResult {
  const parsed = parseYamlDocuments(text, file);
  const problems: Problem[] = [...parsed.problems];
  const workloads: KubeInjectEntry[] = [];
  const out: unknown[] = [];
  for (const doc of parsed.documents) {
    const v = doc.value;
    const kind = isObj(v) && typeof v.kind === 'string' ? v.kind : undefined;
    const path = kind !== undefined ? podPaths[kind] : undefined;
    if (!isObj(v) || kind === undefined || path === undefined) {
      out.push(v);
      continue;
    }
    const meta = (isObj(v.metadata) ? v.metadata : {}) as V1ObjectMeta;
    const namespace = meta.namespace ?? options.namespace ?? 'default';
    const name = meta.name ?? '';
    const at = path.reduce<unknown>((o, k) => (isObj(o) ? o[k] : undefined), v);
    if (!isObj(at)) {
      problems.push({ severity: 'error', path: path.join('.'), message: `${kind} ${name} has no pod template at ${path.join('.')}`, file, line: doc.source.line, column: doc.source.column, code: 'WEFT0003' });
      out.push(v);
      continue;
    }
    // A Pod is its own workload unless a controller made it, as the webhook sees it.
    const workload: WorkloadRef = kind === 'Pod' ? workloadOfPod(meta, namespace) : { apiVersion: typeof v.apiVersion === 'string' ? v.apiVersion : 'v1', kind, name, namespace };
    const pod = at as PodParts;
    // A Pod's own metadata carries its namespace; a template's is the workload's.
    const podMeta = { ...(pod.metadata ?? {}), namespace: pod.metadata?.namespace ?? namespace };
    try {
      const result = injectPod({ metadata: podMeta, ...(pod.spec ? { spec: pod.spec } : {}) }, values, workload);
      if (!result.injected) {
        workloads.push({ kind, name, namespace, injected: false, reason: result.reason });
        out.push(v);
        continue;
      }
      const injected = result.pod;
      // Keep the input's namespace as it was written (absent in a template, or in a Pod that names none).
      if (pod.metadata?.namespace === undefined) delete injected.metadata.namespace;
      out.push(path.length === 0 ? { ...v, metadata: injected.metadata, spec: injected.spec } : replaceAt(v, path, { ...pod, metadata: injected.metadata, spec: injected.spec }));
      workloads.push({ kind, name, namespace, injected: true });
    } catch (e) {
      if (!(e instanceof InjectionError)) throw e;
      const pos = doc.source.positionOf([...path, 'metadata', 'annotations']);
      for (const p of e.problems) problems.push({ severity: 'error', path: [...path, 'metadata', 'annotations'].join('.'), message: `${kind} ${name}: ${p}`, file, line: pos.line, column: pos.column, code: 'WEFT1201' });
      out.push(v);
    }
  }
  return { output: out.map((d) => toYaml(d)).join('---\n'), workloads, problems };
}

function replaceAt(root: Obj, path: readonly string[], value: unknown): Obj {
  const [head, ...rest] = path;
  const child = root[head!];
  return { ...root, [head!]: rest.length === 0 ? value : replaceAt(isObj(child) ? child : {}, rest, value) };
}
