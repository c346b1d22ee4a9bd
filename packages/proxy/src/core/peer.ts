// Small readings of a peer that several parts need: an IPv4 address without Node's IPv4-mapped
// IPv6 prefix, and the entries of a certificate's subjectAltName as Node prints it.

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
