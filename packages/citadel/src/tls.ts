// Mutual TLS between workloads with Node's tls module: both sides present their workload
// certificate, verify the peer's chain against the trust bundle, and check the peer's SPIFFE ID
// (not a hostname: workload certificates carry only the URI SAN).
import { parseSpiffeId, parseSubjectAltNames } from '@weft/mesh';
import type { PeerCertificate, SecureContextOptions, Server, TLSSocket } from 'node:tls';
import type { SecretSource, WorkloadSecret } from './cert-manager.ts';
import { spiffeIdOf, type WorkloadIdentity } from './spiffe.ts';

/**
 * Which peers are acceptable: one SPIFFE ID, a list, any identity in a trust domain, or a predicate.
 */
export type SpiffeMatcher = string | readonly string[] | { trustDomain: string } | ((spiffeId: string, identity: WorkloadIdentity) => boolean);

export type SpiffePeerResult = { ok: true; spiffeId: string; identity: WorkloadIdentity } | { ok: false; reason: string };

/** Whether `id` is a workload SPIFFE ID that `expected` accepts. */
export function matchSpiffeId(id: string, expected: SpiffeMatcher): SpiffePeerResult {
  const identity = parseSpiffeId(id);
  if (!identity) return { ok: false, reason: `${JSON.stringify(id)} is not a workload SPIFFE ID` };
  let ok: boolean;
  if (typeof expected === 'string') ok = id === expected;
  else if (typeof expected === 'function') ok = expected(id, identity);
  else if ('trustDomain' in expected) ok = identity.trustDomain === expected.trustDomain;
  else ok = expected.includes(id);
  return ok ? { ok: true, spiffeId: id, identity } : { ok: false, reason: `peer identity ${id} is not allowed` };
}

/**
 * Checks an established TLS connection's peer: its certificate chain verified against our trust
 * bundle (`socket.authorized`), exactly one SPIFFE URI SAN, and that identity accepted by `expected`.
 */
export function verifySpiffePeer(socket: TLSSocket, expected: SpiffeMatcher): SpiffePeerResult {
  if (!socket.authorized) return { ok: false, reason: `peer certificate not trusted: ${String(socket.authorizationError ?? 'no certificate')}` };
  const cert = socket.getPeerX509Certificate();
  if (!cert) return { ok: false, reason: 'peer presented no certificate' };
  const id = spiffeIdOf(cert);
  if (!id) return { ok: false, reason: 'peer certificate does not have exactly one SPIFFE URI SAN' };
  return matchSpiffeId(id, expected);
}

/** Key, certificate chain and trust bundle of a workload secret, for tls.createSecureContext / setSecureContext. */
export function secureContextOptions(secret: WorkloadSecret): SecureContextOptions {
  return { key: secret.privateKeyPem, cert: secret.certChainPem, ca: secret.rootCertPem, minVersion: 'TLSv1.2' };
}

/** tls.createServer options for an mTLS server: a client certificate chained to the trust bundle is required. */
export function mtlsServerOptions(secret: WorkloadSecret): SecureContextOptions & { requestCert: true; rejectUnauthorized: true } {
  return { ...secureContextOptions(secret), requestCert: true, rejectUnauthorized: true };
}

/**
 * tls.connect options for an mTLS client: presents the workload certificate and accepts the server
 * only if its chain verifies and its SPIFFE ID matches `expected` (replacing hostname checks).
 */
export function mtlsClientOptions(
  secret: WorkloadSecret,
  expected: SpiffeMatcher,
): SecureContextOptions & { rejectUnauthorized: true; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined } {
  return {
    ...secureContextOptions(secret),
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => {
      const uris = parseSubjectAltNames(cert.subjectaltname).filter((e) => e.type === 'URI');
      if (uris.length !== 1) return new Error(`server certificate has ${uris.length} URI SANs; expected one SPIFFE ID`);
      const result = matchSpiffeId(uris[0]!.value, expected);
      return result.ok ? undefined : new Error(result.reason);
    },
  };
}

/**
 * Keeps a TLS server's certificate current: every new secret from `source` replaces the server's
 * secure context. Connections already open keep the context they were established with.
 * Returns the unsubscribe function.
 */
export function followSecrets(server: Server, source: SecretSource): () => void {
  return source.subscribe((secret) => server.setSecureContext(secureContextOptions(secret)));
}
