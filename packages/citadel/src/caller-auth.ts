// Who is calling a service on the control plane's TLS port (15012): the CA's CreateCertificate and
// pilot's ADS both ask this one function, as istiod's authenticators serve both. A caller proves
// its identity with a client certificate that the TLS handshake verified against the mesh root
// (its one SPIFFE URI SAN), or else with `authorization: Bearer <token>`: a bootstrap token signed
// by the CA, or a token the platform issued (Kubernetes: the pod's projected service-account
// token), which a PlatformTokenAuthenticator vouches for. Citadel knows no platform: @weft/kube
// implements that interface with the TokenReview API.
import { defaultTrustDomain } from '@weft/mesh';
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import { bootstrapTokenIssuer, TokenError, unverifiedClaims } from './token.ts';
import { checkedSpiffeId, spiffeIdOf } from './spiffe.ts';

/** The verified SPIFFE IDs of a caller and how it proved them (`mtls`, `token`, or the platform authenticator's `via`), or why it could not. */
export type CallerAuthentication = { identities: string[]; via: string } | { identities?: undefined; reason: string };

/** What a gRPC server call offers for authentication (any of grpc-js's server call objects). */
export interface AuthenticatableCall {
  getAuthContext(): ReturnType<ServerUnaryCall<unknown, unknown>['getAuthContext']>;
  readonly metadata: Metadata;
}

/** Checks a bootstrap token; returns the SPIFFE ID it vouches for, throws TokenError otherwise (CertificateAuthority does). */
export interface BootstrapTokenVerifier {
  verifyBootstrapToken(token: string): string;
  /** The trust domain platform identities are named in (the CA's); default cluster.local. */
  readonly trustDomain?: string;
}

/** A service account as a platform names it. */
export interface ServiceAccountIdentity {
  namespace: string;
  serviceAccount: string;
}

/**
 * Vouches for bearer tokens the platform issued (Kubernetes: projected service-account tokens,
 * checked by the API server's TokenReview). The caller's identity is the SPIFFE ID of the account,
 * in the CA's trust domain.
 */
export interface PlatformTokenAuthenticator {
  /** How callers it vouches for show in logs and /debug/syncz (`authn`), e.g. `kubernetes-token`. */
  readonly via: string;
  /** The token's service account; rejects with TokenError (its message says why) when the platform does not vouch for it, with another Error when it could not be asked. */
  authenticate(token: string): Promise<ServiceAccountIdentity>;
}

/** Synchronous for certificates and bootstrap tokens; a promise only when the platform is asked. */
export type CallerAuthenticator = (call: AuthenticatableCall) => CallerAuthentication | Promise<CallerAuthentication>;

const reasonOf = (err: unknown) => (err instanceof TokenError ? err.message : `token check failed: ${err instanceof Error ? err.message : String(err)}`);

/** Authenticates one call: client certificate first, then a bearer token (the CA's own, else the platform's). */
export function authenticateCaller(
  call: AuthenticatableCall,
  tokens: BootstrapTokenVerifier,
  platform?: PlatformTokenAuthenticator,
): CallerAuthentication | Promise<CallerAuthentication> {
  // grpc-js reports a peer certificate only when the TLS handshake verified it against the server's roots.
  const peer = call.getAuthContext()?.sslPeerCertificate;
  if (peer?.raw) {
    const id = spiffeIdOf(peer.raw);
    return id ? { identities: [id], via: 'mtls' } : { reason: 'client certificate has no single SPIFFE URI SAN' };
  }
  const header = call.metadata.get('authorization')[0];
  if (typeof header !== 'string') return { reason: 'no client certificate and no bearer token' };
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!m) return { reason: 'authorization metadata is not a bearer token' };
  const token = m[1]!;
  // The (unverified) issuer only routes the token to the one check that can verify it, so each
  // refusal names the real reason; the check itself trusts nothing it has not verified.
  if (platform && unverifiedClaims(token)?.iss !== bootstrapTokenIssuer) {
    const trustDomain = tokens.trustDomain;
    // Through a promise from the start, so an authenticator that throws is a refusal too.
    return Promise.resolve(token)
      .then((t) => platform.authenticate(t))
      .then(
        (account): CallerAuthentication => {
          try {
            return { identities: [checkedSpiffeId({ trustDomain: trustDomain ?? defaultTrustDomain, ...account })], via: platform.via };
          } catch (err) {
            return { reason: `the platform named an invalid identity: ${err instanceof Error ? err.message : String(err)}` };
          }
        },
        (err: unknown): CallerAuthentication => ({ reason: reasonOf(err) }),
      );
  }
  try {
    return { identities: [tokens.verifyBootstrapToken(token)], via: 'token' };
  } catch (err) {
    return { reason: reasonOf(err) };
  }
}

/** `authenticateCaller` bound to a CA (and the platform's token check, when there is one): the hook pilot's DiscoveryServer takes for its TLS port. */
export function callerAuthenticator(tokens: BootstrapTokenVerifier, platform?: PlatformTokenAuthenticator): CallerAuthenticator {
  return (call) => authenticateCaller(call, tokens, platform);
}
