// @weft/galley: semantic validation and cross-resource analysis of Istio configuration.
export * from './validation/common.ts';
export { type KindValidator, kindValidator, type SpecValidator, ValidationContext } from './validation/context.ts';
export {
  compareReports,
  defaultValidators,
  fileProblemReport,
  type ResourceReport,
  sortProblems,
  validateConfig,
  validateLoaded,
  validateLoadResult,
} from './validation/validate.ts';
export {
  AnalysisContext,
  type AnalysisMessage,
  type Analyzer,
  allProblems,
  analysisMessages,
  analyze,
  defaultAnalyzers,
  effectiveConfigs,
  type HostLookup,
  type MeshService,
  type MeshServicePort,
  messageKey,
  ServiceIndex,
  type Workload,
} from './analysis/index.ts';
