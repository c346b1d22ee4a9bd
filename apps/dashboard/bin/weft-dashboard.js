#!/usr/bin/env node
// weft-dashboard: see scripts/launch.js (runs on the workspace's Node 24 whatever Node started it).
import { launch } from '../../../scripts/launch.js';

await launch(import.meta.url, 'weft-dashboard', async () => (await import('../src/server/main.ts')).main(process.argv.slice(2)), { exit: 'hard' });
