// Whether a pod gets a sidecar, by Istio's rules. Which namespaces are considered at all is the
// webhook configuration's business (namespaceSelector on `istio-injection=enabled` or
// `istio.io/rev`, objectSelector on the pod label), as in Istio; these are the rules the injector
// itself applies to every pod it is asked about, and that `weftctl kube-inject` applies offline.
import type { V1ObjectMeta, V1PodSpec } from '@kubernetes/client-node';
import { annotations } from './values.ts';

/** Namespaces never injected (Istio's IgnoredNamespaces, pkg/kube/inject). */
export const ignoredNamespaces: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'];

export interface InjectionDecision {
  inject: boolean;
  /** Why, in words a `weftctl kube-inject` user or a webhook log reader can act on. */
  reason: string;
}

/** Istio's injectRequired with the injection policy `enabled` (the namespace opted in). */
export function injectionDecision(metadata: V1ObjectMeta | undefined, spec: V1PodSpec | undefined): InjectionDecision {
  if (spec?.hostNetwork) return { inject: false, reason: 'the pod uses the host network (capture rules would change the node’s routing)' };
  const namespace = metadata?.namespace ?? '';
  if (ignoredNamespaces.includes(namespace)) return { inject: false, reason: `namespace ${namespace} is never injected` };
  if (metadata?.annotations?.[annotations.status] !== undefined) return { inject: false, reason: `the pod is already injected (it has ${annotations.status})` };
  if (spec?.containers?.some((c) => c.name === 'istio-proxy')) return { inject: false, reason: 'the pod already has a container named istio-proxy' };
  if (spec?.initContainers?.some((c) => c.name === 'istio-proxy')) return { inject: false, reason: 'the pod already has an init container (native sidecar) named istio-proxy' };
  // The label is the newer API; when both are set, it wins.
  const label = metadata?.labels?.[annotations.inject];
  const value = label ?? metadata?.annotations?.[annotations.inject];
  const where = label !== undefined ? 'label' : 'annotation';
  if (value === 'false') return { inject: false, reason: `${where} ${annotations.inject}: "false"` };
  if (value === 'true') return { inject: true, reason: `${where} ${annotations.inject}: "true"` };
  if (value !== undefined && value !== '') return { inject: true, reason: `${where} ${annotations.inject}: ${JSON.stringify(value)} is neither "true" nor "false"; the namespace's policy applies` };
  return { inject: true, reason: 'the namespace’s policy (injection enabled)' };
}
