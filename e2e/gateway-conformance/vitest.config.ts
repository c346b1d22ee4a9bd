import { defineConfig } from 'vitest/config';

// The conformance run is one long test (tens of minutes) under the exclusive cluster lock.
export default defineConfig({ test: { testTimeout: 120_000, hookTimeout: 40 * 60_000, fileParallelism: false } });
