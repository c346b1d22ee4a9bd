/**
 * Built-in Kubernetes kinds Weft reads (no CRDs are generated for these): core/v1 Namespace,
 * Service, ServiceAccount, Pod, ConfigMap, Secret and apps/v1 Deployment.
 *
 * Only the parts the mesh uses are typed; the rest of a pod spec is accepted as-is
 * (`x-kubernetes-preserve-unknown-fields`). ServiceAccount, ConfigMap and Secret keep their body
 * at the top level of the object rather than under `spec`; see `bodyAtTopLevel`.
 */
import { anyObject, arr, bool, enumOf, int32, type KindSchema, obj, type Schema, str, strMap } from '../schema/dsl.ts';

const strList = (description?: string): Schema => arr(str(), description);
const intOrString = (description?: string): Schema => ({ 'x-kubernetes-int-or-string': true, ...(description ? { description } : {}) });

// ---------------------------------------------------------------------------------------------
// Shared meta types
// ---------------------------------------------------------------------------------------------

export const k8sLabelSelectorRequirement = obj(
  'K8sLabelSelectorRequirement',
  {
    key: str('Label key.'),
    operator: enumOf(['In', 'NotIn', 'Exists', 'DoesNotExist'], 'How the key relates to the values.'),
    values: strList('Values for In and NotIn.'),
  },
  { required: ['key', 'operator'] },
);

/** metav1.LabelSelector. */
export const k8sLabelSelector = obj('K8sLabelSelector', {
  matchLabels: strMap('Labels that must all match.'),
  matchExpressions: arr(k8sLabelSelectorRequirement, 'Requirements that must all match.'),
});

const k8sLocalObjectReference = obj('K8sLocalObjectReference', {
  name: str('Name of the referent in the same namespace.'),
});

// ---------------------------------------------------------------------------------------------
// Namespace
// ---------------------------------------------------------------------------------------------

export const k8sNamespaceSpec = obj('K8sNamespaceSpec', {
  finalizers: strList('Finalizers that must run before the namespace is removed.'),
});

export const namespaceKind: KindSchema = {
  group: '',
  kind: 'Namespace',
  versions: ['v1'],
  plural: 'namespaces',
  singular: 'namespace',
  shortNames: ['ns'],
  scope: 'Cluster',
  crd: false,
  spec: k8sNamespaceSpec,
  status: anyObject(),
};

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

const protocol = enumOf(['TCP', 'UDP', 'SCTP'], 'IP protocol (default TCP).');
const trafficPolicyValues = ['Cluster', 'Local'] as const;

export const k8sServicePort = obj(
  'K8sServicePort',
  {
    name: str('Port name; required when there is more than one port. Istio infers the protocol from a `<protocol>[-suffix]` name.'),
    protocol,
    appProtocol: str('Application protocol (e.g. `http`, `grpc`, `kubernetes.io/h2c`).'),
    port: int32('Port exposed by the service.', { minimum: 1, maximum: 65535 }),
    targetPort: intOrString('Container port number or name (defaults to port).'),
    nodePort: int32('Port on each node for NodePort and LoadBalancer services.'),
  },
  { required: ['port'] },
);

const k8sSessionAffinityConfig = obj('K8sSessionAffinityConfig', {
  clientIP: obj('K8sClientIPConfig', {
    timeoutSeconds: int32('Sticky session lifetime in seconds.'),
  }),
});

export const k8sServiceSpec = obj('K8sServiceSpec', {
  ports: arr(k8sServicePort, 'Ports exposed by the service.'),
  selector: strMap('Pod labels selecting the endpoints.'),
  clusterIP: str('Virtual IP; `None` for a headless service.'),
  clusterIPs: strList('Virtual IPs (one per IP family).'),
  type: enumOf(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'], 'How the service is exposed.'),
  externalIPs: strList('Extra IPs routed to the service.'),
  sessionAffinity: enumOf(['ClientIP', 'None'], 'Session affinity.'),
  loadBalancerIP: str('Deprecated: requested load balancer IP.'),
  loadBalancerSourceRanges: strList('Client CIDRs allowed through the load balancer.'),
  externalName: str('DNS name an ExternalName service aliases.'),
  externalTrafficPolicy: enumOf(trafficPolicyValues, 'Routing of external traffic.'),
  healthCheckNodePort: int32('Health check node port for Local external traffic policy.'),
  publishNotReadyAddresses: bool('Publish endpoints that are not ready.'),
  sessionAffinityConfig: k8sSessionAffinityConfig,
  ipFamilies: arr(enumOf(['IPv4', 'IPv6']), 'IP families of the service.'),
  ipFamilyPolicy: enumOf(['SingleStack', 'PreferDualStack', 'RequireDualStack'], 'Dual-stack policy.'),
  allocateLoadBalancerNodePorts: bool('Allocate node ports for LoadBalancer services.'),
  loadBalancerClass: str('Load balancer implementation class.'),
  internalTrafficPolicy: enumOf(trafficPolicyValues, 'Routing of in-cluster traffic.'),
  trafficDistribution: str('Traffic distribution preference (e.g. `PreferClose`).'),
});

export const serviceKind: KindSchema = {
  group: '',
  kind: 'Service',
  versions: ['v1'],
  plural: 'services',
  singular: 'service',
  shortNames: ['svc'],
  categories: ['all'],
  scope: 'Namespaced',
  crd: false,
  spec: k8sServiceSpec,
  status: anyObject(),
};

// ---------------------------------------------------------------------------------------------
// ServiceAccount (top-level body)
// ---------------------------------------------------------------------------------------------

export const k8sServiceAccountBody = obj('K8sServiceAccountBody', {
  secrets: arr(anyObject(), 'Deprecated: secrets the service account may use.'),
  imagePullSecrets: arr(k8sLocalObjectReference, 'Secrets used to pull images.'),
  automountServiceAccountToken: bool('Mount the API token into pods by default.'),
});

export const serviceAccountKind: KindSchema = {
  group: '',
  kind: 'ServiceAccount',
  versions: ['v1'],
  plural: 'serviceaccounts',
  singular: 'serviceaccount',
  shortNames: ['sa'],
  scope: 'Namespaced',
  crd: false,
  // Not a spec: these fields sit at the top level of a ServiceAccount.
  spec: k8sServiceAccountBody,
  bodyAtTopLevel: true,
};

// ---------------------------------------------------------------------------------------------
// Pod
// ---------------------------------------------------------------------------------------------

const k8sContainerPort = obj(
  'K8sContainerPort',
  {
    name: str('Port name.'),
    containerPort: int32('Port the container listens on.', { minimum: 1, maximum: 65535 }),
    protocol,
    hostPort: int32('Port on the host.'),
    hostIP: str('Host IP to bind to.'),
  },
  { required: ['containerPort'] },
);

export const k8sContainer = obj(
  'K8sContainer',
  {
    name: str('Container name.'),
    image: str('Container image.'),
    ports: arr(k8sContainerPort, 'Ports the container listens on.'),
  },
  { required: ['name'], 'x-kubernetes-preserve-unknown-fields': true },
);

/** The pod spec: fields the mesh uses are typed, the rest is accepted as-is. */
export const k8sPodSpec = obj(
  'K8sPodSpec',
  {
    serviceAccountName: str('Service account the pod runs as.'),
    serviceAccount: str('Deprecated alias of serviceAccountName.'),
    containers: arr(k8sContainer, 'Application containers.'),
    initContainers: arr(k8sContainer, 'Init containers.'),
    hostNetwork: bool('Use the host network namespace.'),
    nodeName: str('Node the pod is bound to.'),
  },
  { 'x-kubernetes-preserve-unknown-fields': true },
);

export const podKind: KindSchema = {
  group: '',
  kind: 'Pod',
  versions: ['v1'],
  plural: 'pods',
  singular: 'pod',
  shortNames: ['po'],
  categories: ['all'],
  scope: 'Namespaced',
  crd: false,
  spec: k8sPodSpec,
  status: anyObject(),
};

// ---------------------------------------------------------------------------------------------
// ConfigMap and Secret (top-level bodies)
// ---------------------------------------------------------------------------------------------

export const k8sConfigMapBody = obj('K8sConfigMapBody', {
  data: strMap('UTF-8 values by key.'),
  binaryData: strMap('Base64-encoded binary values by key.'),
  immutable: bool('Whether the data can no longer be changed.'),
});

export const configMapKind: KindSchema = {
  group: '',
  kind: 'ConfigMap',
  versions: ['v1'],
  plural: 'configmaps',
  singular: 'configmap',
  shortNames: ['cm'],
  scope: 'Namespaced',
  crd: false,
  // Not a spec: these fields sit at the top level of a ConfigMap.
  spec: k8sConfigMapBody,
  bodyAtTopLevel: true,
};

export const k8sSecretBody = obj('K8sSecretBody', {
  data: strMap('Base64-encoded values by key.'),
  stringData: strMap('Plain-text values by key, merged into data on write.'),
  type: str('Secret type, e.g. `Opaque` or `kubernetes.io/tls`.'),
  immutable: bool('Whether the data can no longer be changed.'),
});

export const secretKind: KindSchema = {
  group: '',
  kind: 'Secret',
  versions: ['v1'],
  plural: 'secrets',
  singular: 'secret',
  scope: 'Namespaced',
  crd: false,
  // Not a spec: these fields sit at the top level of a Secret.
  spec: k8sSecretBody,
  bodyAtTopLevel: true,
};

// ---------------------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------------------

const k8sPodTemplateMetadata = obj(
  'K8sPodTemplateMetadata',
  {
    name: str(),
    labels: strMap('Labels given to the pods.'),
    annotations: strMap('Annotations given to the pods (e.g. sidecar injection settings).'),
  },
  { 'x-kubernetes-preserve-unknown-fields': true },
);

export const k8sPodTemplateSpec = obj('K8sPodTemplateSpec', {
  metadata: k8sPodTemplateMetadata,
  spec: k8sPodSpec,
});

export const k8sDeploymentSpec = obj(
  'K8sDeploymentSpec',
  {
    replicas: int32('Desired number of pods.', { minimum: 0 }),
    selector: k8sLabelSelector,
    template: k8sPodTemplateSpec,
    strategy: anyObject('Rollout strategy.'),
    minReadySeconds: int32('Seconds a new pod must be ready before it counts as available.'),
    revisionHistoryLimit: int32('Old ReplicaSets kept for rollback.'),
    paused: bool('Whether rollouts are paused.'),
    progressDeadlineSeconds: int32('Seconds before a stalled rollout is reported.'),
  },
  { required: ['selector', 'template'] },
);

export const deploymentKind: KindSchema = {
  group: 'apps',
  kind: 'Deployment',
  versions: ['v1'],
  plural: 'deployments',
  singular: 'deployment',
  shortNames: ['deploy'],
  categories: ['all'],
  scope: 'Namespaced',
  crd: false,
  spec: k8sDeploymentSpec,
  status: anyObject(),
};
