import type { KindValidator } from './context.ts';

export const networkingValidators: readonly KindValidator[] = [];
