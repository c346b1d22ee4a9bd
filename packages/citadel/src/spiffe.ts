// A certificate's SPIFFE identity (the format and its parsing are @weft/mesh's).
import { X509Certificate } from 'node:crypto';
import { type SpiffeIdentity, spiffeId, spiffeIdentityProblem, spiffeIdOfSans, uriSans as uriSansOfText } from '@weft/mesh';

export type WorkloadIdentity = SpiffeIdentity;

/** The SPIFFE ID of `identity`; throws when a part is not a valid name (what the CA signs must be). */
export function checkedSpiffeId(identity: WorkloadIdentity): string {
  const problem = spiffeIdentityProblem(identity);
  if (problem) throw new Error(problem);
  return spiffeId(identity.trustDomain, identity.namespace, identity.serviceAccount);
}

/** The URI SANs of a certificate (PEM, DER or parsed). */
export function uriSans(cert: X509Certificate | string | Buffer): string[] {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return uriSansOfText(x.subjectAltName);
}

/** The SPIFFE ID of a workload certificate: its one URI SAN. Undefined when it has none, several, or one that is not a SPIFFE ID. */
export function spiffeIdOf(cert: X509Certificate | string | Buffer): string | undefined {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return spiffeIdOfSans(x.subjectAltName);
}
