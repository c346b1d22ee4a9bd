// Small readings of a peer that several parts need: an IPv4 address without Node's IPv4-mapped
// IPv6 prefix, and a connection's client certificate parsed once (its subjectAltName read by @weft/mesh).
import { parseSubjectAltNames } from '@weft/mesh';
import { X509Certificate } from 'node:crypto';
import type { DownstreamConnection } from './filters.ts';

/** `::ffff:10.0.0.1` -> `10.0.0.1`; '' for none. */
export function unmappedIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
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
        const sans = parseSubjectAltNames(cert.subjectAltName);
        n = { cert, uris: sans.filter((e) => e.type === 'URI').map((e) => e.value), dns: sans.filter((e) => e.type === 'DNS').map((e) => e.value) };
      } catch {
        // Unreadable: the caller keeps what the TLS layer told it.
      }
    }
    parsed.set(c, n);
  }
  return n ?? undefined;
}
