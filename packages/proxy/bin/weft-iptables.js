#!/usr/bin/env node
// weft-iptables: see scripts/launch.js (runs on the workspace's Node 24 whatever Node started it).
import { launch } from '../../../scripts/launch.js';

await launch(import.meta.url, 'weft-iptables', async () => (await import('../src/capture/cli.ts')).runIptablesCli(process.argv.slice(2)));
