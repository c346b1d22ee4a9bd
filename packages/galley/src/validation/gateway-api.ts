import type { KindValidator } from './context.ts';

export const gatewayApiValidators: readonly KindValidator[] = [];
