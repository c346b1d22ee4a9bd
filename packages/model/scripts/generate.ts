// Writes the files that come from the schemas: TypeScript types and CRD manifests.
// Run with `npm run generate` from the repo root after changing anything under src/schemas.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../src/schema/outputs.ts';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const [rel, text] of Object.entries(generatedFiles())) {
  const path = join(pkg, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  console.log(`wrote ${rel} (${text.length} bytes)`);
}
