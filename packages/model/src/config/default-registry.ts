import { allKinds } from '../schemas/index.ts';
import { KindRegistry } from './kinds.ts';

/** Every kind Weft understands (DESIGN.md §1) plus the Kubernetes kinds analysis reads. */
export function defaultKindRegistry(): KindRegistry {
  return new KindRegistry(allKinds);
}
