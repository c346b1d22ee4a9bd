// Where the tutorial's YAML comes from: Istio's own samples/bookinfo/networking, kept beside the
// repository in ../shared/reference (applied unchanged), else this repository's
// examples/bookinfo/networking (written for Weft, same objects), with a message saying so.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const referenceNetworking = resolve(repoRoot, '../shared/reference/istio/samples/bookinfo/networking');
export const exampleNetworking = join(repoRoot, 'examples/bookinfo/networking');
/** YAML this suite adds where the tutorial has no file in samples/bookinfo/networking. */
export const suiteConfig = resolve(fileURLToPath(new URL('../config', import.meta.url)));

export const usingReference = existsSync(referenceNetworking);
if (!usingReference) console.warn(`Istio's BookInfo networking samples are not at ${referenceNetworking}; the scenarios apply ${exampleNetworking} instead`);

/** A tutorial file by name (`virtual-service-all-v1.yaml`): Istio's copy when present, else the example's. */
export function networking(file: string): string {
  const ref = join(referenceNetworking, file);
  if (usingReference && existsSync(ref)) return ref;
  const example = join(exampleNetworking, file);
  if (existsSync(example)) return example;
  throw new Error(`${file} is in neither ${referenceNetworking} nor ${exampleNetworking}`);
}

/** Whether a tutorial file exists in the set in use. */
export function hasNetworking(file: string): boolean {
  return existsSync(join(usingReference ? referenceNetworking : exampleNetworking, file));
}
