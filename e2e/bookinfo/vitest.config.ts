import { defineConfig } from 'vitest/config';

// One mesh per driver, shared by every scenario of its file; the drivers run one after the other
// (fileParallelism off): each starts a dozen processes, and this runs on 2 cores.
export default defineConfig({ test: { testTimeout: 120_000, hookTimeout: 180_000, fileParallelism: false } });
