import { defineConfig } from 'vitest/config';

// One long scenario against a real weftd process and real gRPC servers and clients.
export default defineConfig({ test: { testTimeout: 120_000, hookTimeout: 60_000 } });
