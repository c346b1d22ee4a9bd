// Cross-resource analysis after `weftctl apply`, as Istio's analyzers run in istioctl and in
// the validating webhook's warnings: galley's analyzers over the config in force once the apply
// lands (what weftd holds, from /debug/configz, with the applied objects replacing theirs). What
// is shown is what involves the applied objects, because a mesh with thousands of objects may
// carry old findings nobody asked about:
// - every finding on an applied object, at its line in the user's file;
// - a finding on another object that the apply brought (absent without it, e.g. a VirtualService
//   routing to a subset the applied DestinationRule no longer defines), at the object's file in
//   the config directory.
// Findings never block: the apply is written before they are computed, and the exit status is
// the apply's (only validation errors stop an apply, as only the API server's validation does).
import { readFileSync } from 'node:fs';
import { type AnalysisMessage, analysisMessages, messageKey } from '@weft/galley';
import { type Config, describeConfig, formatProblem, keyOf, type ObjectMeta, parseYamlDocuments, type Problem, ProblemList } from '@weft/model';

/** An object as /debug/configz shows it. */
export interface HeldObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: unknown;
  source?: { file: string };
}

export interface LocatedFinding {
  /** `VirtualService default/ghost`. */
  subject: string;
  problem: Problem;
}

/**
 * Whether analysis could find something else in `c` than in `held`, the same object as weftd
 * holds it. JSON text, not a deep comparison: several times cheaper over thousands of objects,
 * and a difference in key order only costs a second analysis.
 */
function changedFrom(held: Config | undefined, c: Config): boolean {
  if (!held) return true;
  const text = (x: Config) => JSON.stringify([x.spec, x.metadata.labels ?? {}, x.metadata.annotations ?? {}, x.metadata.creationTimestamp]);
  return text(held) !== text(c);
}

/** The config directory's file of a held object, read only when a finding on it is shown. */
function heldLocator(file: string | undefined): ProblemList {
  if (!file) return new ProblemList();
  try {
    const source = parseYamlDocuments(readFileSync(file, 'utf8'), file).documents[0]?.source;
    return new ProblemList(source);
  } catch {
    return new ProblemList({ file, positionOf: () => ({ line: 1, column: 1 }) });
  }
}

/**
 * The findings that involve `applied` in the config `held` becomes with `applied` in it, in order:
 * those on applied objects by file and line, then those on other objects. `applied` carry the
 * source they were read from and the creation time the apply gave them.
 */
export function applyFindings(held: readonly HeldObject[], applied: readonly Config[]): LocatedFinding[] {
  const appliedKeys = new Set(applied.map(keyOf));
  const before: Config[] = held.map((h) => ({ apiVersion: h.apiVersion, kind: h.kind, metadata: h.metadata, spec: h.spec }));
  const files = new Map(held.map((h, i) => [before[i]!, h.source?.file]));
  const heldByKey = new Map(before.map((c) => [keyOf(c), c]));
  const after = [...before.filter((c) => !appliedKeys.has(keyOf(c))), ...applied];
  const messages = analysisMessages(after);
  const onApplied: AnalysisMessage[] = [];
  const onOthers: AnalysisMessage[] = [];
  for (const m of messages) (appliedKeys.has(keyOf(m.config)) ? onApplied : onOthers).push(m);
  let brought: AnalysisMessage[] = [];
  // Findings on other objects are new only if an applied object differs from what was held (the
  // second analysis is skipped when the whole apply is unchanged, as re-applying a big file often is).
  if (onOthers.length > 0 && applied.some((c) => changedFrom(heldByKey.get(keyOf(c)), c))) {
    const earlier = new Set(analysisMessages(before).map(messageKey));
    brought = onOthers.filter((m) => !earlier.has(messageKey(m)));
  }
  const locate = (m: AnalysisMessage, list: ProblemList): LocatedFinding => {
    list.add(m.severity, m.path, m.message, m.code);
    return { subject: describeConfig(m.config), problem: list.items.at(-1)! };
  };
  const byPosition = (a: LocatedFinding, b: LocatedFinding) =>
    (a.problem.file ?? '').localeCompare(b.problem.file ?? '') || (a.problem.line ?? 0) - (b.problem.line ?? 0) || (a.problem.column ?? 0) - (b.problem.column ?? 0);
  const lists = new Map<Config, ProblemList>();
  const listOf = (c: Config, make: () => ProblemList) => {
    let l = lists.get(c);
    if (!l) {
      l = make();
      lists.set(c, l);
    }
    return l;
  };
  return [
    ...onApplied.map((m) => locate(m, listOf(m.config, () => new ProblemList(m.config.source)))).sort(byPosition),
    ...brought.map((m) => locate(m, listOf(m.config, () => heldLocator(files.get(m.config))))).sort(byPosition),
  ];
}

/**
 * Prints the findings that involve `applied` as compiler output, then one line saying they did not
 * stop the apply. A failure of the analysis itself is said and does not fail the apply either.
 */
export function reportAnalysis(held: readonly HeldObject[], applied: readonly Config[], err: (s: string) => void): void {
  let findings: LocatedFinding[];
  try {
    findings = applyFindings(held, applied);
  } catch (e) {
    err(`weftctl: analysis of the config in force failed (the apply is not affected): ${e instanceof Error ? e.message : String(e)}\n`);
    return;
  }
  if (findings.length === 0) return;
  for (const f of findings) err(`${formatProblem(f.problem, f.subject)}\n`);
  const errors = findings.filter((f) => f.problem.severity === 'error').length;
  const warnings = findings.length - errors;
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  err(`weftctl: analysis of the config in force: ${count(errors, 'error')}, ${count(warnings, 'warning')} (applied all the same: only validation errors stop an apply)\n`);
}
