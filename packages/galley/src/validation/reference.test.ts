// Conformance with Istio's own data in ../shared/reference (present in CI; skipped, saying why, when absent).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultKindRegistry, loadPaths } from '@weft/model';
import { describe, expect, it } from 'vitest';
import { casesFile, loadCases, referenceDir, runConformance } from './conformance.ts';
import { validateLoadResult } from './validate.ts';

const bookinfo = join(referenceDir, 'istio/samples/bookinfo');
const haveBookinfo = existsSync(bookinfo);
const cases = loadCases();

describe('Istio BookInfo samples', () => {
  if (!haveBookinfo) console.log(`skipping BookInfo sample validation: ${bookinfo} is absent`);
  const dirs = ['networking', 'platform/kube'];
  for (const sub of dirs) {
    const files = haveBookinfo ? readdirSync(join(bookinfo, sub)).filter((f) => f.endsWith('.yaml')) : [];
    it.skipIf(!haveBookinfo)(`every file in samples/bookinfo/${sub} validates unchanged (${files.length} files)`, async () => {
      const reports = validateLoadResult(await loadPaths([join(bookinfo, sub)], { registry: defaultKindRegistry() }));
      const bad = reports.filter((r) => !r.valid).flatMap((r) => r.errors.map((p) => `${p.file}:${p.line}: ${r.kind} ${r.name}: ${p.path}: ${p.message}`));
      expect(bad).toEqual([]);
      expect(reports.length).toBeGreaterThan(files.length - 1);
    });
  }
});

describe('Istio validation cases (whole resources)', () => {
  if (!cases) console.log(`skipping conformance: ${casesFile} is absent`);
  it.skipIf(!cases)('agree with Istio on valid/invalid for at least 95% of cases', () => {
    const { perKind, skippedKinds } = runConformance(cases!);
    let total = 0;
    let agree = 0;
    const lines = perKind.map((k) => {
      total += k.total;
      agree += k.agree;
      return `  ${k.kind.padEnd(24)} ${String(k.agree).padStart(3)}/${String(k.total).padEnd(3)} ${((100 * k.agree) / k.total).toFixed(1)}%`;
    });
    lines.push(`  ${'all served kinds'.padEnd(24)} ${String(agree).padStart(3)}/${String(total).padEnd(3)} ${((100 * agree) / total).toFixed(1)}%`);
    lines.push(`  not served (not in DESIGN.md §1): ${[...skippedKinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    console.log(`Agreement with Istio's validation cases:\n${lines.join('\n')}`);
    expect(agree / total).toBeGreaterThanOrEqual(0.95);
  });
});
