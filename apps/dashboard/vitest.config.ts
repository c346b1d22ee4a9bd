import { defineConfig } from 'vitest/config';

// These tests start the dashboard (and for the mesh tests a whole local mesh) as processes on a busy 2-core machine.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 180_000, fileParallelism: false } });
