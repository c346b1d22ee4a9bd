import type { KindValidator } from './context.ts';

export const kubernetesValidators: readonly KindValidator[] = [];
