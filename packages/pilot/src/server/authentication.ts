// Authenticated xDS, as istiod does it (pilot/pkg/xds/authentication.go): a stream on an
// authenticating port first proves an identity (the authenticator hook: a verified client
// certificate or a bearer token; pilot does not know how), then the node it announces must belong
// to that identity. A stream without credentials ends with UNAUTHENTICATED; one whose node claims
// another namespace or service account ends with PERMISSION_DENIED. Neither ever becomes a
// connection, so neither shows in /debug/syncz or is pushed to.
import { parseSpiffeId } from '@weft/mesh';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { Proxy as MeshProxy } from '../core/types.ts';

/** What an authenticator made of a stream's credentials: the caller's verified SPIFFE IDs and how it proved them, or why it could not. */
export type XdsAuthentication = { identities: readonly string[]; via?: string } | { identities?: undefined; reason: string };

/** The gRPC call as the authenticator sees it: TLS peer (getAuthContext), metadata, peer address. */
export type XdsCall = Pick<ServerDuplexStream<unknown, unknown>, 'getAuthContext' | 'metadata' | 'getPeer'>;

/**
 * Authenticates the caller of an xDS stream before its first request is read (citadel's
 * callerAuthenticator fits). A promise when it has to ask someone (Kubernetes' TokenReview): the
 * stream's requests wait in grpc-js's buffer until it settles.
 */
export type XdsAuthenticator = (call: XdsCall) => XdsAuthentication | Promise<XdsAuthentication>;

export type IdentityCheck = { identity: string } | { identity?: undefined; reason: string };

/**
 * The first of `identities` that may serve `proxy`: its namespace must be the proxy's config
 * namespace, and, when the node names a service account (metadata SERVICE_ACCOUNT), its service
 * account must be that one. Otherwise the reason, naming both sides.
 */
export function checkProxyIdentity(proxy: Pick<MeshProxy, 'namespace' | 'serviceAccount'>, identities: readonly string[]): IdentityCheck {
  for (const id of identities) {
    const parsed = parseSpiffeId(id);
    if (!parsed) continue;
    if (proxy.namespace && parsed.namespace !== proxy.namespace) continue;
    if (proxy.serviceAccount && parsed.serviceAccount !== proxy.serviceAccount) continue;
    return { identity: id };
  }
  const claimed = `namespace ${proxy.namespace || '(none)'}${proxy.serviceAccount ? `, service account ${proxy.serviceAccount}` : ''}`;
  return { reason: `no authenticated identity (${identities.join(', ') || 'none'}) matches the node's ${claimed}` };
}
