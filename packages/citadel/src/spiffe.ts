// SPIFFE identities as Istio uses them: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
import { X509Certificate } from 'node:crypto';
import { spiffeId as formatSpiffeId } from '@weft/model';

export const defaultTrustDomain = 'cluster.local';

export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// Namespaces are DNS-1123 labels; service accounts and trust domains DNS-1123 subdomains, as Kubernetes requires.
const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const domain = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function spiffeId(identity: WorkloadIdentity): string {
  const { trustDomain, namespace, serviceAccount } = identity;
  if (!domain.test(trustDomain)) throw new Error(`invalid trust domain ${JSON.stringify(trustDomain)}`);
  if (!label.test(namespace)) throw new Error(`invalid namespace ${JSON.stringify(namespace)}`);
  if (!domain.test(serviceAccount)) throw new Error(`invalid service account ${JSON.stringify(serviceAccount)}`);
  return formatSpiffeId(trustDomain, namespace, serviceAccount);
}

/** Parses an Istio workload SPIFFE ID; undefined when `uri` is not one. */
export function parseSpiffeId(uri: string): WorkloadIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  const [, trustDomain, namespace, serviceAccount] = m as unknown as [string, string, string, string];
  if (!domain.test(trustDomain) || !label.test(namespace) || !domain.test(serviceAccount)) return undefined;
  return { trustDomain, namespace, serviceAccount };
}

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
