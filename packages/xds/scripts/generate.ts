// Writes src/generated/: TypeScript types for the Envoy protos Weft uses (see src/protos.ts).
// Run with `npm run generate -w @weft/xds` after changing the proto list or upgrading @grpc/grpc-js-xds.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envoyTypeFiles } from '../src/codegen.ts';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '../src/generated');
const files = envoyTypeFiles();
rmSync(outDir, { recursive: true, force: true });
let bytes = 0;
for (const [rel, text] of Object.entries(files)) {
  const path = join(outDir, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  bytes += text.length;
}
console.log(`wrote ${Object.keys(files).length} files (${bytes} bytes) to src/generated`);
