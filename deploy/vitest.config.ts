import { defineConfig } from 'vitest/config';

// Building images and helm (from the Go module proxy, once) takes minutes on a loaded 2-core machine.
export default defineConfig({ test: { testTimeout: 600_000, hookTimeout: 900_000, include: ['images/**/*.test.ts', 'charts/**/*.test.ts', 'addons/**/*.test.ts', 'kind/**/*.test.ts', '*.test.ts'] } });
