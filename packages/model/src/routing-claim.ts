// Istio's JWT claim routing header (pkg/jwt/routing.go, ToRoutingClaim): a VirtualService header
// match on `@request.auth.claims.<a>.<b>` or `@request.auth.claims[<a>][<b>]` matches the verified
// JWT's claim a.b, not a header. Galley accepts the name, pilot turns it into a metadata matcher.

const prefix = '@request.auth.claims';

/** The claim path a routing header names (`['group', 'id']`), or undefined for any other header name. */
export function routingClaim(headerName: string): string[] | undefined {
  if (!headerName.toLowerCase().startsWith(prefix)) return undefined;
  const name = headerName.slice(prefix.length);
  if (name.startsWith('.') && name.length > 1) return name.slice(1).split('.');
  if (name.startsWith('[') && name.endsWith(']') && name.length > 2) return name.slice(1, -1).split('][');
  return undefined;
}
