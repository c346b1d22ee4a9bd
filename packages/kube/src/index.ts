// @weft/kube: everything that talks to the Kubernetes API (DESIGN.md §2). Nothing outside this
// package imports @kubernetes/client-node.
export { apiServerOf, apiStatusOf, loadKubeConfig } from './client.ts';
export { apiServerClient, type ClusterClient, type ClusterConfigSourceOptions, type ClusterConfigStatus, ClusterConfigSource, type RejectedObject } from './config-source.ts';
export { decodeClusterObject, objectPath } from './convert.ts';
export { type BackoffOptions, describeError, type ResourceHandlers, ResourceInformer, type ResourceInformerOptions, type WatchLike } from './informer.ts';
export { type Kube, type KubeOptions, type KubeWebhookOptions, startKube, weftdLeaderLease } from './start.ts';
export { type ClusterCa, type ClusterCaOptions, caMaterialOfSecret, openClusterCa, pluginCaSecretName, selfSignedCaSecretName, selfSignedCaSecretType } from './ca-secret.ts';
export { defaultLeaderIdentity, LeaderElection, type LeaderElectionOptions, type LeaderWork } from './leader-election.ts';
export { RootCertPublisher, type RootCertPublisherOptions, type RootCertPublisherStatus, rootCertConfigMapKey, rootCertConfigMapName, rootCertIgnoredNamespaces } from './root-cert.ts';
export { istioCaAudience, serviceAccountOfReview, TokenReviewAuthenticator, type TokenReviewOptions } from './token-review.ts';
export { injectPod, type InjectionResult, type PodParts } from './inject/inject.ts';
export { type KubeInjectEntry, type KubeInjectOptions, type KubeInjectResult, kubeInject } from './inject/kube-inject.ts';
export { applyPodPatch, type JsonPatchOperation, podPatch } from './inject/patch.ts';
export { type AppProber, appHealthPath, appProbersEnv } from './inject/probes.ts';
export { type InjectionDecision, ignoredNamespaces, injectionDecision } from './inject/selection.ts';
export { InjectionError, type PodSettings, podSettings } from './inject/template.ts';
export { annotations as injectionAnnotations, defaultInjectionValues, defaultProxyImage, type InjectionValues, type ResourceList, sidecar } from './inject/values.ts';
export { ownerUri, type WorkloadRef, workloadOfPod } from './inject/workload.ts';
export { defaultMaxAdmissionBytes, WebhookServer, type WebhookServerOptions } from './webhook.ts';
export { type AdmissionHandler, type AdmissionRequest, type AdmissionResponse, type AdmissionReview, admissionReview, deny, parseAdmissionReview } from './webhook-admission.ts';
export { CaBundlePatcher, type CaBundlePatcherOptions, istioWebhookConfigurationNames, type WebhookConfigurationNames } from './webhook-cabundle.ts';
export { injectionAdmission } from './webhook-inject.ts';
export { Webhooks, type WebhooksOptions, webhookServingNames } from './webhook-service.ts';
export { objectProblems, validationAdmission } from './webhook-validate.ts';
export { type AccessRule, policyRule, weftdClusterAccess, weftdNamespaceAccess } from './install/access.ts';
export {
  type ChartName,
  chartDefaults,
  chartNames,
  chartsDir,
  crdManifests,
  type InstallValues,
  installValues,
  type Manifest,
  mergeValues,
  renderChart,
  renderInstall,
  revisionOf,
  type Values,
} from './install/manifests.ts';
export {
  apiError,
  type CheckOptions,
  type CheckResult,
  type ClusterVersion,
  check,
  clusterVersion,
  fieldManager,
  type InstallOptions,
  install,
  installedKinds,
  installedObjects,
  managedBy,
  managedByLabel,
  minimumMinor,
  type Progress,
  probeWebhooks,
  runtimeObjects,
  type UninstallOptions,
  uninstall,
  type WebhookProbe,
} from './install/cluster.ts';
export { findService, forwardService, type ServiceForward, type ServiceForwardOptions, servicePodPort } from './mesh/port-forward.ts';
export { type ApplyAction, applyClusterObjects, applyFieldManager, type ClusterObject, deleteClusterObjects, podByName, podPortGet, weftdDebug, weftdReplicas } from './mesh/cluster-mesh.ts';
