// weftd's Kubernetes mode, wired in one place. weftd calls startKube() once its store exists and
// before pilot serves (so no proxy sees config without the cluster's), adds `registries` to
// pilot's AggregateRegistry, and calls attachCa() once the CA exists. Each Kubernetes part hangs
// on one of these three phases, in its own marked block below:
//   config    (kube-config)   CRDs -> ConfigStore                         startKube
//   registry  (kube-registry) Services/EndpointSlices/Pods -> pilot       startKube -> registries
//   webhooks  (kube-webhooks) validation + injection on 15017             attachCa
//   citadel   (kube-citadel)  leader election, TokenReview, CA keys from Secrets   startKube -> leader, platformTokens, openCa
//                             istio-ca-root-cert in every namespace (leader only)  attachCa
import type { KubeConfig } from '@kubernetes/client-node';
import type { CertificateAuthority, CertificateAuthorityOptions, PlatformTokenAuthenticator } from '@weft/citadel';
import { validateConfig } from '@weft/galley';
import { type Config, type ConfigStore, defaultKindRegistry, type K8sLabelSelector, type KindRegistry, type Logger } from '@weft/model';
import type { GatewayApiObjectStatus, ServiceRegistry } from '@weft/pilot';
import { apiServerOf, loadKubeConfig } from './client.ts';
import { openClusterCa } from './ca-secret.ts';
import { ClusterConfigSource, type ClusterConfigSourceOptions } from './config-source.ts';
import { GatewayController } from './gateway-controller.ts';
import { LeaderElection, type LeaderElectionOptions } from './leader-election.ts';
import { KubeServiceRegistry } from './registry.ts';
import { watchKubeServices } from './registry-watch.ts';
import { RootCertPublisher } from './root-cert.ts';
import { TokenReviewAuthenticator } from './token-review.ts';
import { defaultInjectionValues, type InjectionValues } from './inject/values.ts';
import { Webhooks } from './webhook-service.ts';

export interface KubeOptions {
  /** Kubeconfig file; absent: $KUBECONFIG, else in-cluster (the pod's service account), else ~/.kube/config. */
  kubeconfig?: string;
  /** The store weftd's pilot reads (the directory source, when also given, feeds it too). */
  store: ConfigStore;
  /** Kinds to read from the cluster; default model's registry. */
  registry?: KindRegistry;
  /** A logger per part (`kube`, `kube-config`, ...), from weftd's settings. */
  logger: (scope: string) => Logger;
  domainSuffix: string;
  trustDomain: string;
  /** Ends the wait for the first sync (weftd interrupted while the API server does not answer). */
  signal?: AbortSignal;
  /** Settings of the config part (tests shorten batches, backoff, resync). */
  config?: Pick<ClusterConfigSourceOptions, 'batch' | 'resyncMs' | 'backoff' | 'watchTimeoutSeconds' | 'client'>;
  /**
   * weftd's own namespace (Istio: istio-system): the CA's Secrets (cacerts, istio-ca-secret) and
   * the leader Lease are there. Default $POD_NAMESPACE, else istio-system.
   */
  namespace?: string;
  /** MeshConfig's discoverySelectors: the namespaces whose Services and Pods the mesh sees and that get istio-ca-root-cert (empty: all). */
  discoverySelectors?: readonly K8sLabelSelector[];
  /** MeshConfig's defaultServiceExportTo, for Services without the exportTo annotation. */
  defaultServiceExportTo?: readonly string[];
  /** Leader election timing (tests shorten it); default client-go's: lease 15 s, renew deadline 10 s, retry 2 s. */
  leaderElection?: Pick<LeaderElectionOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs' | 'identity'>;
  /** The admission webhooks (kube-webhooks); `false`: none. */
  webhooks?: KubeWebhookOptions | false;
  /**
   * The Gateway API (kube-gateway, leader only): statuses written back, a gateway deployed per
   * Gateway, GatewayClasses istio and weft created. `statuses` reads the newest push context's
   * conversion (weftd's pilot starts after startKube); `false`: nothing is written.
   */
  gatewayApi?: { statuses: () => Iterable<GatewayApiObjectStatus>; createClasses?: boolean; intervalMs?: number } | false;
}

export interface KubeWebhookOptions {
  /** Default 127.0.0.1 (weftd's --listen-address). */
  host?: string;
  /** Default 15017; 0 picks a free port. */
  port?: number;
  /** The sidecar template's values; the discovery address defaults to `weftd.<namespace>.svc:15012`. */
  injection?: Partial<InjectionValues>;
  /** The MutatingWebhookConfiguration whose caBundle is kept on the mesh root (default Istio's: istio-sidecar-injector). */
  injectionConfiguration?: string;
  /** The ValidatingWebhookConfiguration likewise (default Istio's: istio-validator-<namespace>). */
  validationConfiguration?: string;
}

/** The Lease weftd replicas elect their leader with (in weftd's namespace). */
export const weftdLeaderLease = 'weftd-leader';

export interface Kube {
  readonly kubeConfig: KubeConfig;
  /** The API server's URL, for log lines. */
  readonly server: string;
  /** Config from the cluster's CRDs (kube-config). */
  readonly config: ClusterConfigSource;
  /** Service registries from the cluster, for pilot's AggregateRegistry (kube-registry adds its own). */
  readonly registries: ServiceRegistry[];
  /** A namespace's labels as the registry last saw them (Gateway API allowedRoutes selectors). */
  namespaceLabels(namespace: string): Readonly<Record<string, string>> | undefined;
  /** Extra /debug endpoints for weftd's monitoring server. */
  readonly debug: Record<string, () => unknown>;
  /** weftd's namespace (KubeOptions.namespace). */
  readonly namespace: string;
  /**
   * Leader election among weftd replicas (Lease `weftd-leader`): every replica serves, only the
   * leader writes to the cluster. A writer registers with `leader.whileLeading(work)`.
   */
  readonly leader: LeaderElection;
  /** Projected service-account tokens checked by TokenReview: weftd gives it to the CA service and to xDS on 15012. */
  readonly platformTokens: PlatformTokenAuthenticator;
  /** The mesh CA from weftd's namespace: Secret cacerts (plug-in), else istio-ca-secret (created the first time). */
  openCa(options: CertificateAuthorityOptions): Promise<CertificateAuthority>;
  /** The webhook server on 15017 once attachCa has started it (undefined with `webhooks: false`). */
  readonly webhooks: Webhooks | undefined;
  /** Starts the parts that need the CA (webhooks, TokenReview, root-cert ConfigMaps). Called at most once. */
  attachCa(ca: CertificateAuthority): Promise<void>;
  /** Stops every part, in reverse order of start. */
  close(): Promise<void>;
}

/**
 * Connects to the cluster and starts the parts that need only the cluster; resolves once their
 * first sync is in (config listed and in the store). Throws on a kubeconfig it cannot use.
 */
export async function startKube(options: KubeOptions): Promise<Kube> {
  const log = options.logger('kube');
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig(options.kubeconfig);
  } catch (err) {
    const why = (err as { code?: string }).code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err);
    throw new Error(`cannot use kubeconfig ${options.kubeconfig ?? process.env.KUBECONFIG ?? '(default)'}: ${why}`);
  }
  const server = apiServerOf(kubeConfig);
  const registry = options.registry ?? defaultKindRegistry();
  const cleanups: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log.error('kubernetes shutdown step failed', { error: err });
      }
    }
  };
  const debug: Record<string, () => unknown> = {};
  const registries: ServiceRegistry[] = [];
  log.info('kubernetes mode', { server, kubeconfig: options.kubeconfig ?? process.env.KUBECONFIG ?? '(in-cluster or ~/.kube/config)' });

  try {
    // --- config (kube-config): Istio and Gateway API CRDs -> the store, validated by galley ---
    const config = new ClusterConfigSource({
      kubeConfig,
      store: options.store,
      registry,
      validate: (c: Config, o) => validateConfig(c, o),
      logger: options.logger('kube-config'),
      ...options.config,
    });
    config.start();
    cleanups.push(() => config.stop());
    debug['/debug/kube_config'] = () => config.status();

    // --- registry (kube-registry): Services, EndpointSlices, Pods, Namespaces -> registries ---
    const registryLog = options.logger('kube-registry');
    const services = new KubeServiceRegistry({
      domainSuffix: options.domainSuffix,
      trustDomain: options.trustDomain,
      ...(options.discoverySelectors ? { discoverySelectors: options.discoverySelectors } : {}),
      ...(options.defaultServiceExportTo ? { defaultExportTo: options.defaultServiceExportTo } : {}),
      onListenerError: (e) => registryLog.error('registry listener failed', { error: e }),
    });
    const serviceWatch = watchKubeServices(kubeConfig, services, { logger: registryLog });
    cleanups.push(() => serviceWatch.stop());
    registries.push(services);
    debug['/debug/kube_registry'] = () => ({ synced: serviceWatch.hasSynced, services: services.services().length, workloads: services.workloads().length });

    // --- citadel (kube-citadel): leader election, TokenReview; the CA's keys through openCa ---
    const namespace = options.namespace || process.env.POD_NAMESPACE || 'istio-system';
    const citadelLog = options.logger('kube-citadel');
    // Campaigns from the first whileLeading() (a weftd that writes nothing to the cluster never does).
    const leader = new LeaderElection({ kubeConfig, namespace, name: weftdLeaderLease, logger: citadelLog, ...options.leaderElection });
    cleanups.push(() => leader.stop());
    const platformTokens = new TokenReviewAuthenticator({ kubeConfig, logger: citadelLog });
    let caSecret: string | undefined;
    let rootPublisher: RootCertPublisher | undefined;
    debug['/debug/kube_citadel'] = () => ({
      namespace,
      caSecret: caSecret ?? null,
      leader: leader.status(),
      tokenReview: { audiences: platformTokens.audiences, reviews: platformTokens.reviews, cached: platformTokens.cacheSize },
      rootCertConfigMaps: rootPublisher?.status() ?? null,
    });

    // Every part that needs only the cluster has started; wait for their first sync.
    log.info('waiting for the cluster (first list of every watched kind)');
    await Promise.all([config.synced(options.signal), serviceWatch.synced(options.signal)]);

    let caAttached = false;
    let webhooks: Webhooks | undefined;
    return {
      kubeConfig,
      server,
      config,
      registries,
      namespaceLabels: (ns) => services.namespaceLabels(ns),
      debug,
      namespace,
      leader,
      platformTokens,
      get webhooks() {
        return webhooks;
      },
      openCa: async (caOptions) => {
        const opened = await openClusterCa({ ...caOptions, kubeConfig, namespace, ...(options.signal ? { signal: options.signal } : {}) });
        caSecret = opened.secret;
        return opened.ca;
      },
      attachCa: async (ca) => {
        if (caAttached) throw new Error('attachCa called twice');
        caAttached = true;
        // --- webhooks (kube-webhooks): 15017, serving certificate from the CA, caBundle kept current ---
        if (options.webhooks !== false) {
          const w = options.webhooks ?? {};
          const injection = defaultInjectionValues({ discoveryAddress: `weftd.${namespace}.svc:15012`, trustDomain: options.trustDomain, domainSuffix: options.domainSuffix, ...w.injection });
          const started = await Webhooks.start({
            ca,
            kubeConfig,
            namespace,
            injection,
            logger: options.logger('kube-webhooks'),
            ...(w.host !== undefined ? { host: w.host } : {}),
            ...(w.port !== undefined ? { port: w.port } : {}),
            configurations: { mutating: [w.injectionConfiguration ?? 'istio-sidecar-injector'], validating: [w.validationConfiguration ?? `istio-validator-${namespace}`] },
          });
          webhooks = started;
          cleanups.push(() => started.close());
          debug['/debug/kube_webhooks'] = () => ({ port: started.port, caBundlePatches: started.patcher?.patches ?? 0, injection });
        }
        // --- citadel (kube-citadel): istio-ca-root-cert in every namespace, written by the leader only ---
        leader.whileLeading((signal) => {
          const publisher = new RootCertPublisher({
            kubeConfig,
            rootCertPem: ca.rootCertPem,
            logger: citadelLog,
            ...(options.discoverySelectors ? { discoverySelectors: options.discoverySelectors } : {}),
          });
          rootPublisher = publisher;
          publisher.start();
          signal.addEventListener('abort', () => void publisher.stop(), { once: true });
        });
        // Before the leader releases its Lease (cleanups run in reverse).
        cleanups.push(() => rootPublisher?.stop());
        // --- gateway (kube-gateway): Gateway API statuses and gateway deployments, written by the leader only ---
        if (options.gatewayApi) {
          const g = options.gatewayApi;
          const values = defaultInjectionValues({ discoveryAddress: `weftd.${namespace}.svc:15012`, trustDomain: options.trustDomain, domainSuffix: options.domainSuffix, ...(options.webhooks ? options.webhooks.injection : {}) });
          let controller: GatewayController | undefined;
          leader.whileLeading((signal) => {
            const c = new GatewayController({
              kubeConfig,
              logger: options.logger('kube-gateway'),
              store: options.store,
              statuses: g.statuses,
              proxy: { image: values.proxyImage, ...(values.imagePullPolicy ? { imagePullPolicy: values.imagePullPolicy } : {}), discoveryAddress: values.discoveryAddress, trustDomain: options.trustDomain },
              ...(g.createClasses !== undefined ? { createClasses: g.createClasses } : {}),
              ...(g.intervalMs !== undefined ? { intervalMs: g.intervalMs } : {}),
            });
            controller = c;
            c.start();
            signal.addEventListener('abort', () => void c.stop(), { once: true });
          });
          debug['/debug/kube_gateway'] = () => controller?.status() ?? null;
          cleanups.push(() => controller?.stop());
        }
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
