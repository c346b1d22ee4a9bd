// Prints Weft's agreement with Istio's validation cases, per kind, and every disagreement.
// Usage: node packages/galley/scripts/conformance.ts [--kind VirtualService] [--all]
import { parseArgs } from 'node:util';
import { casesFile, loadCases, runConformance } from '../src/validation/conformance.ts';

const { values } = parseArgs({ options: { kind: { type: 'string' }, all: { type: 'boolean' } } });
const cases = loadCases();
if (!cases) {
  console.log(`no reference cases at ${casesFile}`);
  process.exit(0);
}
const { outcomes, perKind, skippedKinds } = runConformance(cases);
for (const o of outcomes) {
  if (values.kind && o.case.kind !== values.kind) continue;
  if (o.weftValid === o.case.valid && !values.all) continue;
  console.log(`${o.weftValid === o.case.valid ? 'AGREE' : 'DISAGREE'} ${o.case.kind} "${o.case.name}" (${o.case.source}) istio=${o.case.valid ? 'valid' : 'invalid'} weft=${o.weftValid ? 'valid' : 'invalid'}${o.case.errorContains ? ` expects "${o.case.errorContains}"` : ''}`);
  console.log(`  spec: ${JSON.stringify(o.case.spec)}`);
  for (const m of o.messages) console.log(`  ${m}`);
}
let t = 0;
let a = 0;
for (const k of perKind) {
  t += k.total;
  a += k.agree;
  console.log(`${k.kind.padEnd(24)} ${k.agree}/${k.total} ${((100 * k.agree) / k.total).toFixed(1)}%`);
}
console.log(`${'all served kinds'.padEnd(24)} ${a}/${t} ${((100 * a) / t).toFixed(1)}%`);
console.log(`not served by Weft (not in DESIGN.md §1): ${[...skippedKinds].map(([k, n]) => `${k} (${n})`).join(', ')}`);
