// `weftctl install`, `uninstall` and `check` against a cluster: server-side apply of the rendered
// charts (field manager `weftctl`), waits with one progress line per step, removal of everything
// install made (and of what weftd made at run time), and the checks, each naming what is wrong.
// Every call goes through @kubernetes/client-node with the user's kubeconfig; no kubectl, no helm.
import { nodeIdWorkload } from '@weft/mesh';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type V1Deployment,
  type V1Pod,
  VersionApi,
} from '@kubernetes/client-node';
import { apiServerOf } from '../client.ts';
import { crdManifests, type InstallValues, type Manifest, renderInstall, revisionOf } from './manifests.ts';

/** The label install puts on every object it applies; uninstall deletes by it. */
export const managedByLabel = 'app.kubernetes.io/managed-by';
export const managedBy = 'weftctl';
export const fieldManager = 'weftctl';

/** The kinds install creates, in the order uninstall deletes them (webhooks first: nothing may wait on a weftd going away). */
export const installedKinds: readonly { apiVersion: string; kind: string; namespaced: boolean }[] = [
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', namespaced: false },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', namespaced: false },
  { apiVersion: 'apps/v1', kind: 'Deployment', namespaced: true },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', namespaced: true },
  { apiVersion: 'v1', kind: 'Service', namespaced: true },
  { apiVersion: 'v1', kind: 'ConfigMap', namespaced: true },
  { apiVersion: 'v1', kind: 'ServiceAccount', namespaced: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', namespaced: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', namespaced: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', namespaced: false },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', namespaced: false },
  { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', namespaced: false },
];

/** What weftd itself writes while it runs (kube-citadel): uninstall removes these too. */
export const runtimeObjects = { rootCertConfigMap: 'istio-ca-root-cert', rootCertLabel: 'istio.io/config=true', caSecret: 'istio-ca-secret' } as const;

export type Progress = (line: string) => void;

/** The API server's own words for a failed call (its Status message), else the client's. */
export function apiError(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body: unknown = e?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // not JSON: keep the text
    }
  }
  const message = typeof body === 'object' && body !== null && 'message' in body ? String((body as { message: unknown }).message) : typeof body === 'string' && body ? body : undefined;
  if (message) return e.code ? `${message} (HTTP ${e.code})` : message;
  const cause = (err as { cause?: unknown })?.cause;
  const base = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  return cause instanceof Error ? `${base}: ${cause.message}` : base;
}

const statusOf = (err: unknown): number | undefined => (err as { code?: unknown })?.code as number | undefined;
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** Calls `probe` until it returns a value, or throws after `timeoutMs` with the last reason it gave. */
async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | string>, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const r = await probe();
      if (typeof r !== 'string') return r;
      last = r;
    } catch (err) {
      last = apiError(err);
    }
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s: ${last}`);
    await sleep(500, signal);
  }
}

const seconds = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

export interface ClusterVersion {
  server: string;
  gitVersion: string;
  minor: number;
}

export async function clusterVersion(kc: KubeConfig): Promise<ClusterVersion> {
  const v = await kc.makeApiClient(VersionApi).getCode();
  return { server: apiServerOf(kc), gitVersion: v.gitVersion, minor: Number.parseInt(v.minor, 10) };
}

/** Oldest Kubernetes minor version install and check accept (EndpointSlice v1, PDB policy/v1, projected tokens, sysctls). */
export const minimumMinor = 26;

function withManagedBy(m: Manifest): Manifest {
  const copy = structuredClone(m);
  copy.metadata.labels = { ...(copy.metadata.labels ?? {}), [managedByLabel]: managedBy };
  return copy;
}

/** Server-side apply, field manager `weftctl`, conflicts forced (install owns these objects). */
async function apply(objects: KubernetesObjectApi, manifests: readonly Manifest[]): Promise<void> {
  for (const m of manifests) {
    try {
      await objects.patch(withManagedBy(m) as KubernetesObject, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw new Error(`applying ${m.kind} ${m.metadata.namespace ? `${m.metadata.namespace}/` : ''}${m.metadata.name}: ${apiError(err)}`);
    }
  }
}

function deploymentReady(d: V1Deployment | undefined): string | true {
  if (!d) return 'not found';
  const want = d.spec?.replicas ?? 1;
  const ready = d.status?.readyReplicas ?? 0;
  const updated = d.status?.updatedReplicas ?? 0;
  if ((d.status?.observedGeneration ?? 0) < (d.metadata?.generation ?? 1)) return 'the new spec is not yet seen by the controller';
  if (updated < want || ready < want || (d.status?.replicas ?? 0) > want) return `${ready}/${want} ready`;
  return true;
}

/** Why a deployment's pods are not ready, from the pods themselves (image not there, crash loop...). */
async function podTrouble(core: CoreV1Api, namespace: string, selector: string): Promise<string> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
  const reasons: string[] = [];
  for (const p of pods.items) {
    for (const c of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
      const w = c.state?.waiting;
      const t = c.lastState?.terminated;
      if (w?.reason && w.reason !== 'ContainerCreating' && w.reason !== 'PodInitializing') reasons.push(`${p.metadata?.name}/${c.name}: ${w.reason}${w.message ? ` (${w.message.slice(0, 200)})` : ''}`);
      else if (t && c.restartCount > 0) reasons.push(`${p.metadata?.name}/${c.name}: restarted ${c.restartCount}×, last exit ${t.exitCode} ${t.reason ?? ''}`.trim());
    }
    const unschedulable = p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    if (unschedulable) reasons.push(`${p.metadata?.name}: not scheduled: ${unschedulable.message}`);
  }
  return reasons.join('; ');
}

async function waitForDeployment(kc: KubeConfig, namespace: string, name: string, selector: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  await until(
    `Deployment ${namespace}/${name} ready`,
    timeoutMs,
    async () => {
      const r = deploymentReady(await apps.readNamespacedDeployment({ name, namespace }));
      if (r === true) return true;
      const trouble = await podTrouble(core, namespace, selector).catch(() => '');
      return trouble ? `${r}: ${trouble}` : r;
    },
    signal,
  );
}

/** A VirtualService galley accepts, and one it refuses, for dry-run creates that exercise the validation webhook. */
function probeVirtualService(namespace: string, valid: boolean): KubernetesObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'weftctl-webhook-probe', namespace },
    spec: { hosts: ['weftctl-probe.example'], http: [{ route: [{ destination: { host: 'weftctl-probe.example' }, weight: valid ? 100 : -5 }] }] },
  } as KubernetesObject;
}

export interface WebhookProbe {
  validation: true | string;
  injection: true | string;
}

/**
 * Whether weftd's webhooks answer, without leaving anything behind (dry-run creates, which the API
 * server sends to webhooks with sideEffects None): a valid VirtualService is admitted and an invalid
 * one refused by the validating webhook; a pod selected for injection comes back with istio-proxy.
 */
export async function probeWebhooks(kc: KubeConfig, namespace: string, revision: string): Promise<WebhookProbe> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  let validation: true | string;
  try {
    await objects.create(probeVirtualService(namespace, true), undefined, 'All');
    try {
      await objects.create(probeVirtualService(namespace, false), undefined, 'All');
      validation = 'an invalid VirtualService (negative weight) was admitted: the validating webhook did not check it';
    } catch (err) {
      const msg = apiError(err);
      validation = /denied the request/.test(msg) ? true : `an invalid VirtualService was refused, but not by the webhook: ${msg}`;
    }
  } catch (err) {
    validation = apiError(err);
  }
  let injection: true | string;
  try {
    const labels: Record<string, string> = revision === 'default' ? { 'sidecar.istio.io/inject': 'true' } : { 'istio.io/rev': revision };
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'weftctl-injection-probe', namespace, labels },
      spec: { containers: [{ name: 'app', image: 'weftctl-probe.invalid/none:0', ports: [{ containerPort: 8080 }] }] },
    };
    const got = await core.createNamespacedPod({ namespace, body: pod, dryRun: 'All' });
    const names = (got.spec?.containers ?? []).map((c) => c.name);
    injection = names.includes('istio-proxy') ? true : `a pod selected for injection came back without istio-proxy (containers: ${names.join(', ')})`;
  } catch (err) {
    injection = apiError(err);
  }
  return { validation, injection };
}

export interface InstallOptions {
  timeoutMs: number;
  progress: Progress;
  signal?: AbortSignal;
}

/** Applies the rendered charts and waits until weftd (and the gateway) are ready and the webhooks answer. */
export async function install(kc: KubeConfig, values: InstallValues, o: InstallOptions): Promise<void> {
  const t0 = Date.now();
  const deadline = t0 + o.timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  const version = await clusterVersion(kc);
  o.progress(`Kubernetes ${version.gitVersion} at ${version.server}`);
  if (version.minor < minimumMinor) throw new Error(`Kubernetes 1.${version.minor} is older than 1.${minimumMinor}, the oldest Weft installs on`);
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const ns = values.namespace;
  try {
    await core.readNamespace({ name: ns });
    o.progress(`namespace ${ns}: exists`);
  } catch (err) {
    if (statusOf(err) !== 404) throw new Error(`reading namespace ${ns}: ${apiError(err)}`);
    // only a namespace install created carries the label, so uninstall removes only that one
    await apply(objects, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }]);
    o.progress(`namespace ${ns}: created`);
  }
  const revision = revisionOf(values.weftd);
  for (const { chart, manifests } of renderInstall(values)) {
    const t = Date.now();
    await apply(objects, manifests);
    o.progress(`${chart}: applied ${summarize(manifests)}`);
    if (chart === 'base') {
      const crds = manifests.filter((m) => m.kind === 'CustomResourceDefinition').map((m) => m.metadata.name);
      if (crds.length > 0) {
        await waitForCrds(kc, crds, left(), o.signal);
        o.progress(`base: ${crds.length} CustomResourceDefinitions established (${seconds(t)})`);
      }
    } else if (chart === 'weftd') {
      await waitForDeployment(kc, ns, 'weftd', 'app=weftd', left(), o.signal);
      o.progress(`weftd: Deployment ${ns}/weftd ready (${seconds(t)})`);
      const t2 = Date.now();
      await until(
        'weftd’s webhooks answer',
        left(),
        async () => {
          const p = await probeWebhooks(kc, ns, revision);
          if (p.validation === true && p.injection === true) return true;
          return [p.validation === true ? '' : `validation: ${p.validation}`, p.injection === true ? '' : `injection: ${p.injection}`].filter(Boolean).join('; ');
        },
        o.signal,
      );
      o.progress(`weftd: webhooks answer: validation refuses an invalid VirtualService, injection adds istio-proxy (${seconds(t2)})`);
    } else {
      const name = String(values.gateway.name);
      const labels = values.gateway.labels as Record<string, string>;
      await waitForDeployment(kc, ns, name, Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','), left(), o.signal);
      o.progress(`gateway: Deployment ${ns}/${name} ready (${seconds(t)})`);
    }
  }
  o.progress(`installed in ${seconds(t0)}; \`weftctl check\` verifies it`);
}

function summarize(manifests: readonly Manifest[]): string {
  const counts = new Map<string, number>();
  for (const m of manifests) counts.set(m.kind, (counts.get(m.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}${n === 1 ? '' : 's'}`).join(', ');
}

async function waitForCrds(kc: KubeConfig, names: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  await until(
    'CustomResourceDefinitions established',
    timeoutMs,
    async () => {
      const pending: string[] = [];
      for (const name of names) {
        const crd = await ext.readCustomResourceDefinition({ name }).catch(() => undefined);
        if (!crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) pending.push(name);
      }
      return pending.length === 0 ? true : `not established: ${pending.join(', ')}`;
    },
    signal,
  );
}

export interface UninstallOptions {
  namespace: string;
  /** Also delete the CRDs, and with them every Istio and Gateway API object in the cluster. */
  purge: boolean;
  timeoutMs: number;
  progress: Progress;
  signal?: AbortSignal;
}

/** Every object install labelled, per kind (CRDs included), in uninstall's order. */
export async function installedObjects(kc: KubeConfig): Promise<KubernetesObject[]> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const out: KubernetesObject[] = [];
  for (const k of installedKinds) {
    const list = await objects.list(k.apiVersion, k.kind, undefined, undefined, undefined, undefined, undefined, `${managedByLabel}=${managedBy}`);
    for (const item of list.items) out.push({ ...item, apiVersion: k.apiVersion, kind: k.kind });
  }
  const ns = await kc.makeApiClient(CoreV1Api).listNamespace({ labelSelector: `${managedByLabel}=${managedBy}` });
  for (const item of ns.items) out.push({ ...item, apiVersion: 'v1', kind: 'Namespace' });
  return out;
}

const nameOf = (o: KubernetesObject) => `${o.kind} ${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}`;

/**
 * Removes what install applied (found by its label), weftd's root-certificate ConfigMaps in every
 * namespace and its CA Secret, and the namespace when install created it. Without `purge` the CRDs
 * stay, and with them the users' mesh config (Istio's and Helm's behaviour); with `purge` they go too.
 */
export async function uninstall(kc: KubeConfig, o: UninstallOptions): Promise<void> {
  const t0 = Date.now();
  const deadline = t0 + o.timeoutMs;
  const left = () => Math.max(1000, deadline - Date.now());
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const found = await installedObjects(kc);
  const crds = found.filter((x) => x.kind === 'CustomResourceDefinition');
  const namespaces = found.filter((x) => x.kind === 'Namespace');
  const rest = found.filter((x) => x.kind !== 'CustomResourceDefinition' && x.kind !== 'Namespace');
  if (found.length === 0) o.progress('nothing installed by weftctl was found');
  const del = async (x: KubernetesObject) => {
    try {
      await objects.delete(x, undefined, undefined, undefined, undefined, 'Background');
    } catch (err) {
      if (statusOf(err) !== 404) throw new Error(`deleting ${nameOf(x)}: ${apiError(err)}`);
    }
  };
  // webhooks and workloads first, so that weftd is gone before what it writes is removed
  for (const x of rest) await del(x);
  if (rest.length > 0) o.progress(`deleted ${rest.length} objects: ${summarize(rest as Manifest[])}`);
  const t1 = Date.now();
  await until(
    'weftd and the gateway stopped',
    left(),
    async () => {
      // weftd's and the gateway's pods carry part-of=weft (the charts' templates)
      const pods = await core.listNamespacedPod({ namespace: o.namespace, labelSelector: 'app.kubernetes.io/part-of=weft' }).catch(() => ({ items: [] as V1Pod[] }));
      const running = pods.items.map((p) => p.metadata?.name);
      return running.length === 0 ? true : `pods still running: ${running.join(', ')}`;
    },
    o.signal,
  );
  o.progress(`weftd and the gateway stopped (${seconds(t1)})`);
  // what weftd wrote while it ran: the root certificate in every namespace, its CA's keys
  const rootCerts = await core.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=${runtimeObjects.rootCertConfigMap}`, labelSelector: runtimeObjects.rootCertLabel });
  for (const cm of rootCerts.items) await del({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' });
  const secret = await core.readNamespacedSecret({ name: runtimeObjects.caSecret, namespace: o.namespace }).catch(() => undefined);
  if (secret) await del({ ...secret, apiVersion: 'v1', kind: 'Secret' });
  o.progress(`deleted weftd's ${rootCerts.items.length} ${runtimeObjects.rootCertConfigMap} ConfigMaps${secret ? ` and Secret ${o.namespace}/${runtimeObjects.caSecret}` : ''}`);
  if (o.purge) {
    for (const x of crds) await del(x);
    if (crds.length > 0) o.progress(`--purge: deleted ${crds.length} CustomResourceDefinitions (and every object of their kinds)`);
  } else if (crds.length > 0) o.progress(`kept ${crds.length} CustomResourceDefinitions and the mesh config in them (weftctl uninstall --purge deletes them)`);
  for (const x of namespaces) {
    await del(x);
    const t2 = Date.now();
    await until(`namespace ${x.metadata?.name} deleted`, left(), async () => ((await core.readNamespace({ name: x.metadata!.name! }).catch((e) => (statusOf(e) === 404 ? undefined : Promise.reject(e)))) ? 'terminating' : true), o.signal);
    o.progress(`namespace ${x.metadata?.name}: deleted (${seconds(t2)})`);
  }
  if (o.purge) await until('CustomResourceDefinitions deleted', left(), async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const still = [];
    for (const c of crds) if (await ext.readCustomResourceDefinition({ name: c.metadata!.name! }).catch(() => undefined)) still.push(c.metadata!.name);
    return still.length === 0 ? true : `still terminating: ${still.join(', ')}`;
  }, o.signal);
  o.progress(`uninstalled in ${seconds(t0)}`);
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface CheckOptions {
  namespace: string;
  /** Pre-install checks: whether the cluster can take Weft (and the user may install it). */
  pre: boolean;
  revision?: string;
}

/** Whether the user may do each thing install does (SelfSubjectAccessReview). */
async function canInstall(kc: KubeConfig): Promise<string[]> {
  const authz = kc.makeApiClient(AuthorizationV1Api);
  const wanted: [string, string, string][] = [
    ['apiextensions.k8s.io', 'customresourcedefinitions', 'create'],
    ['rbac.authorization.k8s.io', 'clusterroles', 'create'],
    ['rbac.authorization.k8s.io', 'clusterrolebindings', 'create'],
    ['admissionregistration.k8s.io', 'mutatingwebhookconfigurations', 'create'],
    ['admissionregistration.k8s.io', 'validatingwebhookconfigurations', 'create'],
    ['', 'namespaces', 'create'],
    ['apps', 'deployments', 'create'],
  ];
  const denied: string[] = [];
  for (const [group, resource, verb] of wanted) {
    const r = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { group, resource, verb } } } });
    if (!r.status?.allowed) denied.push(`${verb} ${resource}`);
  }
  return denied;
}

interface SynczEntry {
  id: string;
  authenticated?: boolean;
  types: Record<string, { status: string }>;
}

/** `weftctl check`: each check in order; a failed one names what is wrong. Later checks that depend on a failed one are skipped. */
export async function check(kc: KubeConfig, o: CheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (name: string, ok: boolean, detail: string) => results.push({ name, ok, detail });
  let version: ClusterVersion;
  try {
    version = await clusterVersion(kc);
  } catch (err) {
    add('API server reachable', false, `${apiServerOf(kc)}: ${apiError(err)}`);
    return results;
  }
  add('API server reachable', true, `${version.server}`);
  add('Kubernetes version', version.minor >= minimumMinor, `${version.gitVersion}${version.minor >= minimumMinor ? '' : ` (Weft needs 1.${minimumMinor} or newer)`}`);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const wantedCrds = crdManifests().map((m) => m.metadata.name);
  const missing: string[] = [];
  const notEstablished: string[] = [];
  for (const name of wantedCrds) {
    const crd = await ext.readCustomResourceDefinition({ name }).catch((e) => (statusOf(e) === 404 ? undefined : Promise.reject(e)));
    if (!crd) missing.push(name);
    else if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) notEstablished.push(name);
  }
  if (o.pre) {
    const denied = await canInstall(kc);
    add('permissions to install', denied.length === 0, denied.length === 0 ? 'may create CRDs, cluster roles, webhook configurations, namespaces and deployments' : `not allowed to ${denied.join(', ')}`);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const others = (await admission.listMutatingWebhookConfiguration()).items.filter((w) => w.metadata?.name === 'istio-sidecar-injector' && w.metadata?.labels?.[managedByLabel] !== managedBy);
    add('no other Istio control plane', others.length === 0, others.length === 0 ? 'no istio-sidecar-injector of another installer' : 'istio-sidecar-injector exists and was not installed by weftctl (Istio?): uninstall it first');
    add('CRDs', true, missing.length === 0 ? `all ${wantedCrds.length} present (install keeps them)` : `${missing.length} of ${wantedCrds.length} to be created by install`);
    return results;
  }
  add('CRDs', missing.length + notEstablished.length === 0, missing.length + notEstablished.length === 0 ? `${wantedCrds.length} established` : [missing.length ? `missing: ${missing.join(', ')}` : '', notEstablished.length ? `not established: ${notEstablished.join(', ')}` : ''].filter(Boolean).join('; '));
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const ns = o.namespace;
  const deployment = await apps.readNamespacedDeployment({ name: 'weftd', namespace: ns }).catch((e) => (statusOf(e) === 404 ? undefined : Promise.reject(e)));
  if (!deployment) {
    add('weftd ready', false, `no Deployment ${ns}/weftd (run weftctl install)`);
    return results;
  }
  const ready = deploymentReady(deployment);
  const trouble = ready === true ? '' : await podTrouble(core, ns, 'app=weftd').catch(() => '');
  const image = deployment.spec?.template.spec?.containers[0]?.image ?? '?';
  add('weftd ready', ready === true, ready === true ? `${deployment.status?.readyReplicas}/${deployment.spec?.replicas ?? 1} replicas of ${image}` : `${ready}${trouble ? `: ${trouble}` : ''}`);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const configs = [
    ...(await admission.listValidatingWebhookConfiguration({ fieldSelector: `metadata.name=istio-validator-${ns}` })).items,
    ...(await admission.listMutatingWebhookConfiguration({ fieldSelector: 'metadata.name=istio-sidecar-injector' })).items,
  ];
  const noBundle = configs.flatMap((c) => (c.webhooks ?? []).filter((w) => !w.clientConfig.caBundle).map((w) => `${c.metadata?.name}/${w.name}`));
  if (configs.length < 2) add('webhooks answer', false, `missing webhook configuration(s): found ${configs.map((c) => c.metadata?.name).join(', ') || 'none'}`);
  else if (noBundle.length > 0) add('webhooks answer', false, `no caBundle yet (weftd sets it once it serves): ${noBundle.join(', ')}`);
  else if (ready !== true) add('webhooks answer', false, 'weftd is not ready');
  else {
    const p = await probeWebhooks(kc, ns, o.revision ?? (deployment.metadata?.labels?.['istio.io/rev'] || 'default'));
    const ok = p.validation === true && p.injection === true;
    add('webhooks answer', ok, ok ? 'validation refuses an invalid VirtualService; injection adds istio-proxy' : [p.validation === true ? '' : `validation: ${p.validation}`, p.injection === true ? '' : `injection: ${p.injection}`].filter(Boolean).join('; '));
  }
  if (ready !== true) {
    add('proxies synced', false, 'weftd is not ready');
    return results;
  }
  try {
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=weftd' });
    const running = pods.items.filter((p) => p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    const proxies = new Map<string, SynczEntry>();
    for (const pod of running) {
      const body: unknown = await core.connectGetNamespacedPodProxyWithPath({ name: `${pod.metadata!.name}:15014`, namespace: ns, path: 'debug/syncz' });
      // the client parses a JSON answer itself (its declared type says string)
      const entries = (typeof body === 'string' ? JSON.parse(body) : body) as SynczEntry[];
      if (!Array.isArray(entries)) throw new Error(`/debug/syncz of ${pod.metadata!.name} is not a list of proxies`);
      for (const e of entries) proxies.set(e.id, e);
    }
    const stale = [...proxies.values()].filter((e) => Object.values(e.types).some((t) => t.status !== 'ACKED'));
    const names = (es: SynczEntry[]) => es.map((e) => nodeIdWorkload(e.id)).join(', ');
    add(
      'proxies synced',
      stale.length === 0,
      stale.length === 0 ? `${proxies.size} connected, every one has ACKed its config${proxies.size ? ` (${names([...proxies.values()])})` : ''}` : `${stale.length} of ${proxies.size} not synced: ${stale.map((e) => `${nodeIdWorkload(e.id)} (${Object.entries(e.types).filter(([, t]) => t.status !== 'ACKED').map(([k, t]) => `${k.split('.').pop()} ${t.status}`).join(', ')})`).join('; ')}`,
    );
  } catch (err) {
    add('proxies synced', false, `weftd's /debug/syncz through the API server: ${apiError(err)}`);
  }
  return results;
}
