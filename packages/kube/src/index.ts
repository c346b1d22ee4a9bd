// @weft/kube: everything that talks to the Kubernetes API (DESIGN.md §2). Nothing outside this
// package imports @kubernetes/client-node.
export { apiServerOf, loadKubeConfig } from './client.ts';
