// Small readings of a peer that several parts need: an IPv4 address without Node's IPv4-mapped
// IPv6 prefix, the entries of a certificate's subjectAltName as Node prints it, and a connection's
// client certificate parsed once.
import { X509Certificate } from 'node:crypto';
import type { DownstreamConnection } from './filters.ts';

/** `::ffff:10.0.0.1` -> `10.0.0.1`; '' for none. */
export function unmappedIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

/** Node's subjectaltname text (`URI:spiffe://…, DNS:a.b, IP Address:1.2.3.4`) as type and value pairs. */
export function sanEntries(text: string | undefined): { type: string; value: string }[] {
  if (!text) return [];
  return text.split(/,\s*/).map((entry) => {
    const colon = entry.indexOf(':');
    return { type: entry.slice(0, colon), value: entry.slice(colon + 1) };
  });
}

/** The first URI SAN (the SPIFFE identity of a mesh certificate), or undefined. */
export function firstUriSan(text: string | undefined): string | undefined {
  if (!text) return undefined;
  for (const part of text.split(', ')) if (part.startsWith('URI:')) return part.slice(4);
  return undefined;
}

/** The peer certificate of a connection, parsed once: its SANs by kind and its subject as Node prints it. */
export interface PeerCertificateNames {
  cert: X509Certificate;
  uris: readonly string[];
  dns: readonly string[];
}

const parsed = new WeakMap<DownstreamConnection, PeerCertificateNames | null>();

/** The connection's verified client certificate, parsed on first use and kept per connection (RBAC and XFCC both read it); undefined without one or when it does not parse. */
export function peerCertificateNames(c: DownstreamConnection): PeerCertificateNames | undefined {
  let n = parsed.get(c);
  if (n === undefined) {
    n = null;
    if (c.peerCertificate) {
      try {
        const cert = new X509Certificate(c.peerCertificate);
        const sans = sanEntries(cert.subjectAltName);
        n = { cert, uris: sans.filter((e) => e.type === 'URI').map((e) => e.value), dns: sans.filter((e) => e.type === 'DNS').map((e) => e.value) };
      } catch {
        // Unreadable: the caller keeps what the TLS layer told it.
      }
    }
    parsed.set(c, n);
  }
  return n ?? undefined;
}
