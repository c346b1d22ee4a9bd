import { defineConfig } from 'vitest/config';

// Integration tests start weftd and proxies as processes.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000 } });
