// weftd: the control-plane daemon. `startWeftd` is exported for tests, benchmarks and embedding.
export { main, parseFlags, usage } from './main.ts';
export { proxyShapeKey, startWeftd, type Weftd, type WeftdOptions } from './weftd.ts';
