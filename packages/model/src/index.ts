// @weft/model: API schemas and types, the config envelope, loading, stores and sources.
export type { Config, ConfigSource, GroupKind, ObjectMeta } from './config/config.ts';
export { describeConfig, groupKind, groupKindOf, groupOf, namespacedName, versionOf } from './config/config.ts';
export { defaultKindRegistry } from './config/default-registry.ts';
export { compareStrings, configOrder, creationTime, formatTimestamp, parseTimestamp } from './config/order.ts';
export { KindRegistry } from './config/kinds.ts';
export { labelSelectorMatches } from './config/label-selector.ts';
export { routingClaim } from './routing-claim.ts';
export { compileRe2, type Re2, Re2Error, type Re2Options, re2MaxProgramSize, re2MaxRepeat, re2Problem } from './re2.ts';
export { errorCodes, WeftError, type WeftErrorCode } from './errors.ts';
export * from './generated/types.ts';
export { createLogger, type LogFields, type Logger, type LoggerOptions, type LogLevel, silentLogger } from './log.ts';
export { type FieldPath, formatPath, formatProblem, type Locator, type PathSegment, type Problem, ProblemList, type Severity } from './problem.ts';
export { renderTypes } from './schema/codegen.ts';
export { crdFor, renderCrds, toOpenApi } from './schema/crd.ts';
export type { KindSchema, Schema, SchemaType } from './schema/dsl.ts';
export { generatedFiles } from './schema/outputs.ts';
export { suggest, validateStructure } from './schema/structural.ts';
export { allKinds } from './schemas/index.ts';
export { DirectorySource, type DirectorySourceOptions } from './sources/directory.ts';
export { originHeader, originLocation, parseOriginHeader } from './sources/origin.ts';
export { canonicalJson, type ConfigEvent, type ConfigEventType, type ConfigHandler, type ConfigStore, configKey, keyOf, MemoryConfigStore, specDigest } from './store/store.ts';
export {
  decodeResource,
  describeResource,
  expandPaths,
  type LoadedResource,
  type LoadOptions,
  type LoadResult,
  loadFile,
  loadPaths,
  loadText,
  maxFileBytes,
  type ParsedDocument,
  parseYamlDocuments,
} from './yaml/loader.ts';
export { NoSource, SourceLocation } from './yaml/source.ts';
export { toYaml } from './yaml/dump.ts';
export { controlPlaneServerName, controlPlaneTlsName } from './service/control-plane.ts';
export {
  type Endpoint,
  isHttpProtocol,
  kubernetesPortProtocol,
  type Locality,
  type Location,
  parseLocality,
  type Protocol,
  protocolOf,
  type Resolution,
  type Service,
  type ServicePort,
  type WorkloadInstance,
} from './service/model.ts';
