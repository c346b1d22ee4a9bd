// weftctl: the command line. `main` is exported for tests and for embedding.
export { main, usage } from './main.ts';
// The config commands and the topology, for the end-to-end suite's drivers.
export { type ApplyOptions, apply, remove } from './mesh/apply.ts';
export { applyKube, type KubeApplyOptions, removeKube } from './mesh/apply-kube.ts';
export { proxyConfig } from './mesh/proxy-config.ts';
export { defaultInitialConfig, defaultTopology, type LocalMesh, type LocalMeshOptions, repoRoot, startLocalMesh } from './up/mesh.ts';
export { type AppState, defaultStateDir, type MeshState, type ProxyState, readState, writeState } from './up/state.ts';
// The local Prometheus addon (state.prometheus): its API with the basic auth filled in.
export { type PrometheusSample, type PrometheusTarget, prometheusApi, prometheusAuthorization, prometheusQuery, prometheusTargets } from './up/prometheus.ts';
export type { PrometheusState } from './up/state.ts';
export { ingressConfigs, type Workload, workloadsOf } from './up/topology.ts';
