// SPIFFE identities as Istio uses them: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
import { X509Certificate } from 'node:crypto';
import { spiffeId as formatSpiffeId, parseSpiffeId, type SpiffeIdentity, spiffeIdentityProblem } from '@weft/model';

export const defaultTrustDomain = 'cluster.local';

export type WorkloadIdentity = SpiffeIdentity;

/** The SPIFFE ID of `identity`; throws when a part is not a valid name. */
export function spiffeId(identity: WorkloadIdentity): string {
  const problem = spiffeIdentityProblem(identity);
  if (problem) throw new Error(problem);
  return formatSpiffeId(identity.trustDomain, identity.namespace, identity.serviceAccount);
}

// The parser lives in @weft/model (pilot checks xDS clients' identities with it too).
export { parseSpiffeId };

/**
 * The entries of a subjectAltName string as Node prints it (`X509Certificate.subjectAltName`,
 * `PeerCertificate.subjectaltname`): `URI:spiffe://..., DNS:a, IP Address:127.0.0.1`. Values Node
 * had to escape are JSON-quoted.
 */
export function parseSubjectAltNames(text: string | undefined): Array<{ type: string; value: string }> {
  if (!text) return [];
  const out: Array<{ type: string; value: string }> = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      next = text.indexOf(', ', j);
    } else {
      next = text.indexOf(', ', colon);
      value = text.slice(colon + 1, next < 0 ? undefined : next);
    }
    out.push({ type, value });
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** The URI SANs of a certificate (PEM, DER or parsed). */
export function uriSans(cert: X509Certificate | string | Buffer): string[] {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return parseSubjectAltNames(x.subjectAltName)
    .filter((e) => e.type === 'URI')
    .map((e) => e.value);
}

/** The SPIFFE ID of a workload certificate: its one URI SAN. Undefined when it has none, several, or one that is not a SPIFFE ID. */
export function spiffeIdOf(cert: X509Certificate | string | Buffer): string | undefined {
  const uris = uriSans(cert);
  return uris.length === 1 && uris[0]!.startsWith('spiffe://') ? uris[0] : undefined;
}
