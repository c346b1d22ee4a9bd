// Writes src/generated/: TypeScript types for proto/istio/v1/auth/ca.proto.
// Run with `npm run generate -w @weft/citadel` after changing the proto.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { citadelTypeFiles } from '../src/codegen.ts';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '../src/generated');
const files = citadelTypeFiles();
rmSync(outDir, { recursive: true, force: true });
for (const [rel, text] of Object.entries(files)) {
  const path = join(outDir, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
console.log(`wrote ${Object.keys(files).length} files to src/generated`);
