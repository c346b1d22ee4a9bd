// Bootstrap tokens: how a workload proves its identity on its first certificate request, before it
// holds a certificate. A compact JWS (RS256), signed with the CA's signing key, so any CA instance
// holding that key accepts it and no extra secret needs persisting:
//   header {"alg":"RS256","typ":"JWT"}, claims {"iss","sub": SPIFFE ID,"aud":"istio-ca","iat","exp","jti"}.
import { createPublicKey, type KeyObject, randomUUID, sign, verify } from 'node:crypto';

export const bootstrapTokenIssuer = 'weft-citadel';
/** Istio's CA audience. */
export const bootstrapTokenAudience = 'istio-ca';

export interface BootstrapClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

const b64 = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export function signBootstrapToken(subject: string, ttlSeconds: number, key: KeyObject, nowMs = Date.now()): string {
  if (!(ttlSeconds > 0)) throw new RangeError('token TTL must be positive');
  const iat = Math.floor(nowMs / 1000);
  const claims: BootstrapClaims = { iss: bootstrapTokenIssuer, sub: subject, aud: bootstrapTokenAudience, iat, exp: iat + Math.ceil(ttlSeconds), jti: randomUUID() };
  const signingInput = `${b64(JSON.stringify({ alg: 'RS256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
  return `${signingInput}.${b64(sign('sha256', Buffer.from(signingInput), key))}`;
}

/**
 * The claims of a compact JWS, not verified: only for choosing which check a token goes to (a
 * bootstrap token, or the platform's). Undefined when it is not a JWS with a JSON object payload.
 */
export function unverifiedClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Checks signature, issuer, audience and expiry; returns the claims or throws TokenError. */
export function verifyBootstrapToken(token: string, key: KeyObject, nowMs = Date.now()): BootstrapClaims {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('token is not a compact JWS');
  const [h, c, s] = parts as [string, string, string];
  let header: unknown;
  let claims: Partial<BootstrapClaims>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Partial<BootstrapClaims>;
  } catch {
    throw new TokenError('token is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || (header as { alg?: unknown }).alg !== 'RS256') throw new TokenError('token algorithm must be RS256');
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const signature = Buffer.from(s, 'base64url');
  // Only the canonical encoding is accepted, so a token has exactly one spelling.
  if (signature.toString('base64url') !== s || !verify('sha256', Buffer.from(`${h}.${c}`), publicKey, signature)) throw new TokenError('token signature is invalid');
  if (claims.iss !== bootstrapTokenIssuer) throw new TokenError('token issuer is wrong');
  if (claims.aud !== bootstrapTokenAudience) throw new TokenError('token audience is wrong');
  if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number' || typeof claims.iat !== 'number' || typeof claims.jti !== 'string') {
    throw new TokenError('token claims are incomplete');
  }
  if (claims.exp * 1000 <= nowMs) throw new TokenError('token has expired');
  return claims as BootstrapClaims;
}
