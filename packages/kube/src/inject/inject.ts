// Injection of one pod (the webhook's for a Pod it is asked about, kube-inject's for a workload's
// pod template): the template's parts merged in, then what a template cannot do (Istio's
// postProcessPod): application probes moved to the status port, Prometheus annotations moved to the
// proxy for the merged metrics, the status annotation, the containers' order.
import type { V1Container, V1ObjectMeta, V1PodSpec } from '@kubernetes/client-node';
import { appProbersEnv, rewriteAppProbes } from './probes.ts';
import { injectionDecision } from './selection.ts';
import { canonicalLabels, InjectionError, initContainer, type PodSettings, podSettings, proxyContainer, sidecarVolumes } from './template.ts';
import { annotations as A, type InjectionValues, sidecar } from './values.ts';
import type { WorkloadRef } from './workload.ts';

/** A pod's metadata and spec (a Pod, or a workload's pod template). */
export interface PodParts {
  metadata?: V1ObjectMeta;
  spec?: V1PodSpec;
}

export type InjectionResult = { injected: true; pod: Required<PodParts> } | { injected: false; reason: string };

const prometheus = { scrape: 'prometheus.io/scrape', port: 'prometheus.io/port', path: 'prometheus.io/path' } as const;

/** Istio's merged metrics: the application's scrape settings go to the proxy, Prometheus scrapes 15020. */
function mergePrometheus(annotationsOut: Record<string, string>, proxy: V1Container, settings: PodSettings): void {
  if (!settings.mergeMetrics) return;
  const scrape = annotationsOut[prometheus.scrape];
  if (scrape !== undefined && ['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(scrape)) return;
  if (annotationsOut[prometheus.port] === String(sidecar.statusPort)) return;
  const app: Record<string, string> = {};
  for (const key of ['scrape', 'path', 'port'] as const) if (annotationsOut[prometheus[key]] !== undefined) app[key] = annotationsOut[prometheus[key]]!;
  if (app.port !== undefined) {
    const n = Number(app.port);
    if (!/^\d+$/.test(app.port) || n < 1 || n > 65535) throw new InjectionError([`annotation ${prometheus.port}: ${JSON.stringify(app.port)} is not a port number`]);
    if (n === sidecar.statusPort || n === sidecar.statsPort || n === sidecar.healthPort) throw new InjectionError([`annotation ${prometheus.port}: ${n} is the sidecar's own port`]);
  }
  if (Object.keys(app).length > 0) proxy.env!.push({ name: 'ISTIO_PROMETHEUS_ANNOTATIONS', value: JSON.stringify(app) });
  annotationsOut[prometheus.port] = String(sidecar.statusPort);
  annotationsOut[prometheus.path] = '/stats/prometheus';
  annotationsOut[prometheus.scrape] = 'true';
}

/** `sidecar.istio.io/status`: what was injected, in Istio's JSON (Go's nil slices are null). */
function statusAnnotation(init: V1Container[], containers: V1Container[], volumes: { name: string }[], revision: string): string {
  const names = (xs: { name: string }[]) => (xs.length > 0 ? xs.map((x) => x.name) : null);
  return JSON.stringify({ initContainers: names(init), containers: names(containers), volumes: names(volumes), imagePullSecrets: null, revision: revision || 'default' });
}

/** Moves the container named `name` to the front or the back, keeping the others' order. */
function move(list: V1Container[], name: string, where: 'first' | 'last'): V1Container[] {
  const found = list.find((c) => c.name === name);
  if (!found) return list;
  const rest = list.filter((c) => c !== found);
  return where === 'first' ? [found, ...rest] : [...rest, found];
}

/**
 * The pod with its sidecar, or why it gets none. `pod` is not modified. `namespace` is the pod's
 * (the request's, for a pod created from a template that names none). Throws InjectionError for
 * annotations the injector cannot honour.
 */
export function injectPod(pod: PodParts, values: InjectionValues, workload: WorkloadRef): InjectionResult {
  const metadata: V1ObjectMeta = structuredClone(pod.metadata ?? {});
  const spec: V1PodSpec = structuredClone(pod.spec ?? { containers: [] });
  const decision = injectionDecision({ ...metadata, namespace: metadata.namespace ?? workload.namespace }, spec);
  if (!decision.inject) return { injected: false, reason: decision.reason };
  const settings = podSettings(metadata, values);

  const init = initContainer(settings, values);
  const proxy = proxyContainer(metadata, spec, settings, values, workload);
  const volumes = sidecarVolumes(values);

  const labels = { ...(metadata.labels ?? {}), ...canonicalLabels(metadata.labels ?? {}, workload) };
  const annotationsOut: Record<string, string> = { ...(metadata.annotations ?? {}) };
  annotationsOut[A.revision] = values.revision || 'default';
  const firstApp = spec.containers.find((c) => c.name !== sidecar.proxyContainer)?.name;
  if (firstApp) {
    annotationsOut['kubectl.kubernetes.io/default-logs-container'] ??= firstApp;
    annotationsOut['kubectl.kubernetes.io/default-container'] ??= firstApp;
  }

  // A native sidecar starts after the capture rules are in, before the application's containers.
  spec.initContainers = [...(spec.initContainers ?? []), init, ...(settings.nativeSidecar ? [proxy] : [])];
  if (!settings.nativeSidecar) spec.containers = [...spec.containers, proxy];
  spec.volumes = [...(spec.volumes ?? []), ...volumes];

  mergePrometheus(annotationsOut, proxy, settings);
  if (settings.rewriteProbes) {
    const probers = rewriteAppProbes([...spec.initContainers, ...spec.containers], sidecar.proxyContainer, sidecar.statusPort);
    if (probers) proxy.env!.push({ name: appProbersEnv, value: JSON.stringify(probers) });
  }
  annotationsOut[A.status] = settings.nativeSidecar ? statusAnnotation([init, proxy], [], volumes, values.revision) : statusAnnotation([init], [proxy], volumes, values.revision);

  // The proxy goes last so that `kubectl exec` and `logs` pick the application, unless the
  // application must wait for it; capture is set up after the other init containers, which may need
  // the network without a proxy.
  spec.containers = move(spec.containers, sidecar.proxyContainer, settings.holdApplicationUntilProxyStarts ? 'first' : 'last');
  spec.initContainers = move(spec.initContainers, sidecar.initContainer, 'last');
  if (settings.nativeSidecar) spec.initContainers = move(spec.initContainers, sidecar.proxyContainer, 'last');

  return { injected: true, pod: { metadata: { ...metadata, labels, annotations: annotationsOut }, spec } };
}
