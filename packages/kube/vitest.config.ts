import { defineConfig } from 'vitest/config';

// The Kubernetes tier waits on a real API server (objects admitted, informers synced, pods scheduled).
export default defineConfig({ test: { testTimeout: 120_000, hookTimeout: 120_000 } });
