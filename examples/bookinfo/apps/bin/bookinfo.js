#!/usr/bin/env node
// bookinfo: one of the BookInfo services (--service productpage|details|reviews|ratings); see
// ../src/main.ts. Runs on the workspace's Node 24 whatever Node started it (scripts/launch.js).
import { launch } from '../../../../scripts/launch.js';

await launch(import.meta.url, 'bookinfo', async () => (await import('../src/main.ts')).main(process.argv.slice(2)), { exit: 'hard' });
