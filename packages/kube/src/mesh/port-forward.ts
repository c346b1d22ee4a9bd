// `weftctl dashboard --kubeconfig`: a Service of the cluster (Prometheus, Jaeger's UI, Grafana,
// weftd's monitoring port) on a local loopback port, as `istioctl dashboard` and `kubectl
// port-forward svc/NAME` give it: nothing is exposed on the cluster, the user's kubeconfig is the
// credential. The Service's port is mapped to its pod's port (a number or a named container port);
// each local connection is one port-forward stream (the API server's portforward subresource over
// WebSocket) to a ready pod behind the Service, picked again for every connection so that a
// restarted pod is followed.
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { CoreV1Api, type KubeConfig, type V1Pod, type V1Service, PortForward } from '@kubernetes/client-node';
import { apiError } from '../install/cluster.ts';

export interface ServiceForwardOptions {
  namespace: string;
  service: string;
  /** The Service's port (its `port`, not the pod's). */
  port: number;
  /** Where to listen (default 127.0.0.1) and on which port (default 0: a free one). */
  localAddress?: string;
  localPort?: number;
  /** Called with the listening server before it accepts: the caller's access check (@weft/guard's OwnerGuard.protect). */
  protect?: (server: Server) => void;
  /** Told about each connection that could not be forwarded. */
  onError?: (message: string) => void;
}

export interface ServiceForward {
  /** http://<localAddress>:<localPort> */
  readonly url: string;
  readonly localPort: number;
  /** The pod and port the first check found behind the Service. */
  readonly target: { pod: string; port: number };
  close(): Promise<void>;
}

function ready(p: V1Pod): boolean {
  return !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** A ready pod behind `svc` and the pod port its `port` maps to; throws naming why there is none. */
export async function servicePodPort(core: CoreV1Api, svc: V1Service, port: number): Promise<{ pod: string; port: number }> {
  const name = `${svc.metadata?.namespace}/${svc.metadata?.name}`;
  const sp = svc.spec?.ports?.find((p) => p.port === port);
  if (!sp) throw new Error(`Service ${name} has no port ${port} (it has ${(svc.spec?.ports ?? []).map((p) => p.port).join(', ') || 'none'})`);
  const selector = svc.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) throw new Error(`Service ${name} has no selector: no pod to forward to`);
  const labelSelector = Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const pods = (await core.listNamespacedPod({ namespace: svc.metadata?.namespace ?? 'default', labelSelector })).items;
  const pod = pods.find(ready);
  if (!pod?.metadata?.name) throw new Error(`no ready pod behind Service ${name} (${pods.length} pod${pods.length === 1 ? '' : 's'} match ${labelSelector})`);
  const target = sp.targetPort ?? sp.port;
  if (typeof target === 'number') return { pod: pod.metadata.name, port: target };
  const named = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []).find((p) => p.name === target);
  if (/^\d+$/.test(String(target))) return { pod: pod.metadata.name, port: Number(target) };
  if (!named) throw new Error(`Service ${name} port ${port} targets the container port named ${JSON.stringify(target)}, which pod ${pod.metadata.name} does not declare`);
  return { pod: pod.metadata.name, port: named.containerPort };
}

/**
 * The Service `name` in `namespace`, else one labelled `labelSelector` in any namespace (the one in
 * `namespace` first): an addon deployed under another name or elsewhere. Undefined when none is.
 */
export async function findService(kc: KubeConfig, o: { namespace: string; name: string; labelSelector: string }): Promise<{ namespace: string; service: string } | undefined> {
  const core = kc.makeApiClient(CoreV1Api);
  const own = await core.readNamespacedService({ name: o.name, namespace: o.namespace }).catch(() => undefined);
  if (own) return { namespace: o.namespace, service: o.name };
  let labelled: V1Service[];
  try {
    labelled = (await core.listServiceForAllNamespaces({ labelSelector: o.labelSelector })).items;
  } catch (err) {
    throw new Error(`no Service ${o.namespace}/${o.name}, and listing Services labelled ${o.labelSelector} failed: ${apiError(err)}`);
  }
  const found = labelled.find((s) => s.metadata?.namespace === o.namespace) ?? labelled[0];
  return found?.metadata?.name && found.metadata.namespace ? { namespace: found.metadata.namespace, service: found.metadata.name } : undefined;
}

/** Serves `namespace/service:port` on a local loopback port until closed. */
export async function forwardService(kc: KubeConfig, o: ServiceForwardOptions): Promise<ServiceForward> {
  const core = kc.makeApiClient(CoreV1Api);
  const lookup = async () => {
    let svc: V1Service;
    try {
      svc = await core.readNamespacedService({ name: o.service, namespace: o.namespace });
    } catch (err) {
      throw new Error(`Service ${o.namespace}/${o.service}: ${apiError(err)}`);
    }
    return servicePodPort(core, svc, o.port);
  };
  const first = await lookup();
  const forwarder = new PortForward(kc, false);
  const sockets = new Set<Socket>();

  const forward = async (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pause();
    try {
      const t = await lookup();
      const toPod = new PassThrough();
      const fromPod = new PassThrough();
      const errors = new PassThrough();
      let said = '';
      errors.on('data', (b: Buffer) => {
        said += b.toString();
      });
      const ws = (await forwarder.portForward(o.namespace, t.pod, [t.port], fromPod, errors, toPod)) as unknown as { close(): void; on(e: 'close', fn: () => void): void };
      ws.on('close', () => {
        fromPod.end();
        if (said) o.onError?.(`${o.namespace}/${t.pod}:${t.port}: ${said.trim()}`);
      });
      const tunnel = Duplex.from({ readable: fromPod, writable: toPod });
      socket.pipe(tunnel).on('error', () => socket.destroy());
      tunnel.pipe(socket);
      socket.on('close', () => ws.close());
      socket.resume();
    } catch (err) {
      o.onError?.(`port-forward to Service ${o.namespace}/${o.service}:${o.port}: ${err instanceof Error ? err.message : String(err)}`);
      socket.destroy();
    }
  };

  const server = createServer((s) => void forward(s));
  o.protect?.(server);
  const host = o.localAddress ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: o.localPort ?? 0 }, () => resolve());
  });
  const localPort = (server.address() as { port: number }).port;
  return {
    url: `http://${host}:${localPort}`,
    localPort,
    target: first,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
