import { type Config, keyOf, type Problem, ProblemList } from '@weft/model';
import { AnalysisContext, type AnalysisMessage, type Analyzer } from './context.ts';
import { destinationRuleAnalyzers } from './destinationrule.ts';
import { gatewayAnalyzers } from './gateway.ts';
import { gatewayApiAnalyzers } from './gateway-api.ts';
import { serviceAnalyzers } from './portname.ts';
import { securityAnalyzers } from './security.ts';
import { sidecarAnalyzers } from './sidecar.ts';
import { virtualServiceAnalyzers } from './virtualservice.ts';

/** Every analyzer, in the order they run. */
export const defaultAnalyzers: readonly Analyzer[] = [
  ...virtualServiceAnalyzers,
  ...destinationRuleAnalyzers,
  ...gatewayAnalyzers,
  ...serviceAnalyzers,
  ...gatewayApiAnalyzers,
  ...sidecarAnalyzers,
  ...securityAnalyzers,
];

/**
 * The objects a set of configs describes: configs with the same group/kind, namespace and name
 * are one object, and the last one wins, as when `kubectl apply` applies the files one after
 * another (files of alternatives, such as the variants of one VirtualService, replace each other).
 * The survivors keep their input order.
 */
export function effectiveConfigs(configs: readonly Config[]): Config[] {
  const last = new Map<string, Config>();
  for (const c of configs) last.set(keyOf(c), c);
  return configs.filter((c) => last.get(keyOf(c)) === c);
}

/**
 * Runs the analyzers over the configs as one set (see `effectiveConfigs`) and returns their
 * findings, each once (the same finding reached by two routes, e.g. a host shared by two scopes,
 * is one), with the field path it is about. For callers that locate only some findings.
 */
export function analysisMessages(configs: readonly Config[], analyzers: readonly Analyzer[] = defaultAnalyzers): AnalysisMessage[] {
  const ctx = new AnalysisContext(effectiveConfigs(configs));
  for (const a of analyzers) {
    try {
      a.analyze(ctx);
    } catch (e) {
      throw new Error(`analyzer ${a.name} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  const seen = new Set<string>();
  return ctx.messages.filter((m) => {
    const key = messageKey(m);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** What identifies a finding: the object (kind, namespace, name), code, field and message. */
export function messageKey(m: AnalysisMessage): string {
  return `${keyOf(m.config)}|${m.code}|${m.path.join('.')}|${m.message}`;
}

/**
 * Runs the analyzers over the configs as one set and returns the problems of each config, located
 * at the field in its source file. Configs replaced by a later one with the same kind, namespace
 * and name (see `effectiveConfigs`) are not analyzed and have no entry; every other config has one,
 * possibly empty. Problems are in source order.
 *
 * Give only configs that are valid on their own: analyzers read fields of the wrong type as absent,
 * so the problems of an invalid config may be incomplete.
 */
export function analyze(configs: readonly Config[], analyzers: readonly Analyzer[] = defaultAnalyzers): Map<Config, Problem[]> {
  const lists = new Map<Config, ProblemList>();
  for (const c of effectiveConfigs(configs)) lists.set(c, new ProblemList(c.source));
  for (const m of analysisMessages(configs, analyzers)) lists.get(m.config)?.add(m.severity, m.path, m.message, m.code);
  const out = new Map<Config, Problem[]>();
  for (const [c, list] of lists) {
    const items = list.items;
    items.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || (a.code ?? '').localeCompare(b.code ?? ''));
    out.set(c, items);
  }
  return out;
}

/** All problems of an analysis, in config order. */
export function allProblems(result: ReadonlyMap<Config, readonly Problem[]>): Problem[] {
  return [...result.values()].flat();
}
