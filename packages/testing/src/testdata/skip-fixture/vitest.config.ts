import { defineConfig } from 'vitest/config';

// Run only by host.test.ts: a test file that skips for a missing tool, as every real one does.
export default defineConfig({ test: { include: ['*.fixture.ts'] } });
