import { defineConfig } from 'vitest/config';

// These tests start the real CLI as a process, several per test; leave room on a busy 2-core machine.
export default defineConfig({ test: { testTimeout: 30_000 } });
