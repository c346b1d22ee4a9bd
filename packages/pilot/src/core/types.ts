// The contracts between pilot's stages: ingest (registries) -> model (push context) ->
// translate (generators) -> serve (ADS). Each stage depends only on these types.
import type {
  AuthorizationPolicySpec,
  Config,
  DestinationRuleSpec,
  Endpoint,
  GatewaySpec,
  K8sLabelSelector,
  Locality,
  LocalityLoadBalancerSetting,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
  Service,
  SidecarSpec,
  VirtualServiceSpec,
  WorkloadInstance,
} from '@weft/model';
import type { ObjectStatus as GatewayApiObjectStatus } from '../gateway-api/status.ts';

/** Mesh-wide settings (Istio's MeshConfig, the parts Weft uses). */
export interface MeshConfig {
  /** SPIFFE trust domain: `cluster.local`. */
  trustDomain: string;
  /** Where mesh-wide policies live (PeerAuthentication, Sidecar, DestinationRule defaults): `istio-system`. */
  rootNamespace: string;
  /** Suffix of short host names: `reviews` in `default` is `reviews.default.svc.<domainSuffix>`. */
  domainSuffix: string;
  /** What sidecars do with traffic to unknown destinations. */
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Use mTLS toward workloads that have a sidecar even without a DestinationRule. */
  enableAutoMtls: boolean;
  /** Cluster connect timeout, seconds (Istio: 10). */
  connectTimeoutSeconds: number;
  /** `accessLogFile`: where proxies write Envoy-format access logs (`/dev/stdout`); empty: none. */
  accessLogFile: string;
  /** `accessLogEncoding`: TEXT (Envoy's format line) or JSON. */
  accessLogEncoding: 'TEXT' | 'JSON';
  /** `accessLogFormat`: a custom format string; empty: Istio's default. */
  accessLogFormat: string;
  /** `enableTracing`: proxies trace requests (sampled at `tracingSampling`). */
  enableTracing: boolean;
  /** `defaultConfig.tracing.sampling`: percent of requests sampled, 0–100 (Istio's default 1). */
  tracingSampling: number;
  /** `extensionProviders`: named telemetry back ends (the OpenTelemetry ones receive spans over OTLP). */
  extensionProviders: readonly MeshExtensionProvider[];
  /** `defaultProviders.tracing`: extension providers used for traces. */
  defaultTracingProviders: readonly string[];
  /**
   * `discoverySelectors`: on Kubernetes, the namespaces the mesh considers, those whose labels
   * match any of these selectors; empty: every namespace. (Used so far by the istio-ca-root-cert
   * publisher, as istiod's namespace controller.)
   */
  discoverySelectors: readonly K8sLabelSelector[];
  /**
   * `defaultServiceExportTo`, `defaultVirtualServiceExportTo`, `defaultDestinationRuleExportTo`:
   * the exportTo of configs that give none (Istio's defaults: `*`). The service default is read by
   * the registries (weftd passes it), the others by the push context.
   */
  defaultServiceExportTo?: readonly string[];
  defaultVirtualServiceExportTo?: readonly string[];
  defaultDestinationRuleExportTo?: readonly string[];
  /** `localityLbSetting`: the mesh default where a DestinationRule sets none; absent: Istio's default, enabled. */
  localityLbSetting?: LocalityLoadBalancerSetting;
}

/** One `extensionProviders` entry; Weft reads the OpenTelemetry kind. */
export interface MeshExtensionProvider {
  name: string;
  /** `opentelemetry`: OTLP to `service:port` (gRPC, or HTTP at `http.path` when given). */
  opentelemetry?: { service: string; port: number; http?: { path: string } };
}

export const defaultMeshConfig: MeshConfig = {
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  domainSuffix: 'cluster.local',
  outboundTrafficPolicy: 'ALLOW_ANY',
  enableAutoMtls: true,
  connectTimeoutSeconds: 10,
  accessLogFile: '',
  accessLogEncoding: 'TEXT',
  accessLogFormat: '',
  enableTracing: false,
  tracingSampling: 1,
  extensionProviders: [],
  defaultTracingProviders: [],
  discoverySelectors: [],
};

// ---------------------------------------------------------------- ingest

/** What changed in a registry: service definitions (a full push) or only some hosts' endpoints (EDS only). */
export interface RegistryChange {
  /** Services were added, removed or changed (ports, addresses, exportTo...). */
  services: boolean;
  /** Hostnames whose endpoints changed. */
  endpoints: ReadonlySet<string>;
  /**
   * With `services`: the hostnames whose service definitions changed, when the registry knows them
   * (push scoping then pushes only proxies that see one); absent: any service may have changed.
   */
  hosts?: ReadonlySet<string>;
  /**
   * Addresses of workload instances that changed without moving any service's endpoints (a
   * WorkloadEntry no ServiceEntry selects): the proxies at those addresses get a full push, since
   * their own workload (labels, identity, locality) is read from the registry.
   */
  workloads?: ReadonlySet<string>;
}

/** A source of services and endpoints: ServiceEntry/WorkloadEntry now, Kubernetes later. */
export interface ServiceRegistry {
  readonly name: string;
  services(): readonly Service[];
  /** Endpoints of one port (by service port number) of one service (hostname in its namespace). */
  endpoints(hostname: string, namespace: string, port: number): readonly Endpoint[];
  workloads(): readonly WorkloadInstance[];
  onChange(listener: (change: RegistryChange) => void): () => void;
}

// ---------------------------------------------------------------- proxies

export type ProxyType = 'sidecar' | 'router';

/** Node metadata as Istio's agent sends it (the parts Weft reads; anything else is kept). */
export interface NodeMetadata {
  [key: string]: unknown;
  /** `grpc` for proxyless gRPC clients; anything else (or absent) is Envoy-style. */
  GENERATOR?: string;
  NAMESPACE?: string;
  LABELS?: Record<string, string>;
  SERVICE_ACCOUNT?: string;
  WORKLOAD_NAME?: string;
  INSTANCE_IPS?: string;
  CLUSTER_ID?: string;
  ISTIO_VERSION?: string;
}

/** A connected client, parsed from its xDS node: `sidecar~10.1.1.2~reviews-v1-abc.default~default.svc.cluster.local`. */
export interface Proxy {
  id: string;
  type: ProxyType;
  ipAddresses: readonly string[];
  /** `reviews-v1-abc` (the part of the node id before the namespace). */
  podName: string;
  namespace: string;
  /** `default.svc.cluster.local`. */
  dnsDomain: string;
  labels: Readonly<Record<string, string>>;
  metadata: NodeMetadata;
  generator: 'envoy' | 'grpc';
  serviceAccount?: string;
  /** The xDS node's locality (Envoy's `node.locality`), when it sent one. */
  locality?: Locality;
  /**
   * The client takes route configurations' virtual hosts as resources of their own (node client
   * feature `io.weft.vhds`, on a delta stream only): see translate/vhds.ts.
   */
  vhds?: boolean;
}

// ---------------------------------------------------------------- model

/** The effective mTLS mode of a workload's inbound ports (PeerAuthentication merged: workload > namespace > mesh). */
export interface EffectivePeerAuthentication {
  mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
  portLevel: ReadonlyMap<number, 'STRICT' | 'PERMISSIVE' | 'DISABLE'>;
  /** The policies that contributed, most specific first (for `weftctl describe`). */
  sources: readonly Config<PeerAuthenticationSpec>[];
}

/** AuthorizationPolicies that apply to a workload, grouped by action. */
export interface EffectiveAuthorization {
  allow: readonly Config<AuthorizationPolicySpec>[];
  deny: readonly Config<AuthorizationPolicySpec>[];
  audit: readonly Config<AuthorizationPolicySpec>[];
  custom: readonly Config<AuthorizationPolicySpec>[];
}

/**
 * Where pilot gets the keys behind a jwksUri (Istio's JwtKeyResolver): asking starts fetching the
 * URI and refreshing it; the answer is the last JWKS fetched, undefined before one succeeded.
 */
export interface JwksSource {
  get(uri: string, timeoutMs: number): string | undefined;
}

/** What a Sidecar resource (or the default) lets a proxy see and do. */
export interface SidecarScope {
  /** The Sidecar resource in force, if any (workload-selecting in the proxy namespace, else namespace default, else root namespace default). */
  config?: Config<SidecarSpec>;
  /** Services the proxy may reach (egress hosts applied; exportTo applied). */
  services: readonly Service[];
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
}

/**
 * One immutable, versioned snapshot of everything translation needs. Built once per (debounced)
 * change; translation reads it and never mutates it; per-proxy lookups are cached inside.
 */
export interface PushContext {
  readonly version: string;
  readonly mesh: MeshConfig;
  /** Every service in every registry. */
  readonly services: readonly Service[];
  /** Gateway API objects converted for this snapshot: the statuses the spec defines, by `Kind ns/name` (@weft/pilot's gateway-api). */
  readonly gatewayApi?: { readonly statuses: ReadonlyMap<string, GatewayApiObjectStatus> };
  /** A service by hostname, as seen from `namespace` (exportTo applied). */
  service(hostname: string, namespace: string): Service | undefined;
  /** Endpoints of one port of one service; `subsetLabels` filters to a subset. */
  endpoints(service: Service, port: number, subsetLabels?: Readonly<Record<string, string>>): readonly Endpoint[];
  /** The Sidecar scope of a proxy (services it can see, outbound policy). */
  sidecarScope(proxy: Proxy): SidecarScope;
  /**
   * VirtualServices visible to the proxy's namespace that bind to any of `gateways`
   * (`mesh` for sidecars; `namespace/name` of Gateways for routers), in Istio's order.
   * Delegate VirtualServices (no hosts) are not listed; see `delegate`.
   */
  virtualServices(proxy: Proxy, gateways: readonly string[]): readonly Config<VirtualServiceSpec>[];
  /** A delegate VirtualService by namespace/name. */
  delegate(namespace: string, name: string): Config<VirtualServiceSpec> | undefined;
  /** The DestinationRule for `hostname` as seen from the proxy (proxy namespace, then service namespace, then root namespace; workloadSelector honoured). */
  destinationRule(proxy: Proxy, hostname: string): Config<DestinationRuleSpec> | undefined;
  /** Gateways (networking.istio.io) whose selector matches the proxy's labels. */
  gateways(proxy: Proxy): readonly Config<GatewaySpec>[];
  peerAuthentication(proxy: Proxy): EffectivePeerAuthentication;
  /** The same for a workload known by namespace and labels (an endpoint: EDS decides auto mTLS with it). */
  workloadPeerAuthentication(namespace: string, labels: Readonly<Record<string, string>>): EffectivePeerAuthentication;
  authorization(proxy: Proxy): EffectiveAuthorization;
  /** RequestAuthentications that apply to the workload (root namespace, its namespace, selector or targetRef), in Istio's order. */
  requestAuthentications(proxy: Proxy): readonly Config<RequestAuthenticationSpec>[];
  /** The JWKS (JSON text) of a jwksUri as pilot last fetched it, fixed for this snapshot; undefined when it has none (yet). */
  jwks(uri: string, timeoutMs: number): string | undefined;
  /** The workload instance behind the proxy (matched by IP and namespace), if the registry knows it. */
  workload(proxy: Proxy): WorkloadInstance | undefined;
  /** The services whose endpoints include the proxy's workload (its inbound ports come from these). */
  servicesOf(proxy: Proxy): readonly Service[];
}

// ---------------------------------------------------------------- translate

/** One xDS resource: its name and the message as a plain object with proto field names (see @weft/xds). */
export interface XdsResource {
  name: string;
  resource: object;
}

export interface GenerateRequest {
  typeUrl: string;
  /** Names the client subscribed to (RDS, EDS, on-demand CDS); empty or undefined means "all you have for me". */
  names?: readonly string[];
}

/** A pure function of (push context, proxy, request). */
export type Generator = (push: PushContext, proxy: Proxy, request: GenerateRequest) => XdsResource[];
