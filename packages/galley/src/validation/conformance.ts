// Runs Istio's own validation cases (../shared/reference/validation-cases.jsonl) through Weft's
// structural and semantic validation and measures agreement on valid/invalid.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allKinds, type Config, defaultKindRegistry, groupKind, ProblemList, validateStructure } from '@weft/model';
import { validateConfig } from './validate.ts';

export interface ValidationCase {
  kind: string;
  name: string;
  valid: boolean;
  spec: unknown;
  source: string;
  resource: boolean;
  errorContains?: string;
  warning?: boolean | string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  apiVersion?: string;
  test?: string;
}

export interface CaseOutcome {
  case: ValidationCase;
  weftValid: boolean;
  messages: string[];
}

const here = dirname(fileURLToPath(import.meta.url));
/** Where CI puts the reference data: `../shared/reference` beside the repository. */
export const referenceDir = resolve(here, '../../../../../shared/reference');
export const casesFile = join(referenceDir, 'validation-cases.jsonl');

/** Istio kinds in the case file that Weft serves (DESIGN.md §1). */
const istioGroups: Record<string, string> = {
  VirtualService: 'networking.istio.io',
  DestinationRule: 'networking.istio.io',
  Gateway: 'networking.istio.io',
  ServiceEntry: 'networking.istio.io',
  WorkloadEntry: 'networking.istio.io',
  Sidecar: 'networking.istio.io',
  PeerAuthentication: 'security.istio.io',
  AuthorizationPolicy: 'security.istio.io',
  RequestAuthentication: 'security.istio.io',
};

export function loadCases(file = casesFile): ValidationCase[] | undefined {
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ValidationCase);
}

export function isServedKind(kind: string): boolean {
  return kind in istioGroups;
}

/** Validates one whole-resource case the way `weftctl validate` would. */
export function runCase(c: ValidationCase): CaseOutcome {
  const group = istioGroups[c.kind]!;
  const schema = allKinds.find((k) => k.group === group && k.kind === c.kind)!;
  const version = c.apiVersion?.split('/')[1] ?? schema.versions.at(-1)!;
  const config: Config = {
    apiVersion: `${group}/${version}`,
    kind: c.kind,
    metadata: { name: c.metadata?.name ?? 'test', namespace: c.metadata?.namespace ?? 'default', ...(c.metadata?.labels ? { labels: c.metadata.labels } : {}), ...(c.metadata?.annotations ? { annotations: c.metadata.annotations } : {}) },
    spec: c.spec ?? {},
  };
  const structural = new ProblemList();
  const resolved = defaultKindRegistry().resolve(group, version, c.kind);
  if ('error' in resolved) structural.error(['apiVersion'], resolved.error);
  validateStructure(schema.spec, config.spec, ['spec'], structural);
  const semantic = validateConfig(config, { structurallyBroken: structural.hasErrors() });
  const all = [...structural.items, ...semantic];
  const errors = all.filter((p) => p.severity === 'error');
  return { case: c, weftValid: errors.length === 0, messages: all.map((p) => `${p.severity}: ${p.path}: ${p.message}`) };
}

export interface KindAgreement {
  kind: string;
  total: number;
  agree: number;
}

export function runConformance(cases: readonly ValidationCase[]): { outcomes: CaseOutcome[]; perKind: KindAgreement[]; skippedKinds: Map<string, number> } {
  const outcomes: CaseOutcome[] = [];
  const skippedKinds = new Map<string, number>();
  for (const c of cases) {
    if (!c.resource) continue;
    if (!isServedKind(c.kind)) {
      skippedKinds.set(c.kind, (skippedKinds.get(c.kind) ?? 0) + 1);
      continue;
    }
    outcomes.push(runCase(c));
  }
  const perKind = new Map<string, KindAgreement>();
  for (const o of outcomes) {
    const k = perKind.get(o.case.kind) ?? { kind: o.case.kind, total: 0, agree: 0 };
    k.total++;
    if (o.weftValid === o.case.valid) k.agree++;
    perKind.set(o.case.kind, k);
  }
  return { outcomes, perKind: [...perKind.values()].sort((a, b) => a.kind.localeCompare(b.kind)), skippedKinds };
}

export { groupKind };
