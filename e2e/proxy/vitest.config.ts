import { defineConfig } from 'vitest/config';

// Each file starts weftd, proxies and backends as processes and shares them between its tests.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
