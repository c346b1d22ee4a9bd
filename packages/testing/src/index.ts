// @weft/testing: what every project's tests and `npm test` share.
export { findOnPath, type HostPackage, hostPackages, installCommand, isRoot, type Need, needs, noteSkip, packageOf, skipMarker, unmet } from './host.ts';
export { aptInstallCommand, missingPackages, type PreflightPlan, preflight, preflightPlan } from './preflight.ts';
export { type ProjectTally, type SkippedFile, type Summary, summarize, TestOutputReader } from './summary.ts';
export { clusterAnswers, holdClusterLock, clusterLockFile, kubeCluster, kubeLocalDir, kubeLocalDown, kubeLocalKubeconfig, kubeLocalTool, kubeUnmet, needsKube, withClusterLock } from './kube.ts';
export { installWeftCrds, type KubectlResult, kubectl, kubectlOk, kubectlPath, weftCrdsFile } from './kubectl.ts';
export { type PrivateApiServer, privateApiServerUnmet, startPrivateApiServer } from './apiserver.ts';
export { deployPrometheusAddon, type PrometheusAddon, type PrometheusAddonOptions, type PrometheusSample, type PrometheusTarget, prometheusAddonDir, prometheusApi } from './prometheus.ts';
export { type HostWeftdManifests, hostWeftdManifests, ratingsManifests } from './host-weftd.ts';
export { smuggledPath, smugglingAttacks, wellFramedPipeline } from './smuggling.ts';
