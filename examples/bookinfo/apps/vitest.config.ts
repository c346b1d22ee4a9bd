import { defineConfig } from 'vitest/config';

// Some tests wait out the services' real timeouts (2.5 s, 3 s x 2) on a busy 2-core machine.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000 } });
