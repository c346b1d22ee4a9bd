// IP address literals, without node:net so that the vocabulary runs anywhere.

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An IPv4 or IPv6 address literal (no brackets, no zone), as Go's netip.ParseAddr reads the common forms. */
export function isIpAddress(s: string): boolean {
  if (ipv4.test(s)) return true;
  if (!s.includes(':') || /[^0-9a-fA-F:.]/.test(s)) return false;
  try {
    // WHATWG URL parsing is the IPv6 grammar of RFC 4291 with an embedded IPv4 tail.
    return new URL(`http://[${s}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}
