import type { KindValidator } from './context.ts';

export const securityValidators: readonly KindValidator[] = [];
