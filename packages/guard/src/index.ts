export { type ConnectionInjectingServer, OwnerGuard, type OwnerGuardOptions, type OwnerOnlyPort } from './guard.ts';
export { type Endpoint, type LookupFailure, lookupPeerUid, type PeerLookup, peerLookup, peerUid } from './sock-diag.ts';
