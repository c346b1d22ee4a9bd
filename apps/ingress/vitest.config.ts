import { defineConfig } from 'vitest/config';

// These tests start the proxy as a process.
export default defineConfig({ test: { testTimeout: 30_000 } });
