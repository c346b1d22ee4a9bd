// `weftctl apply|delete -f ... --kubeconfig FILE`: the same command against Weft installed on a
// cluster. Resources are checked with galley first, as for the local mesh (one invalid resource and
// nothing is applied); then written with server-side apply through the API server (where weftd's
// validating webhook checks them again) or deleted; then the command waits, for every ready weftd
// replica (read through the API server's pod proxy on 15014), until it holds the change and every
// proxy connected to it has ACKed a push that carries it.
import { type Config, formatProblem } from '@weft/model';
import { objectName, readAndValidate } from '../up/config-dir.ts';
import { checked, waitForSync, type WeftdReader } from './apply.ts';

export interface KubeApplyOptions {
  /** The kubeconfig file (`--kubeconfig`); undefined: $KUBECONFIG, else ~/.kube/config. */
  kubeconfig: string | undefined;
  files: readonly string[];
  namespace: string;
  waitMs: number;
  /** Where weftd runs (weftctl install's istio-system). */
  systemNamespace: string;
}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

type Kube = typeof import('@weft/kube');

/** The object sent to the API server: envelope, identifying metadata, the spec (or body) as given. */
function clusterObject(c: Config, bodyAtTopLevel: boolean) {
  const m = c.metadata;
  const metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } = { name: m.name };
  if (m.namespace) metadata.namespace = m.namespace;
  if (m.labels && Object.keys(m.labels).length > 0) metadata.labels = m.labels;
  if (m.annotations && Object.keys(m.annotations).length > 0) metadata.annotations = m.annotations;
  const body = bodyAtTopLevel ? { ...(c.spec as Record<string, unknown>) } : { spec: c.spec };
  return { apiVersion: c.apiVersion, kind: c.kind, metadata, ...body };
}

async function cluster(o: KubeApplyOptions, io: Io, command: string): Promise<{ kube: Kube; kc: ReturnType<Kube['loadKubeConfig']> } | undefined> {
  // Loaded on use: the Kubernetes client library is needed by the cluster path only.
  const kube = await import('@weft/kube');
  try {
    return { kube, kc: kube.loadKubeConfig(o.kubeconfig) };
  } catch (e) {
    io.err(`weftctl: ${command}: cannot use kubeconfig ${o.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config'}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`);
    return undefined;
  }
}

/** One reader per ready weftd replica, with the push version it had before the change. */
async function replicas(kube: Kube, kc: ReturnType<Kube['loadKubeConfig']>, ns: string): Promise<{ reader: WeftdReader; before: string }[]> {
  const pods = await kube.weftdReplicas(kc, ns);
  if (pods.length === 0) throw new Error(`no ready weftd pod in ${ns} (weftctl check says why)`);
  return Promise.all(
    pods.map(async (pod) => {
      const reader: WeftdReader = { get: (path) => kube.weftdDebug(kc, ns, pod, path), fileOf: () => '', logHint: `kubectl logs -n ${ns} ${pod}` };
      const push = await reader.get<{ version?: string }>('/debug/push_status');
      return { reader, before: push.version ?? '' };
    }),
  );
}

async function waitAll(weftds: { reader: WeftdReader; before: string }[], present: readonly Config[], absent: readonly Config[], waitMs: number): Promise<string | undefined> {
  const whys = await Promise.all(weftds.map((w) => waitForSync(w.reader, present, absent, w.before, waitMs)));
  return whys.find((w) => w !== undefined);
}

export async function applyKube(o: KubeApplyOptions, io: Io): Promise<number> {
  const items = await checked(o, io, 'applied');
  if (!items) return 1;
  const c = await cluster(o, io, 'apply');
  if (!c) return 1;
  try {
    const weftds = o.waitMs > 0 ? await replicas(c.kube, c.kc, o.systemNamespace) : [];
    const results = await c.kube.applyClusterObjects(
      c.kc,
      items.map((i) => clusterObject(i.config, i.bodyAtTopLevel)),
    );
    for (const [n, r] of results.entries()) io.out(`${objectName(items[n]!.config)} ${r.action}\n`);
    if (o.waitMs > 0 && results.some((r) => r.action !== 'unchanged')) {
      // weftd stores the CRD kinds; a Service or the like it watches otherwise, and /debug/config_versions never lists it
      const stored = items.filter((i) => i.crd).map((i) => i.config);
      const why = await waitAll(weftds, stored, [], o.waitMs);
      if (why !== undefined) {
        io.err(`weftctl: applied, but not in force everywhere after ${o.waitMs / 1000} s: ${why}\n`);
        return 1;
      }
    }
    return 0;
  } catch (e) {
    io.err(`weftctl: apply: ${(e as Error).message}\n`);
    return 1;
  }
}

export async function removeKube(o: KubeApplyOptions, io: Io): Promise<number> {
  // Deleting needs only what names an object; structural problems elsewhere do not matter (as for the local mesh).
  const input = await readAndValidate(o.files, o.namespace);
  const resources = input.resources.filter((r) => r.config);
  const unreadable = input.reports.filter((r) => !r.kind || !r.name);
  for (const r of unreadable) for (const p of r.errors) io.err(`${formatProblem(p, undefined)}\n`);
  if (resources.length === 0) {
    io.err(`weftctl: no resources in ${o.files.join(', ')}\n`);
    return 1;
  }
  const c = await cluster(o, io, 'delete');
  if (!c) return 1;
  try {
    const weftds = o.waitMs > 0 ? await replicas(c.kube, c.kc, o.systemNamespace) : [];
    const results = await c.kube.deleteClusterObjects(
      c.kc,
      resources.map((r) => clusterObject(r.config!, r.kind?.bodyAtTopLevel === true)),
    );
    let missing = 0;
    for (const [n, r] of results.entries()) {
      const config = resources[n]!.config!;
      if (r.deleted) io.out(`${objectName(config)} deleted\n`);
      else {
        missing++;
        io.err(`weftctl: ${objectName(config)} not found in namespace ${config.metadata.namespace}\n`);
      }
    }
    const gone = resources.filter((r, n) => results[n]!.deleted && r.kind?.crd === true).map((r) => r.config!);
    if (o.waitMs > 0 && gone.length > 0) {
      const why = await waitAll(weftds, [], gone, o.waitMs);
      if (why !== undefined) {
        io.err(`weftctl: deleted, but not in force everywhere after ${o.waitMs / 1000} s: ${why}\n`);
        return 1;
      }
    }
    return missing > 0 || unreadable.length > 0 ? 1 : 0;
  } catch (e) {
    io.err(`weftctl: delete: ${(e as Error).message}\n`);
    return 1;
  }
}
