// The Gateway API on a cluster, as istiod's gateway controller runs it (leader only):
//   - GatewayClasses `istio` and `weft` exist (created when missing, as istiod creates `istio`);
//   - every Gateway of ours gets its gateway (Istio's automated deployment: ServiceAccount,
//     Deployment and Service `<gateway>-<class>`, pods labelled gateway.networking.k8s.io/gateway-name,
//     owned by the Gateway so deleting it deletes them);
//   - the statuses pilot's conversion computed are written to the objects' status subresource
//     (Gateway addresses from its Service), each only when it changed.
// The conversion itself is pilot's (packages/pilot/src/gateway-api); this module only writes.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type V1Service } from '@kubernetes/client-node';
import type { ConfigStore, K8sGatewaySpec, Logger } from '@weft/model';
import { type GatewayApiCondition, type GatewayApiObjectStatus, gatewayControllers, gatewayNameLabel } from '@weft/pilot';
import { apiStatusOf } from './client.ts';
import { describeError } from './informer.ts';
import { renderGateway, type Values } from './install/manifests.ts';

const group = 'gateway.networking.k8s.io';
const version = 'v1';
const plurals: Record<string, string> = { Gateway: 'gateways', HTTPRoute: 'httproutes', GRPCRoute: 'grpcroutes', GatewayClass: 'gatewayclasses' };
export const gatewayFieldManager = 'weft-gateway-controller';
/**
 * How often every status is written again, changed or not (the deployments: five times as
 * rarely). Not much more often: during the conformance run every write is an API call on a
 * loaded 2-core API server, and a refresh of everything every 15 s slowed the writes that matter.
 */
const defaultRefreshMs = 60_000;

export interface GatewayProxySettings {
  /** The gateway pods' image (weft/proxy) and pull policy. */
  image: string;
  imagePullPolicy?: string;
  /** weftd as the gateway pods reach it (xDS and CA over TLS). */
  discoveryAddress: string;
  trustDomain: string;
}

export interface GatewayControllerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  store: ConfigStore;
  /** The statuses of the newest push context (pilot's conversion). */
  statuses: () => Iterable<GatewayApiObjectStatus>;
  proxy: GatewayProxySettings;
  /** Create the GatewayClasses `istio` and `weft` when missing (default true). */
  createClasses?: boolean;
  /** How often to compare what pilot computed with what was written (default 500 ms). */
  intervalMs?: number;
  /** How often to write every status again even when unchanged (default 60 s; deployments 5 times as rarely). */
  refreshMs?: number;
}

/** `<gateway>-<class>`: Istio's name for the deployment of a Gateway. */
export function gatewayDeploymentName(gateway: string, className: string): string {
  return `${gateway}-${className}`;
}

/** Istio's service type annotation on a Gateway (LoadBalancer unless it says otherwise). */
export const serviceTypeAnnotation = 'networking.istio.io/service-type';

/**
 * What a Gateway gets: the gateway chart's objects (one weft-ingress) named `<gateway>-<class>`,
 * selecting its pods by the gateway-name label, with a Service port per listener port (the pods
 * listen on the listener ports themselves) and the status port.
 */
export function renderGatewayDeployment(gw: { name: string; namespace: string; spec: K8sGatewaySpec; annotations?: Record<string, string> }, proxy: GatewayProxySettings): KubernetesObject[] {
  const name = gatewayDeploymentName(gw.name, gw.spec.gatewayClassName);
  const ports = [...new Set((gw.spec.listeners ?? []).map((l) => l.port))].sort((a, b) => a - b);
  // Every value the gateway chart has, given here: weftd's image carries no charts.
  const values: Values = {
    name,
    image: proxy.image,
    imagePullPolicy: proxy.imagePullPolicy ?? 'IfNotPresent',
    replicaCount: 1,
    discoveryAddress: proxy.discoveryAddress,
    trustDomain: proxy.trustDomain,
    logLevel: 'info',
    // Small requests: a 2-core node (kube-local) runs the conformance suite's dozens of pods beside them.
    resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } },
    labels: { [gatewayNameLabel]: gw.name, 'istio.io/gateway-name': gw.name },
    service: {
      type: gw.annotations?.[serviceTypeAnnotation] ?? 'LoadBalancer',
      ports: [{ name: 'status-port', port: 15021, targetPort: 15021, protocol: 'TCP' }, ...ports.map((p) => ({ name: `port-${p}`, port: p, targetPort: p, protocol: 'TCP' }))],
    },
  };
  // HTTPS listeners' certificates: Secrets of the Gateway's namespace, mounted where weft-ingress
  // reads credentials (`kubernetes://<name>` from DIR/<name>/tls.crt and tls.key, a kubernetes.io/tls
  // Secret's keys). weftd does not serve Secrets over SDS yet, so another namespace's cannot be used.
  const secrets = [
    ...new Set((gw.spec.listeners ?? []).flatMap((l) => (l.tls?.certificateRefs ?? []).filter((r) => (r.namespace ?? gw.namespace) === gw.namespace && (r.kind ?? 'Secret') === 'Secret').map((r) => r.name))),
  ].sort();
  return renderGateway(values, gw.namespace).map((o) => {
    const m = o as KubernetesObject & { spec?: { template?: { spec?: { containers: { args?: string[]; volumeMounts?: unknown[] }[]; volumes?: unknown[] } } } };
    const out = { ...m, metadata: { ...m.metadata, labels: { ...m.metadata?.labels, [gatewayNameLabel]: gw.name } } };
    const pod = out.spec?.template?.spec;
    if (m.kind === 'Deployment' && pod && secrets.length > 0) {
      const container = pod.containers[0]!;
      container.args = [...(container.args ?? []), '--credential-dir', credentialDir];
      container.volumeMounts = [...(container.volumeMounts ?? []), ...secrets.map((name, i) => ({ name: `credential-${i}`, mountPath: `${credentialDir}/${name}`, readOnly: true }))];
      pod.volumes = [...(pod.volumes ?? []), ...secrets.map((name, i) => ({ name: `credential-${i}`, secret: { secretName: name, optional: true } }))];
    }
    return out as KubernetesObject;
  });
}

/** Where a gateway pod finds its listeners' certificates. */
export const credentialDir = '/etc/weft/credentials';

function key(s: { kind: string; namespace: string; name: string }): string {
  return `${s.kind} ${s.namespace}/${s.name}`;
}

export class GatewayController {
  readonly #o: GatewayControllerOptions;
  readonly #log: Logger;
  readonly #objects: KubernetesObjectApi;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  /** What was last written, by object: a digest of the status, of the deployment. */
  readonly #writtenStatus = new Map<string, string>();
  readonly #deployed = new Map<string, string>();
  /** `key|condition path` -> when its status last changed (lastTransitionTime). */
  readonly #transitions = new Map<string, { status: string; time: string }>();
  readonly #addresses = new Map<string, { value: { type: string; value: string }[]; readAt: number }>();
  /** `namespace/name` of a certificate Secret -> what is wrong with it (nothing: undefined), and when it was read. */
  readonly #secrets = new Map<string, { problem?: string; readAt: number }>();
  #classesDone = false;
  #refreshedAt = Date.now();
  #refreshes = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** Writes made (statuses, deployments), for tests and /debug. */
  readonly counts = { statuses: 0, deployments: 0, errors: 0 };

  constructor(o: GatewayControllerOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#objects = KubernetesObjectApi.makeApiClient(o.kubeConfig);
    this.#custom = o.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#core = o.kubeConfig.makeApiClient(CoreV1Api);
  }

  start(): void {
    const loop = async () => {
      if (this.#stopped) return;
      this.#running = this.#tick().catch((err) => {
        this.counts.errors++;
        this.#log.warn('gateway controller pass failed; retrying', { error: describeError(err) });
      });
      await this.#running;
      if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.intervalMs ?? 500);
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  status(): unknown {
    return { ...this.counts, gateways: [...this.#deployed.keys()], statuses: this.#writtenStatus.size };
  }

  async #tick(): Promise<void> {
    // What was written may have been undone (an object recreated under its name, a status reset,
    // a Deployment deleted): now and then everything is written again. Unchanged writes are no-ops
    // on the API server (lastTransitionTime is kept here).
    const refreshMs = this.#o.refreshMs ?? defaultRefreshMs;
    if (Date.now() - this.#refreshedAt > refreshMs) {
      this.#refreshedAt = Date.now();
      this.#writtenStatus.clear();
      this.#classesDone = false;
      if (++this.#refreshes % 5 === 0) this.#deployed.clear();
    }
    if (this.#o.createClasses !== false && !this.#classesDone) await this.#ensureClasses();
    const all = [...this.#o.statuses()];
    const seen = new Set<string>();
    for (const s of all) {
      if (this.#stopped) return;
      const k = key(s);
      seen.add(k);
      try {
        if (s.kind === 'Gateway') await this.#deploy(s);
        await this.#writeStatus(s);
      } catch (err) {
        this.counts.errors++;
        // Gone meanwhile (deleted, CRD removed): the next push context drops it.
        if (apiStatusOf(err) === 404) continue;
        this.#log.warn('writing Gateway API state failed; retrying', { object: k, error: describeError(err) });
      }
    }
    for (const k of [...this.#writtenStatus.keys()]) if (!seen.has(k)) this.#writtenStatus.delete(k);
    for (const k of [...this.#deployed.keys()]) if (!seen.has(k)) this.#deployed.delete(k);
  }

  async #ensureClasses(): Promise<void> {
    for (const [name, controllerName] of Object.entries(gatewayControllers)) {
      try {
        await this.#custom.createClusterCustomObject({ group, version, plural: 'gatewayclasses', body: { apiVersion: `${group}/${version}`, kind: 'GatewayClass', metadata: { name }, spec: { controllerName, description: name === 'istio' ? 'Istio-compatible gateways, served by Weft' : 'Weft gateways' } } });
        this.#log.info('created GatewayClass', { name, controllerName });
      } catch (err) {
        if (apiStatusOf(err) !== 409) throw err;
      }
    }
    this.#classesDone = true;
  }

  async #deploy(s: GatewayApiObjectStatus): Promise<void> {
    const gw = this.#o.store.get(`${group}/Gateway`, s.namespace, s.name);
    if (!gw) return;
    const spec = gw.spec as K8sGatewaySpec;
    const objects = renderGatewayDeployment({ name: s.name, namespace: s.namespace, spec, ...(gw.metadata.annotations ? { annotations: gw.metadata.annotations } : {}) }, this.#o.proxy);
    const digest = JSON.stringify(objects);
    const k = key(s);
    if (this.#deployed.get(k) === digest) return;
    // The owner's uid: decoded configs do not keep it.
    const live = (await this.#custom.getNamespacedCustomObject({ group, version, namespace: s.namespace, plural: 'gateways', name: s.name })) as { metadata: { uid: string } };
    const owner = { apiVersion: `${group}/${version}`, kind: 'Gateway', name: s.name, uid: live.metadata.uid, controller: true, blockOwnerDeletion: false };
    for (const o of objects) {
      const body = { ...o, metadata: { ...o.metadata, ownerReferences: [owner] } } as KubernetesObject;
      await this.#objects.patch(body, undefined, undefined, gatewayFieldManager, true, PatchStrategy.ServerSideApply);
    }
    this.#deployed.set(k, digest);
    this.counts.deployments++;
    this.#log.info('gateway deployed', { gateway: `${s.namespace}/${s.name}`, deployment: gatewayDeploymentName(s.name, spec.gatewayClassName) });
  }

  /** The Gateway's addresses: its Service's load balancer ingress, else its cluster IP (a cluster without load balancers). */
  async #gatewayAddresses(s: GatewayApiObjectStatus): Promise<{ type: string; value: string }[]> {
    const gw = this.#o.store.get(`${group}/Gateway`, s.namespace, s.name);
    if (!gw) return [];
    const k = key(s);
    const cached = this.#addresses.get(k);
    if (cached && cached.value.length > 0 && Date.now() - cached.readAt < 30_000) return cached.value;
    let svc: V1Service;
    try {
      svc = await this.#core.readNamespacedService({ namespace: s.namespace, name: gatewayDeploymentName(s.name, (gw.spec as K8sGatewaySpec).gatewayClassName) });
    } catch (err) {
      if (apiStatusOf(err) === 404) return [];
      throw err;
    }
    const ingress = svc.status?.loadBalancer?.ingress ?? [];
    const value = ingress.length > 0 ? ingress.map((i) => (i.ip ? { type: 'IPAddress', value: i.ip } : { type: 'Hostname', value: i.hostname ?? '' })) : svc.spec?.clusterIP && svc.spec.clusterIP !== 'None' ? [{ type: 'IPAddress', value: svc.spec.clusterIP }] : [];
    this.#addresses.set(k, { value, readAt: Date.now() });
    return value;
  }

  /**
   * An HTTPS listener whose certificate Secret does not exist or holds no usable certificate and key
   * is ResolvedRefs False / InvalidCertificateRef (pilot's conversion does not read Secrets).
   */
  async #certificateConditions(s: GatewayApiObjectStatus, listener: string, conditions: GatewayApiCondition[]): Promise<GatewayApiCondition[]> {
    const gw = this.#o.store.get(`${group}/Gateway`, s.namespace, s.name);
    const spec = (gw?.spec as K8sGatewaySpec | undefined)?.listeners?.find((l) => l.name === listener);
    if (spec?.protocol !== 'HTTPS' || !conditions.some((c) => c.type === 'ResolvedRefs' && c.status === 'True')) return conditions;
    let problem: string | undefined;
    for (const ref of spec.tls?.certificateRefs ?? []) {
      const namespace = ref.namespace ?? s.namespace;
      // Every pass builds every status: a Secret is read at most every 10 s, not on every pass.
      const cached = this.#secrets.get(`${namespace}/${ref.name}`);
      if (cached && Date.now() - cached.readAt < 10_000) {
        problem = cached.problem;
        if (problem) break;
        continue;
      }
      try {
        const secret = await this.#core.readNamespacedSecret({ namespace, name: ref.name });
        const crt = secret.data?.['tls.crt'];
        const key = secret.data?.['tls.key'];
        if (!crt || !key) problem = `Secret ${namespace}/${ref.name} has no tls.crt and tls.key`;
        else {
          new X509Certificate(Buffer.from(crt, 'base64'));
          createPrivateKey(Buffer.from(key, 'base64'));
        }
      } catch (err) {
        const status = apiStatusOf(err);
        if (status !== undefined && status !== 404) throw err;
        problem = status === 404 ? `Secret ${namespace}/${ref.name} not found` : `Secret ${namespace}/${ref.name} holds no valid certificate and key: ${describeError(err)}`;
      }
      this.#secrets.set(`${namespace}/${ref.name}`, { ...(problem ? { problem } : {}), readAt: Date.now() });
      if (problem) break;
    }
    if (!problem) return conditions;
    const g = s.generation;
    const gen = g !== undefined ? { observedGeneration: g } : {};
    return conditions.map((c) =>
      c.type === 'ResolvedRefs'
        ? { type: c.type, status: 'False', reason: 'InvalidCertificateRef', message: problem, ...gen }
        : c.type === 'Programmed'
          ? { type: c.type, status: 'False', reason: 'Invalid', message: 'the listener has no valid certificate', ...gen }
          : c,
    );
  }

  #stamp(k: string, conditions: readonly GatewayApiCondition[]): (GatewayApiCondition & { lastTransitionTime: string })[] {
    return conditions.map((c) => {
      const id = `${k}|${c.type}`;
      const prev = this.#transitions.get(id);
      const time = prev && prev.status === c.status ? prev.time : new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      this.#transitions.set(id, { status: c.status, time });
      return { ...c, lastTransitionTime: time };
    });
  }

  async #writeStatus(s: GatewayApiObjectStatus): Promise<void> {
    const k = key(s);
    let status: Record<string, unknown>;
    if (s.kind === 'Gateway') {
      const st = s.status as { conditions: GatewayApiCondition[]; listeners: { name: string; conditions: GatewayApiCondition[] }[] };
      const addresses = await this.#gatewayAddresses(s);
      const conditions = st.conditions.map((c) =>
        c.type === 'Programmed' && addresses.length === 0 ? { ...c, status: 'False' as const, reason: 'AddressNotAssigned', message: 'the gateway Service has no address yet' } : c,
      );
      const listeners = await Promise.all(st.listeners.map(async (l) => ({ ...l, conditions: await this.#certificateConditions(s, l.name, l.conditions) })));
      status = {
        conditions: this.#stamp(k, conditions),
        listeners: listeners.map((l) => ({ ...l, conditions: this.#stamp(`${k}|listener ${l.name}`, l.conditions) })),
        ...(addresses.length > 0 ? { addresses } : {}),
      };
    } else if (s.kind === 'GatewayClass') {
      status = { conditions: this.#stamp(k, (s.status as { conditions: GatewayApiCondition[] }).conditions) };
    } else {
      const st = s.status as { parents: { parentRef: object; controllerName: string; conditions: GatewayApiCondition[] }[] };
      status = { parents: st.parents.map((p, i) => ({ ...p, conditions: this.#stamp(`${k}|parent ${i} ${JSON.stringify(p.parentRef)}`, p.conditions) })) };
    }
    const digest = JSON.stringify(status);
    if (this.#writtenStatus.get(k) === digest) return;
    const plural = plurals[s.kind]!;
    const body = { status };
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    if (s.kind === 'GatewayClass') await this.#custom.patchClusterCustomObjectStatus({ group, version, plural, name: s.name, body }, merge);
    else await this.#custom.patchNamespacedCustomObjectStatus({ group, version, namespace: s.namespace, plural, name: s.name, body }, merge);
    if (this.#writtenStatus.has(k) === false) this.#log.debug('status written', { object: k });
    this.#writtenStatus.set(k, digest);
    this.counts.statuses++;
  }
}
