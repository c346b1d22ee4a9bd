// The status conditions the Gateway API defines (gateway.networking.k8s.io/v1), as the conversion
// computes them. Writing them to the API server is @weft/kube's (gateway-status.ts); local mode
// shows them in weftd's /debug/gateway_api_status.

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  /** The metadata.generation the condition was computed from. */
  observedGeneration?: number;
}

export interface GroupKindRef {
  group: string;
  kind: string;
}

export interface ListenerStatus {
  name: string;
  supportedKinds: GroupKindRef[];
  attachedRoutes: number;
  conditions: Condition[];
}

export interface GatewayStatus {
  conditions: Condition[];
  listeners: ListenerStatus[];
  addresses?: { type: string; value: string }[];
}

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface RouteParentStatus {
  parentRef: ParentReference;
  controllerName: string;
  conditions: Condition[];
}

export interface RouteStatus {
  parents: RouteParentStatus[];
}

export interface GatewayClassStatus {
  conditions: Condition[];
}

/** One object's computed status: `kind` is the Gateway API kind (GatewayClass, Gateway, HTTPRoute, GRPCRoute). */
export interface ObjectStatus {
  kind: string;
  namespace: string;
  name: string;
  generation?: number;
  status: GatewayStatus | RouteStatus | GatewayClassStatus;
}

/** Reasons of the spec (gateway.networking.k8s.io/v1 ...ConditionReason). */
export const Reason = {
  accepted: 'Accepted',
  listenersNotValid: 'ListenersNotValid',
  programmed: 'Programmed',
  resolvedRefs: 'ResolvedRefs',
  invalid: 'Invalid',
  invalidParameters: 'InvalidParameters',
  notAllowedByListeners: 'NotAllowedByListeners',
  noMatchingListenerHostname: 'NoMatchingListenerHostname',
  noMatchingParent: 'NoMatchingParent',
  unsupportedValue: 'UnsupportedValue',
  backendNotFound: 'BackendNotFound',
  invalidKind: 'InvalidKind',
  refNotPermitted: 'RefNotPermitted',
  unsupportedProtocol: 'UnsupportedProtocol',
  invalidCertificateRef: 'InvalidCertificateRef',
  invalidRouteKinds: 'InvalidRouteKinds',
  noConflicts: 'NoConflicts',
  protocolConflict: 'ProtocolConflict',
  hostnameConflict: 'HostnameConflict',
  addressNotAssigned: 'AddressNotAssigned',
  pending: 'Pending',
} as const;

export function condition(type: string, ok: boolean, reason: string, message: string, generation?: number): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}

/** `Gateway ns/name`: the key of statuses in the conversion's output. */
export function statusKey(kind: string, namespace: string, name: string): string {
  return `${kind} ${namespace}/${name}`;
}
