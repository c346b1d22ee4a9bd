// Conformance with Istio's own data in ../shared/reference (present in CI; skipped, saying why, when absent).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultKindRegistry, loadPaths } from '@weft/model';
import { noteSkip } from '@weft/testing';
import { describe, expect, it } from 'vitest';
import { casesFile, loadCases, referenceDir, runConformance } from './conformance.ts';
import { validateLoadResult } from './validate.ts';

const bookinfo = join(referenceDir, 'istio/samples/bookinfo');
const haveBookinfo = existsSync(bookinfo);
const cases = loadCases();

/** Kinds in the BookInfo platform samples that belong to other projects (cert-manager, Ingress). */
const foreignKinds = new Set(['Certificate', 'ClusterIssuer', 'Ingress']);

describe('Istio BookInfo samples', () => {
  noteSkip(haveBookinfo ? undefined : `Istio's BookInfo samples are not at ${bookinfo} (reference data kept beside the repository in CI)`);
  const count = (sub: string) => (haveBookinfo ? readdirSync(join(bookinfo, sub)).filter((f) => f.endsWith('.yaml')).length : 0);
  const problems = async (sub: string) => {
    const reports = validateLoadResult(await loadPaths([join(bookinfo, sub)], { registry: defaultKindRegistry() }));
    return reports.flatMap((r) => r.errors.map((p) => ({ kind: r.kind, text: `${p.file}:${p.line}: ${r.kind} ${r.name}: ${p.path}: ${p.message}`, code: p.code, message: p.message })));
  };
  it.skipIf(!haveBookinfo)(`every file in samples/bookinfo/networking validates unchanged (${count('networking')} files)`, async () => {
    expect((await problems('networking')).map((p) => p.text)).toEqual([]);
  });
  it.skipIf(!haveBookinfo)(`samples/bookinfo/platform/kube validates, apart from kinds outside Weft's API (${count('platform/kube')} files)`, async () => {
    const found = await problems('platform/kube');
    const foreign = found.filter((p) => p.code === 'WEFT0004' && [...foreignKinds].some((k) => p.message.includes(`"${k}"`)));
    expect(found.filter((p) => !foreign.includes(p)).map((p) => p.text)).toEqual([]);
    expect(foreign.length).toBeGreaterThan(0);
  });
});

describe('Istio validation cases (whole resources)', () => {
  noteSkip(cases ? undefined : `Istio's validation cases are not at ${casesFile} (reference data kept beside the repository in CI)`);
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
