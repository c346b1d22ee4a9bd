// Who is calling a service on the control plane's TLS port (15012): the CA's CreateCertificate and
// pilot's ADS both ask this one function, as istiod's authenticators serve both. A caller proves
// its identity with a client certificate that the TLS handshake verified against the mesh root
// (its one SPIFFE URI SAN), or else with `authorization: Bearer <bootstrap token>` signed by the CA.
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import { spiffeIdOf } from './spiffe.ts';
import { TokenError } from './token.ts';

/** The verified SPIFFE IDs of a caller and how it proved them, or why it could not. */
export type CallerAuthentication = { identities: string[]; via: 'mtls' | 'token' } | { identities?: undefined; reason: string };

/** What a gRPC server call offers for authentication (any of grpc-js's server call objects). */
export interface AuthenticatableCall {
  getAuthContext(): ReturnType<ServerUnaryCall<unknown, unknown>['getAuthContext']>;
  readonly metadata: Metadata;
}

/** Checks a bootstrap token; returns the SPIFFE ID it vouches for, throws TokenError otherwise (CertificateAuthority does). */
export interface BootstrapTokenVerifier {
  verifyBootstrapToken(token: string): string;
}

export type CallerAuthenticator = (call: AuthenticatableCall) => CallerAuthentication;

/** Authenticates one call: client certificate first, then a bearer token. */
export function authenticateCaller(call: AuthenticatableCall, tokens: BootstrapTokenVerifier): CallerAuthentication {
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
  try {
    return { identities: [tokens.verifyBootstrapToken(m[1]!)], via: 'token' };
  } catch (err) {
    return { reason: err instanceof TokenError ? err.message : `token check failed: ${String(err)}` };
  }
}

/** `authenticateCaller` bound to a CA: the hook pilot's DiscoveryServer takes for its TLS port. */
export function callerAuthenticator(tokens: BootstrapTokenVerifier): CallerAuthenticator {
  return (call) => authenticateCaller(call, tokens);
}
