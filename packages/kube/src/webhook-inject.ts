// The mutating webhook (Istio's `sidecar-injector`): a Pod being created gets the sidecar as a JSON
// Patch, computed by the same injectPod that `weftctl kube-inject` runs offline.
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '@weft/model';
import { injectPod } from './inject/inject.ts';
import { podPatch } from './inject/patch.ts';
import { InjectionError } from './inject/template.ts';
import type { InjectionValues } from './inject/values.ts';
import { workloadOfPod } from './inject/workload.ts';
import { type AdmissionHandler, type AdmissionRequest, deny } from './webhook-admission.ts';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `/inject` handler; `values()` is read per request, so a change of settings applies to the next pod. */
export function injectionAdmission(values: () => InjectionValues, logger?: Logger): AdmissionHandler {
  return (request: AdmissionRequest) => {
    if (request.kind.group !== '' || request.kind.kind !== 'Pod' || request.operation !== 'CREATE' || request.subResource) return { allowed: true };
    const object = request.object;
    if (!isObj(object) || !isObj(object.spec) || !Array.isArray(object.spec.containers)) return deny('request.object is not a Pod (no spec.containers)');
    const pod = object as V1Pod;
    // A pod created from a template has no name or namespace yet: the request has the namespace.
    const namespace = pod.metadata?.namespace || request.namespace || 'default';
    const metadata = { ...(pod.metadata ?? {}), namespace };
    const who = `${namespace}/${pod.metadata?.name || `${pod.metadata?.generateName ?? ''}*`}`;
    let result: ReturnType<typeof injectPod>;
    try {
      result = injectPod({ metadata, spec: pod.spec! }, values(), workloadOfPod(metadata, namespace));
    } catch (e) {
      if (!(e instanceof InjectionError)) throw e;
      logger?.warn('sidecar injection refused', { pod: who, problems: e.problems });
      return deny(`sidecar injection failed for pod ${who}: ${e.message}`);
    }
    if (!result.injected) {
      logger?.info('sidecar not injected', { pod: who, reason: result.reason });
      return { allowed: true };
    }
    // The patch is relative to the object as received (whose namespace may be unset).
    const injected = { ...result.pod, metadata: { ...result.pod.metadata } };
    if (!pod.metadata?.namespace) delete injected.metadata.namespace;
    const patch = podPatch(pod, injected);
    logger?.info('sidecar injected', { pod: who });
    return { allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
  };
}
