// The control plane's TLS name. Istio's agents dial istiod.istio-system.svc:15012 and check the
// serving certificate against that name; weftd's serving certificate carries it too. A proxy given
// the control plane by IP address (local mode: 127.0.0.1:<port>) checks that name instead of the
// address: TLS has no server name for an IP (RFC 6066), and Node prints a deprecation warning, a
// line that is not JSON, into the proxy's log when asked to send one.

/** The name weftd's serving certificate carries first, and that Istio's agents verify. */
export const controlPlaneTlsName = 'istiod.istio-system.svc';

/** Host of `host:port`, `[v6]:port` or a bare host. */
function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colons = address.split(':').length - 1;
  return colons === 1 ? address.slice(0, address.lastIndexOf(':')) : address;
}

function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/**
 * The TLS name to verify the control plane at `address` against: `explicit` when given, else
 * {@link controlPlaneTlsName} when the address is an IP, else undefined (the host name itself).
 */
export function controlPlaneServerName(address: string, explicit?: string): string | undefined {
  if (explicit) return explicit;
  return isIpLiteral(hostOf(address)) ? controlPlaneTlsName : undefined;
}
