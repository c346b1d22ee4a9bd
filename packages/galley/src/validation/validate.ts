import { allKinds, type Config, groupKind, groupKindOf, type LoadedResource, type LoadResult, type Problem } from '@weft/model';
import { type KindValidator, ValidationContext } from './context.ts';
import { gatewayApiValidators } from './gateway-api.ts';
import { kubernetesValidators } from './kubernetes.ts';
import { validateMetadata } from './metadata.ts';
import { networkingValidators } from './networking.ts';
import { securityValidators } from './security.ts';

/** Semantic validators for every kind, keyed by group/kind. Explicit: nothing registers on import. */
export function defaultValidators(): ReadonlyMap<string, KindValidator> {
  const table = new Map<string, KindValidator>();
  for (const v of [...networkingValidators, ...securityValidators, ...gatewayApiValidators, ...kubernetesValidators]) {
    if (table.has(v.groupKind)) throw new Error(`two validators for ${v.groupKind}`);
    table.set(v.groupKind, v);
  }
  return table;
}

let cached: ReadonlyMap<string, KindValidator> | undefined;
const validators = (): ReadonlyMap<string, KindValidator> => {
  cached ??= defaultValidators();
  return cached;
};

/** Kinds whose body is at the top level of the document rather than under `spec`, as their schemas say. */
const topLevelBodies = new Set(allKinds.filter((k) => k.bodyAtTopLevel).map((k) => groupKind(k.group, k.kind)));

/**
 * Istio's semantic rules for one resource. Every problem is collected in one pass.
 * Structural problems are the loader's; a validator that trips over a structurally broken
 * field stops quietly when the loader already reported something, and reports itself otherwise.
 */
export function validateConfig(config: Config, opts: { structurallyBroken?: boolean } = {}): Problem[] {
  const gk = groupKindOf(config);
  const v = validators().get(gk);
  const ctx = new ValidationContext(config, topLevelBodies.has(gk) ? [] : ['spec']);
  validateMetadata(ctx);
  if (v) {
    try {
      v.validate(config.spec ?? {}, ctx);
    } catch (e) {
      if (!opts.structurallyBroken) ctx.error([], `internal error while validating (please report): ${e instanceof Error ? e.message : String(e)}`, 'WEFT0999');
    }
  }
  return ctx.out.items;
}

/** The outcome for one resource, as `weftctl validate -o json` prints it. */
export interface ResourceReport {
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  file: string;
  line: number;
  column: number;
  valid: boolean;
  errors: Problem[];
  warnings: Problem[];
}

function report(r: Pick<LoadedResource, 'source' | 'config' | 'kind'>, problems: Problem[], raw?: { apiVersion?: string; kind?: string }): ResourceReport {
  const errors = problems.filter((p) => p.severity === 'error');
  return {
    kind: r.config?.kind ?? r.kind?.kind ?? raw?.kind ?? '',
    apiVersion: r.config?.apiVersion ?? raw?.apiVersion ?? '',
    namespace: r.config?.metadata.namespace ?? '',
    name: r.config?.metadata.name ?? '',
    file: r.source.file,
    line: r.source.line,
    column: r.source.column,
    valid: errors.length === 0,
    errors,
    warnings: problems.filter((p) => p.severity === 'warning'),
  };
}

/** Structural and semantic problems of one loaded resource. */
export function validateLoaded(r: LoadedResource): ResourceReport {
  const problems = [...r.problems];
  const broken = problems.some((p) => p.severity === 'error');
  if (r.config) problems.push(...validateConfig(r.config, { structurallyBroken: broken }));
  sortProblems(problems);
  return report(r, problems);
}

/** A report for a problem that belongs to no single resource (syntax error, empty or unreadable file). */
export function fileProblemReport(p: Problem): ResourceReport {
  const isError = p.severity === 'error';
  return { kind: '', apiVersion: '', namespace: '', name: '', file: p.file ?? '', line: p.line ?? 1, column: p.column ?? 1, valid: !isError, errors: isError ? [p] : [], warnings: isError ? [] : [p] };
}

export function compareReports(a: ResourceReport, b: ResourceReport): number {
  return a.file.localeCompare(b.file) || a.line - b.line;
}

/** Reports for everything a load produced; file-level problems (syntax errors, empty files) become entries of their own. */
export function validateLoadResult(result: LoadResult): ResourceReport[] {
  return [...result.resources.map(validateLoaded), ...result.problems.map(fileProblemReport)].sort(compareReports);
}

export function sortProblems(ps: Problem[]): void {
  ps.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
