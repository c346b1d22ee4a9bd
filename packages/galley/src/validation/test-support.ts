// Helpers shared by the validation tests: load YAML as a user would write it, validate it, and
// find the line a problem must be reported at. Test-only; not exported from the package.
import { defaultKindRegistry, loadText } from '@weft/model';
import { expect, it } from 'vitest';
import { type ResourceReport, validateLoaded } from './validate.ts';

const registry = defaultKindRegistry();

/** Loads `yaml` (exactly one resource, no load problems) and validates it. */
export function validateYaml(yaml: string): ResourceReport {
  const r = loadText(yaml, 'file.yaml', { registry });
  expect(r.problems).toEqual([]);
  expect(r.resources).toHaveLength(1);
  return validateLoaded(r.resources[0]!);
}

/** `[line, path, message]` of each problem of one severity in the single resource of `yaml`. */
export function problems(yaml: string, severity: 'error' | 'warning' = 'error'): [number, string, string][] {
  const report = validateYaml(yaml);
  return (severity === 'error' ? report.errors : report.warnings).map((p) => [p.line ?? 0, p.path, p.message]);
}

/** 1-based line of the only line of `yaml` containing `snippet`. */
export function lineOf(yaml: string, snippet: string): number {
  const lines = yaml.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(snippet) ? [i + 1] : []));
  if (hits.length !== 1) throw new Error(`${JSON.stringify(snippet)} occurs ${hits.length} times in the test YAML`);
  return hits[0]!;
}

/** A networking.istio.io resource named `test` in `default` with `spec` (any indentation) under `spec:`. */
export function networkingResource(kind: string, spec: string): string {
  const lines = spec.split('\n').filter((l) => l.trim() !== '');
  const indent = Math.min(...lines.map((l) => l.length - l.trimStart().length));
  return `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata:\n  name: test\n  namespace: default\nspec:\n${lines.map((l) => `  ${l.slice(indent)}`).join('\n')}\n`;
}

/** The line marked `# <--`: where the problem must be reported. */
export const marked = (yaml: string): number => yaml.split('\n').findIndex((l) => l.includes('# <--')) + 1;

export type Case = [title: string, spec: string, path: string, message: string];

/** Each case has exactly one error, at the marked line and the given path, whose message contains `message`. */
export function invalid(kind: string, cases: Case[]): void {
  it.each(cases)('%s', (_title, spec, path, message) => {
    const yaml = networkingResource(kind, spec);
    expect(problems(yaml)).toEqual([[marked(yaml), path, expect.stringContaining(message)]]);
  });
}

/** Each case has (at least) the given warning at the marked line, and no error. */
export function warns(kind: string, cases: Case[]): void {
  it.each(cases)('%s', (_title, spec, path, message) => {
    const yaml = networkingResource(kind, spec);
    expect(problems(yaml)).toEqual([]);
    expect(problems(yaml, 'warning')).toContainEqual([marked(yaml), path, expect.stringContaining(message)]);
  });
}
