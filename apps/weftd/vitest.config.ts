import { defineConfig } from 'vitest/config';

// These tests start weftd as a process (generating a CA key among other things) on a busy 2-core machine.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 30_000 } });
