// Prometheus in the cluster, for tests: deploy/addons/prometheus deployed into a test's namespace
// (kustomize, through kubectl), and its HTTP API asked through the API server's service proxy, so it
// works wherever the kubeconfig does (kube-local, kind, EKS) without a port-forward or a route to pods.
//
// For the BookInfo kube suite's metrics scenario (e2e/bookinfo, the kube driver):
//
//   const prom = await deployPrometheusAddon(kubeconfig, { namespace: 'istio-system', image: 'weft/prometheus:<tag>', scrapeInterval: '2s' });
//   await prom.value('sum(istio_requests_total{reporter="destination",destination_workload="reviews-v2"})');  // a number, or undefined
//   await prom.remove();   // before the namespace goes: the ClusterRole and its binding are cluster-wide
//
// On kube-local import the image first (`npm run images -- prometheus --tag <tag>`, then `ctr -n k8s.io
// images import` or deploy/kube-local/image.sh --load); on a cluster that pulls images leave `image`
// out (the addon's prom/prometheus). The ClusterRole and ClusterRoleBinding it creates are
// cluster-scoped: hold the exclusive cluster lock, or give a unique `nameSuffix` (TEAM.md).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubectl, kubectlOk } from './kubectl.ts';

/** The addon's kustomization (the upstream image). */
export const prometheusAddonDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../deploy/addons/prometheus/base');

export interface PrometheusAddonOptions {
  /** The namespace it runs in; it must exist. */
  namespace: string;
  /** The Prometheus image, e.g. weft/prometheus:0.1.0 (default: the addon's prom/prometheus). */
  image?: string;
  /** Appended to every object's name (kustomize nameSuffix), e.g. `-a1b2c3`: the ClusterRole and its binding are cluster-wide. */
  nameSuffix?: string;
  /** The global scrape interval (the addon's: 15s), e.g. `2s` for a test that waits on counters. */
  scrapeInterval?: string;
  /** How long to wait for the Deployment to be ready (default 180 s). */
  readyTimeoutSeconds?: number;
}

/** One series of an instant query. */
export interface PrometheusSample {
  metric: Record<string, string>;
  value: number;
}

/** A target from /api/v1/targets (active ones). */
export interface PrometheusTarget {
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
}

export interface PrometheusAddon {
  namespace: string;
  /** The Service's name (prometheus + nameSuffix). */
  service: string;
  /** GET `path` (e.g. `/api/v1/status/buildinfo`) of Prometheus's HTTP API; its `data`, or throws with Prometheus's error. */
  api(path: string): Promise<unknown>;
  /** An instant query's series (vector results; a scalar comes back as one series without labels). */
  query(promql: string): Promise<PrometheusSample[]>;
  /** The value of a query that yields one series (e.g. a `sum(...)`); undefined when it yields none. */
  value(promql: string): Promise<number | undefined>;
  /** The active targets, as Prometheus's targets page shows them. */
  targets(): Promise<PrometheusTarget[]>;
  /** Deletes every object deployed (waits for nothing). */
  remove(): Promise<void>;
}

interface KubeObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
}

/** Renders the addon with kustomize (namespace, suffix, image), then sets the scrape interval. */
async function render(kubeconfig: string, options: PrometheusAddonOptions): Promise<KubeObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-prometheus-addon-'));
  try {
    const lines = ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'resources:', `- ${JSON.stringify(relative(dir, prometheusAddonDir))}`, `namespace: ${JSON.stringify(options.namespace)}`];
    if (options.nameSuffix) lines.push(`nameSuffix: ${JSON.stringify(options.nameSuffix)}`);
    if (options.image) {
      // name[:tag]: the tag is after the last colon that follows the last slash (a registry may have a port)
      const at = options.image.lastIndexOf(':');
      const [name, tag] = at > options.image.lastIndexOf('/') ? [options.image.slice(0, at), options.image.slice(at + 1)] : [options.image, 'latest'];
      lines.push('images:', '- name: prom/prometheus', `  newName: ${JSON.stringify(name)}`, `  newTag: ${JSON.stringify(tag)}`);
    }
    await writeFile(join(dir, 'kustomization.yaml'), `${lines.join('\n')}\n`);
    // kustomize's YAML, as JSON: kubectl's client-side dry run converts it without a YAML library here
    const yaml = await kubectlOk(kubeconfig, ['kustomize', dir]);
    const json = await kubectlOk(kubeconfig, ['create', '--dry-run=client', '-o', 'json', '-f', '-'], yaml);
    // one indented JSON object per input object, each opening at the start of a line
    const objects = json
      .split(/^(?=\{)/m)
      .filter((t) => t.trim())
      .map((t) => JSON.parse(t) as KubeObject);
    if (options.scrapeInterval) {
      const cm = objects.find((o) => o.kind === 'ConfigMap');
      let config = cm?.data?.['prometheus.yml'];
      if (!cm || config === undefined) throw new Error(`${prometheusAddonDir}: no ConfigMap with prometheus.yml`);
      // the global block's keys are the first at two spaces; the timeout may not exceed the interval
      for (const key of ['scrape_interval', 'scrape_timeout']) {
        const line = new RegExp(`^ {2}${key}: .*$`, 'm');
        if (!line.test(config)) throw new Error(`${prometheusAddonDir}: prometheus.yml has no global ${key}`);
        config = config.replace(line, `  ${key}: ${options.scrapeInterval}`);
      }
      cm.data!['prometheus.yml'] = config;
    }
    return objects;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Prometheus's API through the API server's service proxy: `data` of the answer, or a thrown error naming Prometheus's. */
export async function prometheusApi(kubeconfig: string, where: { namespace: string; service: string; port?: string }, path: string): Promise<unknown> {
  const raw = `/api/v1/namespaces/${where.namespace}/services/${where.service}:${where.port ?? 'http'}/proxy${path}`;
  const r = await kubectl(kubeconfig, ['get', '--raw', raw]);
  if (r.code !== 0) throw new Error(`Prometheus ${path}: kubectl get --raw exited ${r.code}: ${r.stderr.trim()}`);
  const body = JSON.parse(r.stdout) as { status: string; data?: unknown; error?: string };
  if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? r.stdout}`);
  return body.data;
}

/**
 * Deploys deploy/addons/prometheus into `options.namespace` and waits until it is ready. The caller
 * removes it (`remove()`) before deleting the namespace.
 */
export async function deployPrometheusAddon(kubeconfig: string, options: PrometheusAddonOptions): Promise<PrometheusAddon> {
  const objects = await render(kubeconfig, options);
  const manifest = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });
  const where = { namespace: options.namespace, service: `prometheus${options.nameSuffix ?? ''}` };
  const remove = async () => {
    await kubectl(kubeconfig, ['delete', '--ignore-not-found', '--wait=false', '-f', '-'], manifest);
  };
  await kubectlOk(kubeconfig, ['apply', '--server-side', '--force-conflicts', '--field-manager=weft-tests', '-f', '-'], manifest);
  const ready = await kubectl(kubeconfig, ['rollout', 'status', '-n', options.namespace, `deployment/${where.service}`, `--timeout=${options.readyTimeoutSeconds ?? 180}s`]);
  if (ready.code !== 0) {
    const pods = await kubectl(kubeconfig, ['describe', 'pods', '-n', options.namespace, '-l', 'app=prometheus']);
    throw new Error(`Prometheus not ready in ${options.namespace}: ${ready.stderr.trim()}\n${pods.stdout.slice(-3000)}`);
  }
  const api = (path: string) => prometheusApi(kubeconfig, where, path);
  const query = async (promql: string): Promise<PrometheusSample[]> => {
    const data = (await api(`/api/v1/query?query=${encodeURIComponent(promql)}`)) as { resultType: string; result: unknown };
    if (data.resultType === 'scalar') return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
    if (data.resultType !== 'vector') throw new Error(`Prometheus query ${promql}: a ${data.resultType}, not an instant vector`);
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  };
  return {
    ...where,
    api,
    query,
    async value(promql) {
      const samples = await query(promql);
      if (samples.length > 1) throw new Error(`Prometheus query ${promql}: ${samples.length} series, expected one (sum them)`);
      return samples[0]?.value;
    },
    async targets() {
      return ((await api('/api/v1/targets?state=active')) as { activeTargets: PrometheusTarget[] }).activeTargets;
    },
    remove,
  };
}
