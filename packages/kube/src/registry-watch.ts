// The Kubernetes service registry fed by the cluster: Services, EndpointSlices, Pods, Nodes and Namespaces
// of every namespace, listed and watched (informer.ts), each event handed to the registry.
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject, Watch } from '@kubernetes/client-node';
import type { Logger } from '@weft/model';
import { type BackoffOptions, ResourceInformer } from './informer.ts';
import type { KubeServiceRegistry } from './registry.ts';
import type { KubeEndpointSlice, KubeNamespace, KubeNode, KubePod, KubeService } from './registry-convert.ts';

export interface KubeServiceWatchOptions {
  logger: Logger;
  backoff?: BackoffOptions;
}

export interface KubeServiceWatch {
  readonly registry: KubeServiceRegistry;
  /** Resolves once every collection's first list has reached the registry (Istio's HasSynced); rejects when `signal` aborts first. */
  synced(signal?: AbortSignal): Promise<void>;
  /** Whether it has. */
  readonly hasSynced: boolean;
  stop(): Promise<void>;
}

/** One collection and where its objects go. */
interface Feed {
  name: string;
  path: string;
  list: () => Promise<KubernetesListObject<KubernetesObject>>;
  put: (obj: KubernetesObject) => void;
  remove: (obj: KubernetesObject) => void;
}

/**
 * Starts listing and watching what `registry` is made of. Pods and Namespaces come first, so that
 * the first list of EndpointSlices finds the pods its endpoints name. While the API server is
 * unreachable the registry keeps what it has and the informers retry with backoff.
 */
export function watchKubeServices(kc: KubeConfig, registry: KubeServiceRegistry, opts: KubeServiceWatchOptions): KubeServiceWatch {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const log = opts.logger;
  const watch = new Watch(kc);
  // Objects arrive as the typed client lists them or as the watch stream sends them; the registry's input types fit both.
  const feeds: Feed[] = [
    { name: 'namespaces', path: '/api/v1/namespaces', list: () => core.listNamespace(), put: (o) => registry.putNamespace(o as KubeNamespace), remove: (o) => registry.deleteNamespace(o as KubeNamespace) },
    // Nodes before pods: a pod without an istio-locality label is where its node is.
    { name: 'nodes', path: '/api/v1/nodes', list: () => core.listNode(), put: (o) => registry.putNode(o as KubeNode), remove: (o) => registry.deleteNode(o as KubeNode) },
    { name: 'pods', path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), put: (o) => registry.putPod(o as KubePod), remove: (o) => registry.deletePod(o as KubePod) },
    { name: 'services', path: '/api/v1/services', list: () => core.listServiceForAllNamespaces(), put: (o) => registry.putService(o as KubeService), remove: (o) => registry.deleteService(o as KubeService) },
    {
      name: 'endpointslices.discovery.k8s.io/v1',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      list: () => discovery.listEndpointSliceForAllNamespaces(),
      put: (o) => registry.putEndpointSlice(o as KubeEndpointSlice),
      remove: (o) => registry.deleteEndpointSlice(o as KubeEndpointSlice),
    },
  ];
  const informers = feeds.map((f) => {
    const handle = (what: string, fn: (obj: KubernetesObject) => void) => (obj: KubernetesObject) => {
      try {
        fn(obj);
      } catch (err) {
        // One malformed object must not stop the feed: the rest of the cluster still counts.
        log.error('service registry could not take an object', { resource: f.name, event: what, object: `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`, error: String(err) });
      }
    };
    return new ResourceInformer<KubernetesObject>(
      { name: f.name, path: f.path, list: f.list, watch, logger: log, ...(opts.backoff ? { backoff: opts.backoff } : {}) },
      { add: handle('add', f.put), update: handle('update', f.put), delete: handle('delete', f.remove) },
    );
  });
  let hasSynced = false;
  // In order: each collection's first list before the next starts (pods before the slices that name them).
  const allSynced = (async () => {
    for (const i of informers) {
      i.start();
      await i.synced;
    }
    hasSynced = true;
    log.info('kubernetes services synced', { services: registry.services().length, workloads: registry.workloads().length });
  })();
  return {
    registry,
    synced: (signal) => {
      if (!signal) return allSynced;
      const aborted = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      return Promise.race([allSynced, aborted]);
    },
    get hasSynced() {
      return hasSynced;
    },
    stop: async () => {
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
