#!/usr/bin/env node
// weft-ingress: see scripts/launch.js (runs on the workspace's Node 24 whatever Node started it).
import { dataPlaneEnv, dataPlaneNodeFlags, launch } from '../../../scripts/launch.js';

await launch(import.meta.url, 'weft-ingress', async () => (await import('../src/main.ts')).main(process.argv.slice(2)), { exit: 'hard', nodeFlags: dataPlaneNodeFlags, env: dataPlaneEnv });
