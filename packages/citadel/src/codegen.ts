import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderProtoTypes } from '@weft/xds';

/** packages/citadel/proto: the CA service contract. */
export const protoDir = join(dirname(fileURLToPath(import.meta.url)), '../proto');
export const caProtoFile = 'istio/v1/auth/ca.proto';

/** The generated types of this package, keyed by path relative to `src/generated/`. */
export function citadelTypeFiles(): Record<string, string> {
  return renderProtoTypes({ cwd: protoDir, includeDirs: ['.'], files: [caProtoFile] });
}
