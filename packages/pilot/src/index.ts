// @weft/pilot: registries -> push context -> generators -> ADS server.
export * from './core/types.ts';
