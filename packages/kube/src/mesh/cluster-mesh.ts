// weftctl's mesh commands against a cluster (`--kubeconfig`), run as the user: Istio config written
// with server-side apply and deleted through the API server; weftd's debug endpoints (15014) read
// through the API server's pod proxy, from every ready replica; a proxy's admin port (15000, on its
// pod's loopback only, as Envoy's) read over a port-forward, as istioctl proxy-config does.
import { request } from 'node:http';
import { Duplex, PassThrough, Writable } from 'node:stream';
import { CoreV1Api, type KubeConfig, type KubernetesObject, KubernetesObjectApi, PatchStrategy, PortForward } from '@kubernetes/client-node';
import { apiError } from '../install/cluster.ts';

/** The field manager of `weftctl apply --kubeconfig` (server-side apply). */
export const applyFieldManager = 'weftctl-apply';

/** An object as weftctl sends it: what a YAML file says, no status or bookkeeping. */
export interface ClusterObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
  [field: string]: unknown;
}

export type ApplyAction = 'created' | 'configured' | 'unchanged';

const statusOf = (err: unknown): number | undefined => (err as { code?: unknown })?.code as number | undefined;
const nameOf = (o: ClusterObject) => `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;

async function readOrUndefined(api: KubernetesObjectApi, o: ClusterObject): Promise<KubernetesObject | undefined> {
  try {
    return await api.read({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) } });
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/**
 * Server-side apply of each object (field manager weftctl-apply, conflicts forced: the user's file
 * wins, as `kubectl apply --server-side --force-conflicts`), in order. What the API server's
 * admission (weftd's validating webhook) refuses throws with its message, naming the object.
 */
export async function applyClusterObjects(kc: KubeConfig, objects: readonly ClusterObject[]): Promise<{ name: string; action: ApplyAction }[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const out: { name: string; action: ApplyAction }[] = [];
  for (const o of objects) {
    try {
      const before = await readOrUndefined(api, o);
      const after = await api.patch(o as KubernetesObject, undefined, undefined, applyFieldManager, true, PatchStrategy.ServerSideApply);
      const action: ApplyAction = !before ? 'created' : before.metadata?.resourceVersion === after.metadata?.resourceVersion ? 'unchanged' : 'configured';
      out.push({ name: nameOf(o), action });
    } catch (err) {
      throw new Error(`applying ${nameOf(o)}: ${apiError(err)}`);
    }
  }
  return out;
}

/** Deletes each object; `deleted: false` when it was not there. */
export async function deleteClusterObjects(kc: KubeConfig, objects: readonly ClusterObject[]): Promise<{ name: string; deleted: boolean }[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const out: { name: string; deleted: boolean }[] = [];
  for (const o of objects) {
    try {
      await api.delete({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) } });
      out.push({ name: nameOf(o), deleted: true });
    } catch (err) {
      if (statusOf(err) === 404) out.push({ name: nameOf(o), deleted: false });
      else throw new Error(`deleting ${nameOf(o)}: ${apiError(err)}`);
    }
  }
  return out;
}

/** The names of weftd's running and ready pods in `namespace` (label app=weftd), oldest first. */
export async function weftdReplicas(kc: KubeConfig, namespace: string): Promise<string[]> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: 'app=weftd' });
  return pods.items
    .filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .sort((a, b) => String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')))
    .map((p) => p.metadata!.name!);
}

/** A JSON debug endpoint of one weftd pod (`/debug/syncz`), through the API server's pod proxy to its port 15014. */
export async function weftdDebug<T>(kc: KubeConfig, namespace: string, pod: string, path: string): Promise<T> {
  const core = kc.makeApiClient(CoreV1Api);
  let body: unknown;
  try {
    body = await core.connectGetNamespacedPodProxyWithPath({ name: `${pod}:15014`, namespace, path: path.replace(/^\//, '') });
  } catch (err) {
    throw new Error(`weftd ${namespace}/${pod} ${path} through the API server: ${apiError(err)}`);
  }
  // the client parses a JSON answer itself (its declared type says string)
  return (typeof body === 'string' ? JSON.parse(body) : body) as T;
}

/**
 * An HTTP GET to a port of a pod over a port-forward (the API server's portforward subresource,
 * over WebSocket), so it reaches ports bound to the pod's loopback: a proxy's admin port 15000.
 * One forwarded connection per request.
 */
export async function podPortGet(kc: KubeConfig, namespace: string, pod: string, port: number, path: string, timeoutMs = 20_000): Promise<{ status: number; body: string }> {
  const toPod = new PassThrough();
  const fromPod = new PassThrough();
  let errors = '';
  const errSink = new Writable({
    write(chunk: Buffer, _enc, done) {
      errors += chunk.toString();
      done();
    },
  });
  let ws: { close(): void; on(event: 'close', fn: () => void): void };
  try {
    ws = (await new PortForward(kc, false).portForward(namespace, pod, [port], fromPod, errSink, toPod)) as unknown as typeof ws;
  } catch (err) {
    throw new Error(`port-forward to ${namespace}/${pod}:${port}: ${apiError(err)}`);
  }
  ws.on('close', () => fromPod.end());
  const socket = Duplex.from({ readable: fromPod, writable: toPod });
  try {
    return await new Promise((resolve, reject) => {
      const req = request({ host: 'localhost', path, method: 'GET', createConnection: () => socket as never, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e) => reject(new Error(`GET ${path} on ${namespace}/${pod}:${port} over a port-forward: ${e.message}${errors ? ` (${errors.trim()})` : ''}`)));
      req.end();
    });
  } finally {
    ws.close();
  }
}

/**
 * The pod a user means by `ref` in `namespace`: a pod of that name, else the running pod of the
 * Deployment of that name (`reviews-v2` -> `reviews-v2-<hash>-<id>`), as `kubectl exec deploy/NAME` picks one.
 */
export async function podByName(kc: KubeConfig, namespace: string, ref: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = (await core.listNamespacedPod({ namespace })).items.filter((p) => !p.metadata?.deletionTimestamp);
  if (pods.some((p) => p.metadata?.name === ref)) return ref;
  const owned = pods.filter((p) => {
    const name = p.metadata?.name ?? '';
    const rs = p.metadata?.ownerReferences?.find((o) => o.kind === 'ReplicaSet')?.name ?? '';
    return rs.startsWith(`${ref}-`) && rs.slice(ref.length + 1).match(/^[a-z0-9]+$/) && name.startsWith(`${rs}-`);
  });
  const running = owned.find((p) => p.status?.phase === 'Running') ?? owned[0];
  if (running?.metadata?.name) return running.metadata.name;
  throw new Error(`no pod or Deployment ${JSON.stringify(ref)} in namespace ${namespace}; pods there: ${pods.map((p) => p.metadata?.name).join(', ') || 'none'}`);
}
