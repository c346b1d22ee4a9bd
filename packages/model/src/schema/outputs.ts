import { allKinds } from '../schemas/index.ts';
import { renderTypes } from './codegen.ts';
import { renderCrds } from './crd.ts';

/** Every generated file, keyed by its path relative to packages/model. */
export function generatedFiles(): Record<string, string> {
  return {
    'src/generated/types.ts': renderTypes(allKinds),
    '../../deploy/crds/crd-all.gen.yaml': renderCrds(allKinds),
  };
}
