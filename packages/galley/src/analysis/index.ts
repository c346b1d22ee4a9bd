// Cross-resource analysis, like `istioctl analyze`: checks configs against each other
// (references, conflicts, selectors) and reports with Istio's message codes.
export { allProblems, analysisMessages, analyze, defaultAnalyzers, effectiveConfigs, messageKey } from './analyze.ts';
export { AnalysisContext, type AnalysisMessage, type Analyzer } from './context.ts';
export { destinationRuleHostAnalyzer, subsetSelectsPodsAnalyzer } from './destinationrule.ts';
export { ingressGatewayPortAnalyzer } from './gateway.ts';
export { httpRouteBackendAnalyzer } from './gateway-api.ts';
export { knownProtocols, portNameAnalyzer, protocolOfName } from './portname.ts';
export { policySelectorAnalyzer } from './security.ts';
export { type HostLookup, type MeshService, type MeshServicePort, ServiceIndex, type Workload } from './services.ts';
export { sidecarEgressHostAnalyzer } from './sidecar.ts';
export { conflictingMeshGatewayHostsAnalyzer, destinationHostAnalyzer, destinationRuleSubsetAnalyzer, gatewayReferenceAnalyzer, unreachableRulesAnalyzer } from './virtualservice.ts';
