/**
 * Every kind Weft knows, in one explicit list. Importing this module has no side effects.
 */
import type { KindSchema } from '../schema/dsl.ts';
import { gatewayClassKind, grpcRouteKind, httpRouteKind, k8sGatewayKind, referenceGrantKind } from './gateway-api.ts';
import { configMapKind, deploymentKind, namespaceKind, podKind, secretKind, serviceAccountKind, serviceKind } from './kubernetes.ts';
import { destinationRuleKind, gatewayKind, serviceEntryKind, sidecarKind, virtualServiceKind, workloadEntryKind } from './networking.ts';
import { authorizationPolicyKind, peerAuthenticationKind, requestAuthenticationKind } from './security.ts';

export { gatewayClassKind, grpcRouteKind, httpRouteKind, k8sGatewayKind, referenceGrantKind } from './gateway-api.ts';
export { configMapKind, deploymentKind, namespaceKind, podKind, secretKind, serviceAccountKind, serviceKind } from './kubernetes.ts';
export { destinationRuleKind, gatewayKind, serviceEntryKind, sidecarKind, virtualServiceKind, workloadEntryKind } from './networking.ts';
export { authorizationPolicyKind, peerAuthenticationKind, requestAuthenticationKind } from './security.ts';

export const allKinds: readonly KindSchema[] = [
  // networking.istio.io
  virtualServiceKind,
  destinationRuleKind,
  gatewayKind,
  serviceEntryKind,
  workloadEntryKind,
  sidecarKind,
  // security.istio.io
  peerAuthenticationKind,
  authorizationPolicyKind,
  requestAuthenticationKind,
  // gateway.networking.k8s.io
  gatewayClassKind,
  k8sGatewayKind,
  httpRouteKind,
  grpcRouteKind,
  referenceGrantKind,
  // Kubernetes built-ins
  namespaceKind,
  serviceKind,
  serviceAccountKind,
  podKind,
  configMapKind,
  secretKind,
  deploymentKind,
];
