// SPIFFE identities as Istio issues them (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)
// and the subjectAltName text Node prints for a certificate, where they are read from.

export const spiffePrefix = 'spiffe://';
export const defaultTrustDomain = 'cluster.local';

/** The parts of an Istio workload SPIFFE ID. */
export interface SpiffeIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** `spiffe://cluster.local/ns/default/sa/bookinfo-reviews`. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `${spiffePrefix}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

// Namespaces are DNS-1123 labels; service accounts and trust domains DNS-1123 subdomains, as Kubernetes requires.
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** What is wrong with the parts of a SPIFFE identity, or undefined when they are valid. */
export function spiffeIdentityProblem(identity: SpiffeIdentity): string | undefined {
  const { trustDomain, namespace, serviceAccount } = identity;
  if (!dnsSubdomain.test(trustDomain)) return `invalid trust domain ${JSON.stringify(trustDomain)}`;
  if (!dnsLabel.test(namespace)) return `invalid namespace ${JSON.stringify(namespace)}`;
  if (!dnsSubdomain.test(serviceAccount)) return `invalid service account ${JSON.stringify(serviceAccount)}`;
  return undefined;
}

/**
 * Parses `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` (Istio's spiffe.ParseIdentity:
 * exactly those five segments) whose parts are valid names; undefined otherwise.
 */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  if (!uri.startsWith(spiffePrefix)) return undefined;
  const parts = uri.slice(spiffePrefix.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const identity = { trustDomain: parts[0]!, namespace: parts[2]!, serviceAccount: parts[4]! };
  return spiffeIdentityProblem(identity) === undefined ? identity : undefined;
}

export interface SubjectAltName {
  /** `URI`, `DNS`, `IP Address`, `email`... as Node names them. */
  type: string;
  value: string;
}

/**
 * The entries of a subjectAltName as Node prints it (`X509Certificate.subjectAltName`,
 * `PeerCertificate.subjectaltname`): `URI:spiffe://…, DNS:a.b, IP Address:1.2.3.4`. A value Node
 * had to escape (one holding `, ` or a quote, e.g. `URI:"spiffe://x, URI:spiffe://y"`) is
 * JSON-quoted and read as one value: splitting at every comma would let a certificate smuggle
 * in a second identity.
 */
export function parseSubjectAltNames(text: string | undefined): SubjectAltName[] {
  if (!text) return [];
  const out: SubjectAltName[] = [];
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
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        // An unterminated quote is no entry: stop rather than guess where it ends.
        break;
      }
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

/** The URI SANs in subjectAltName text, in order. */
export function uriSans(text: string | undefined): string[] {
  return parseSubjectAltNames(text)
    .filter((e) => e.type === 'URI')
    .map((e) => e.value);
}

/** The first URI SAN (a mesh certificate's SPIFFE identity), or undefined. */
export function firstUriSan(text: string | undefined): string | undefined {
  return uriSans(text)[0];
}

/** The SPIFFE ID of a workload certificate's SANs: its one URI SAN. Undefined when it has none, several, or one that is not a SPIFFE ID. */
export function spiffeIdOfSans(text: string | undefined): string | undefined {
  const uris = uriSans(text);
  return uris.length === 1 && uris[0]!.startsWith(spiffePrefix) ? uris[0] : undefined;
}
