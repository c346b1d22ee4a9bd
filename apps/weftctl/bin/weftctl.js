#!/usr/bin/env node
// weftctl: see scripts/launch.js (runs on the workspace's Node 24 whatever Node started it).
import { launch } from '../../../scripts/launch.js';

await launch(import.meta.url, 'weftctl', async () => (await import('../src/main.ts')).main(process.argv.slice(2)));
