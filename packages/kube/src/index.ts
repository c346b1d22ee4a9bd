// @weft/kube: everything that talks to the Kubernetes API (DESIGN.md §2). Nothing outside this
// package imports @kubernetes/client-node.
export { apiServerOf, loadKubeConfig } from './client.ts';
export { apiServerClient, type ClusterClient, type ClusterConfigSourceOptions, type ClusterConfigStatus, ClusterConfigSource, type RejectedObject } from './config-source.ts';
export { decodeClusterObject, objectPath } from './convert.ts';
export { type BackoffOptions, describeError, type ListWatchLike, type ResourceHandlers, ResourceInformer, type ResourceInformerOptions } from './informer.ts';
export { type Kube, type KubeOptions, startKube } from './start.ts';
