// What the sidecar template takes besides the pod: the images and the control plane's address
// (weftd's flags, or weftctl kube-inject's), the mesh's names, and the defaults that Istio's
// `values.global.proxy` holds and pods override with annotations.
import { readFileSync } from 'node:fs';
import { controlPlaneTlsName } from '@weft/model';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The proxy image the images build makes (`npm run images`): also the init image, as Istio's proxyv2 is. */
export const defaultProxyImage = `weft/proxy:${version}`;

export interface ResourceList {
  cpu?: string;
  memory?: string;
}

export interface InjectionValues {
  /** istio-proxy's image (annotation `sidecar.istio.io/proxyImage` overrides it per pod). */
  proxyImage: string;
  /** istio-init's image; default: the proxy image. */
  proxyInitImage?: string;
  /** Set on both containers when given; otherwise Kubernetes' default applies (IfNotPresent for a tagged image). */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** weftd's xDS-and-CA TLS port as pods reach it: `weftd.<namespace>.svc:15012`. */
  discoveryAddress: string;
  /** The TLS name the proxy verifies weftd's serving certificate against (a name that certificate always has). */
  discoveryServerName: string;
  trustDomain: string;
  domainSuffix: string;
  /** ISTIO_META_CLUSTER_ID. */
  clusterId: string;
  /** The control plane revision, recorded in `istio.io/rev` and the status annotation. */
  revision: string;
  /** Audience of the projected service-account token the proxy presents to the CA. */
  tokenAudience: string;
  /** The proxy's resources when the pod names none by annotation (Istio's values.global.proxy.resources). */
  resources: { requests?: ResourceList; limits?: ResourceList };
  /** Outbound capture defaults: `*`, or CIDRs (Istio's includeIPRanges/excludeIPRanges). */
  includeOutboundIPRanges: string;
  excludeOutboundIPRanges: string;
  includeInboundPorts: string;
  excludeInboundPorts: string;
  excludeOutboundPorts: string;
  /** Rewrite application HTTP/TCP probes to the proxy's status port (Istio's sidecarInjectorWebhook.rewriteAppHTTPProbe). */
  rewriteAppHTTPProbe: boolean;
  /** Start the application only once the proxy is ready (meshConfig.defaultConfig.holdApplicationUntilProxyStarts). */
  holdApplicationUntilProxyStarts: boolean;
  /**
   * istio-proxy as a Kubernetes native sidecar (an init container with restartPolicy Always; the
   * pod annotation `sidecar.istio.io/nativeSidecar` chooses per pod). Istio's ENABLE_NATIVE_SIDECARS
   * is `auto` (on where every kubelet is 1.33 or newer); Weft's default is off.
   */
  nativeSidecars: boolean;
  /** Move the pod's prometheus.io annotations to the proxy and scrape the merged 15020 (meshConfig.enablePrometheusMerge). */
  enablePrometheusMerge: boolean;
  /** The proxy's log level when the pod sets no `sidecar.istio.io/logLevel`. */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

/** Istio's defaults, with weftd in `istio-system` as `weftd`. */
export function defaultInjectionValues(overrides: Partial<InjectionValues> = {}): InjectionValues {
  return {
    proxyImage: defaultProxyImage,
    discoveryAddress: 'weftd.istio-system.svc:15012',
    discoveryServerName: controlPlaneTlsName,
    trustDomain: 'cluster.local',
    domainSuffix: 'cluster.local',
    clusterId: 'Kubernetes',
    revision: 'default',
    tokenAudience: 'istio-ca',
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } },
    includeOutboundIPRanges: '*',
    excludeOutboundIPRanges: '',
    includeInboundPorts: '*',
    excludeInboundPorts: '',
    excludeOutboundPorts: '',
    rewriteAppHTTPProbe: true,
    holdApplicationUntilProxyStarts: false,
    nativeSidecars: false,
    enablePrometheusMerge: true,
    logLevel: 'info',
    ...overrides,
  };
}

/** Names and ports of the injected pod, fixed by Istio's contract (DESIGN.md §1). */
export const sidecar = {
  proxyContainer: 'istio-proxy',
  initContainer: 'istio-init',
  proxyUid: 1337,
  outboundPort: 15001,
  inboundPort: 15006,
  statusPort: 15020,
  healthPort: 15021,
  statsPort: 15090,
  tokenVolume: 'istio-token',
  tokenDir: '/var/run/secrets/tokens',
  rootCertVolume: 'istiod-ca-cert',
  rootCertDir: '/var/run/secrets/istio',
  rootCertConfigMap: 'istio-ca-root-cert',
  podInfoVolume: 'istio-podinfo',
  podInfoDir: '/etc/istio/pod',
} as const;

/** The annotations (and labels) the injector reads, by Istio's names. */
export const annotations = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  proxyImage: 'sidecar.istio.io/proxyImage',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  logLevel: 'sidecar.istio.io/logLevel',
  interceptionMode: 'sidecar.istio.io/interceptionMode',
  rewriteAppHTTPProbers: 'sidecar.istio.io/rewriteAppHTTPProbers',
  proxyConfig: 'proxy.istio.io/config',
  nativeSidecar: 'sidecar.istio.io/nativeSidecar',
  readinessInitialDelaySeconds: 'readiness.status.sidecar.istio.io/initialDelaySeconds',
  readinessPeriodSeconds: 'readiness.status.sidecar.istio.io/periodSeconds',
  readinessFailureThreshold: 'readiness.status.sidecar.istio.io/failureThreshold',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundPorts: 'traffic.sidecar.istio.io/includeOutboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  excludeInterfaces: 'traffic.sidecar.istio.io/excludeInterfaces',
  kubevirtInterfaces: 'traffic.sidecar.istio.io/kubevirtInterfaces',
  mergeMetrics: 'prometheus.istio.io/merge-metrics',
  revision: 'istio.io/rev',
} as const;
