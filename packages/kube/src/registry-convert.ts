// Kubernetes Services, EndpointSlices, Pods and Namespaces as pilot's service model, with Istio's
// rules (pilot/pkg/serviceregistry/kube: conversion.go, endpointslice.go, endpoint_builder.go,
// pod.go). Pure functions of plain objects: the typed client's and the watch stream's shapes both
// fit (timestamps as Date or RFC 3339 text).
import { exportScope, ExportToAnnotation, kubeServiceHost, localityOfLabels, spiffeId } from '@weft/mesh';
import { type Endpoint, kubernetesPortProtocol, type Locality, parseLocality, type Service, type ServicePort, type WorkloadInstance } from '@weft/model';
import { tlsModeLabel } from '@weft/pilot';
import { workloadOfPod } from './inject/workload.ts';

// ---------------------------------------------------------------- inputs

export interface KubeMeta {
  name?: string;
  namespace?: string;
  generateName?: string;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  creationTimestamp?: Date | string | null;
  deletionTimestamp?: Date | string | null;
  ownerReferences?: { apiVersion: string; kind: string; name: string; controller?: boolean | null }[] | null;
}

export interface KubeServicePort {
  name?: string | null;
  port: number;
  protocol?: string | null;
  appProtocol?: string | null;
  targetPort?: number | string | null;
}

export interface KubeService {
  metadata?: KubeMeta;
  spec?: {
    type?: string | null;
    clusterIP?: string | null;
    clusterIPs?: string[] | null;
    externalName?: string | null;
    ports?: KubeServicePort[] | null;
    selector?: Record<string, string> | null;
  } | null;
}

export interface KubeSliceEndpoint {
  addresses?: string[] | null;
  conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } | null;
  targetRef?: { kind?: string | null; name?: string | null; namespace?: string | null } | null;
  nodeName?: string | null;
  zone?: string | null;
}

export interface KubeEndpointSlice {
  metadata?: KubeMeta;
  addressType?: string | null;
  endpoints?: KubeSliceEndpoint[] | null;
  ports?: { name?: string | null; port?: number | null; protocol?: string | null }[] | null;
}

export interface KubePod {
  metadata?: KubeMeta;
  spec?: {
    serviceAccountName?: string | null;
    nodeName?: string | null;
    containers?: { ports?: { name?: string | null; containerPort: number; protocol?: string | null }[] | null }[] | null;
    initContainers?: { restartPolicy?: string | null; ports?: { name?: string | null; containerPort: number; protocol?: string | null }[] | null }[] | null;
  } | null;
  status?: {
    phase?: string | null;
    podIP?: string | null;
    conditions?: { type: string; status: string }[] | null;
  } | null;
}

export interface KubeNamespace {
  metadata?: KubeMeta;
}

export interface KubeNode {
  metadata?: KubeMeta;
}

// ---------------------------------------------------------------- names and labels

/** SPIFFE identities a Service declares beside its endpoints' (`alpha.istio.io/canonical-serviceaccounts`). */
const canonicalServiceAccountsAnnotation = 'alpha.istio.io/canonical-serviceaccounts';
/** Kubernetes service accounts a Service declares (`alpha.istio.io/kubernetes-serviceaccounts`). */
const kubernetesServiceAccountsAnnotation = 'alpha.istio.io/kubernetes-serviceaccounts';
/** The Service an EndpointSlice belongs to. */
export const serviceNameLabel = 'kubernetes.io/service-name';
/** Slices of multi-cluster services (MCS); Istio leaves them to its MCS controller. */
export const mcsServiceNameLabel = 'multicluster.kubernetes.io/service-name';
/** Pod or namespace label naming the workload's network. */
export const networkLabel = 'topology.istio.io/network';
/** Endpoint and workload labels Istio adds (AugmentLabels). */
export const clusterLabel = 'topology.istio.io/cluster';
export const hostnameLabel = 'kubernetes.io/hostname';
const regionLabel = 'topology.kubernetes.io/region';
const zoneLabel = 'topology.kubernetes.io/zone';
const subzoneLabel = 'topology.istio.io/subzone';

function strings(value: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

function timeOf(t: Date | string | null | undefined): number {
  if (!t) return 0;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : 0;
}

/** The creation time of an object, ms since the epoch (0 when unknown). */
export function creationTimeOf(obj: { metadata?: KubeMeta }): number {
  return timeOf(obj.metadata?.creationTimestamp);
}

// ---------------------------------------------------------------- services

export interface ServiceConversionOptions {
  domainSuffix: string;
  trustDomain: string;
  /** MeshConfig's defaultServiceExportTo, for Services without the exportTo annotation (default `*`). */
  defaultExportTo?: readonly string[];
}

/** A Service's definition in Kubernetes terms that the registry derives from, beside the model Service. */
export interface ConvertedService {
  service: Service;
  /** ExternalName: the name every port resolves to (a DNS cluster). */
  externalName?: string;
  headless: boolean;
  /** SPIFFE identities the annotations declare; endpoints add theirs. */
  declaredServiceAccounts: readonly string[];
}

/**
 * Istio's ConvertService: a ClusterIP Service is load-balanced over its endpoints (EDS) at its
 * cluster IPs; a headless one (`clusterIP: None`) passes through to the address the client
 * dialled (ORIGINAL_DST); an ExternalName is a mesh-external DNS service resolving its
 * `externalName`. Ports take Istio's protocol selection (`kubernetesPortProtocol`); `exportTo`
 * comes from the `networking.istio.io/exportTo` annotation (default: the mesh's defaultServiceExportTo, else everywhere).
 */
export function convertService(svc: KubeService, opts: ServiceConversionOptions): ConvertedService {
  const name = svc.metadata?.name ?? '';
  const namespace = svc.metadata?.namespace ?? '';
  const spec = svc.spec ?? {};
  const annotations = strings(svc.metadata?.annotations);
  const externalName = spec.type === 'ExternalName' && spec.externalName ? spec.externalName : undefined;
  const headless = spec.clusterIP === 'None';
  let addresses: string[] = [];
  if (!headless && spec.clusterIP && !externalName) addresses = spec.clusterIPs && spec.clusterIPs.length > 1 ? [...spec.clusterIPs] : [spec.clusterIP];
  const ports: ServicePort[] = (spec.ports ?? []).map((p) => {
    const port: ServicePort = {
      name: p.name ?? '',
      port: p.port,
      protocol: kubernetesPortProtocol({ port: p.port, name: p.name ?? undefined, protocol: p.protocol ?? undefined, appProtocol: p.appProtocol ?? undefined }),
    };
    // A named targetPort is resolved per pod (the EndpointSlice carries the number).
    if (typeof p.targetPort === 'number' && !externalName) port.targetPort = p.targetPort;
    return port;
  });
  const declared: string[] = [];
  for (const sa of splitList(annotations[canonicalServiceAccountsAnnotation])) declared.push(sa);
  for (const ksa of splitList(annotations[kubernetesServiceAccountsAnnotation])) declared.push(spiffeId(opts.trustDomain, namespace, ksa));
  const exportTo = annotations[ExportToAnnotation] ? splitList(annotations[ExportToAnnotation]) : undefined;
  const service: Service = {
    hostname: kubeServiceHost(name, namespace, opts.domainSuffix),
    namespace,
    origin: { kind: 'Service', namespace, name },
    ports,
    addresses,
    resolution: externalName ? 'DNS' : headless ? 'NONE' : 'STATIC',
    location: externalName ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
    exportTo: exportScope(exportTo, namespace, opts.defaultExportTo),
    serviceAccounts: [...declared].sort(),
    labels: strings(svc.metadata?.labels),
  };
  const selector = strings(spec.selector);
  // A Service without a selector (its EndpointSlices written by hand) selects no pod.
  if (Object.keys(selector).length > 0 && !externalName) service.selector = selector;
  const out: ConvertedService = { service, headless, declaredServiceAccounts: declared };
  if (externalName) out.externalName = externalName;
  return out;
}

function splitList(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

// ---------------------------------------------------------------- pods

/** What the registry keeps of a pod: its workload instance and what decides its membership. */
export interface PodInfo {
  key: string;
  name: string;
  namespace: string;
  ip: string;
  labels: Readonly<Record<string, string>>;
  serviceAccount: string;
  nodeName: string;
  /** Istio's workload name: the Deployment (or other controller) the pod belongs to, else the pod. */
  workloadName: string;
  /** Named TCP container ports (Istio's PortMap). */
  ports: Readonly<Record<string, number>>;
  locality: Locality;
  tlsMode: 'istio' | 'disabled';
  /** Running or about to: has an IP, not Succeeded/Failed. */
  live: boolean;
  /** Istio's podsByIP membership: live, not being deleted, and Ready. */
  readyForIp: boolean;
}

export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Istio's getPortMap: named TCP ports of the containers and of the sidecar-style init containers. */
function portMap(spec: KubePod['spec']): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (ports: { name?: string | null; containerPort: number; protocol?: string | null }[] | null | undefined) => {
    for (const p of ports ?? []) {
      if (!p.name || (p.protocol && p.protocol !== 'TCP')) continue;
      if (!(p.name in out)) out[p.name] = p.containerPort;
    }
  };
  for (const c of spec?.containers ?? []) add(c.ports);
  for (const c of spec?.initContainers ?? []) if (c.restartPolicy === 'Always') add(c.ports);
  return out;
}

export function convertPod(pod: KubePod): PodInfo {
  const name = pod.metadata?.name ?? '';
  const namespace = pod.metadata?.namespace ?? '';
  const labels = strings(pod.metadata?.labels);
  const phase = pod.status?.phase ?? '';
  const ip = pod.status?.podIP ?? '';
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const ready = (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  const live = ip !== '' && !terminal;
  const meta = pod.metadata ?? {};
  const workload = workloadOfPod(
    {
      name,
      ...(meta.generateName ? { generateName: meta.generateName } : {}),
      labels,
      ...(meta.ownerReferences ? { ownerReferences: meta.ownerReferences.map((r) => ({ ...r, uid: '', controller: r.controller ?? false })) } : {}),
    },
    namespace,
  );
  return {
    key: podKey(namespace, name),
    name,
    namespace,
    ip,
    labels,
    serviceAccount: pod.spec?.serviceAccountName ?? '',
    nodeName: pod.spec?.nodeName ?? '',
    workloadName: workload.name,
    ports: portMap(pod.spec),
    // Istio: the `istio-locality` label (dots for slashes), else the node's topology labels (the registry adds those: KubeServiceRegistry.putNode).
    locality: parseLocality(localityOfLabels(labels)),
    tlsMode: labels[tlsModeLabel] === 'istio' ? 'istio' : 'disabled',
    live,
    readyForIp: live && !meta.deletionTimestamp && ready,
  };
}

/**
 * Istio's AugmentLabels: the pod's labels plus its locality, cluster, node and network, so that
 * subsets and policies can select on them.
 */
export function augmentedLabels(pod: PodInfo | undefined, clusterId: string, network: string): Record<string, string> {
  const out: Record<string, string> = { ...(pod?.labels ?? {}) };
  const l = pod?.locality ?? {};
  if (l.region) out[regionLabel] = l.region;
  if (l.zone) out[zoneLabel] = l.zone;
  if (l.subzone) out[subzoneLabel] = l.subzone;
  if (clusterId) out[clusterLabel] = clusterId;
  if (pod?.nodeName) out[hostnameLabel] = pod.nodeName;
  if (network && !out[networkLabel]) out[networkLabel] = network;
  return out;
}

/** The pod as a workload instance (a proxy finds its own workload among these by IP). */
export function podWorkload(pod: PodInfo, clusterId: string, namespaceNetwork: string): WorkloadInstance {
  const network = pod.labels[networkLabel] ?? namespaceNetwork;
  const w: WorkloadInstance = {
    name: pod.name,
    namespace: pod.namespace,
    address: pod.ip,
    labels: augmentedLabels(pod, clusterId, network),
    ports: pod.ports,
    locality: pod.locality,
    weight: 1,
    tlsMode: pod.tlsMode,
  };
  if (pod.serviceAccount) w.serviceAccount = pod.serviceAccount;
  if (network) w.network = network;
  return w;
}

// ---------------------------------------------------------------- endpoints

/**
 * Istio's endpointHealthStatus, as its EDS then filters it: ready (or no condition) is healthy;
 * not ready and terminating (or no terminating condition) is terminating and never sent; not
 * ready otherwise is sent as unhealthy. `serving` only matters for persistent-session services
 * (Istio's draining state), which Weft does not implement: their draining endpoints are dropped
 * like other terminating ones.
 */
export function endpointHealth(conditions: KubeSliceEndpoint['conditions']): 'healthy' | 'unhealthy' | 'terminating' {
  const c = conditions ?? {};
  if (c.ready === undefined || c.ready === null || c.ready) return 'healthy';
  if (c.terminating === undefined || c.terminating === null || c.terminating) return 'terminating';
  return 'unhealthy';
}

/** Whether the registry reads a slice at all (Istio: not MCS slices, not FQDN slices, only a Service's). */
export function sliceServiceName(slice: KubeEndpointSlice): string | undefined {
  const labels = slice.metadata?.labels ?? {};
  if (labels[mcsServiceNameLabel] !== undefined) return undefined;
  if (slice.addressType === 'FQDN') return undefined;
  const name = labels[serviceNameLabel];
  return name ? name : undefined;
}

/** One address of one slice endpoint, before it is matched to a service port. */
export interface SliceAddress {
  address: string;
  /** The pod it belongs to: by targetRef, else the ready pod at that IP in the slice's namespace. */
  pod: PodInfo | undefined;
  health: 'healthy' | 'unhealthy' | 'terminating';
}

/**
 * The endpoints of one service port from the slice addresses serving it (`byPortName`: slice port
 * name -> port number -> addresses), deduplicated by address as Istio's endpoint cache does.
 */
export function portEndpoints(
  svc: ConvertedService,
  port: ServicePort,
  addresses: readonly { address: string; port: number; pod: PodInfo | undefined; health: 'healthy' | 'unhealthy' }[],
  clusterId: string,
  namespaceNetwork: (namespace: string) => string,
): Endpoint[] {
  const seen = new Set<string>();
  const out: Endpoint[] = [];
  for (const a of addresses) {
    if (seen.has(a.address)) continue;
    seen.add(a.address);
    const pod = a.pod;
    const network = pod?.labels[networkLabel] ?? namespaceNetwork(pod?.namespace ?? svc.service.namespace);
    const ep: Endpoint = {
      address: a.address,
      port: a.port,
      servicePort: port,
      hostname: svc.service.hostname,
      namespace: svc.service.namespace,
      labels: augmentedLabels(pod, clusterId, network),
      locality: pod?.locality ?? {},
      weight: 1,
      healthy: a.health === 'healthy',
      tlsMode: pod?.tlsMode ?? 'disabled',
    };
    if (pod?.serviceAccount) ep.serviceAccount = pod.serviceAccount;
    if (pod) ep.workloadName = pod.workloadName;
    if (network) ep.network = network;
    out.push(ep);
  }
  return out;
}

/**
 * The one endpoint per port of an ExternalName Service: its external name at the service port,
 * labelled as the Service (Istio's ExternalNameEndpoints, before ExternalName became an alias).
 */
export function externalNameEndpoint(svc: ConvertedService, port: ServicePort): Endpoint {
  return {
    address: svc.externalName!,
    port: port.port,
    servicePort: port,
    hostname: svc.service.hostname,
    namespace: svc.service.namespace,
    labels: svc.service.labels,
    locality: {},
    weight: 1,
    healthy: true,
    tlsMode: 'disabled',
  };
}
