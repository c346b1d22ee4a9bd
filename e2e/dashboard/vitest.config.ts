import { defineConfig } from 'vitest/config';

// One mesh (with Prometheus and the dashboard) and one browser for the whole file: a mesh start
// costs 20-40 s on this 2-core machine, and the scenarios follow each other on it in order.
export default defineConfig({ test: { testTimeout: 150_000, hookTimeout: 240_000, fileParallelism: false } });
