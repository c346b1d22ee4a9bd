// productpage's session: a signed cookie named `session` holding the signed-in user. The key is
// fixed (overridable), so every productpage instance reads the cookies of the others.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const defaultSessionSecret = 'weft-bookinfo-productpage';

export interface Session {
  user?: string;
}

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function mac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}

export function encodeSession(s: Session, secret: string): string {
  const payload = b64(JSON.stringify(s));
  return `${payload}.${b64(mac(secret, payload))}`;
}

/** The session in a `session` cookie value; an empty one when missing, forged or malformed. */
export function decodeSession(value: string | undefined, secret: string): Session {
  if (!value) return {};
  const dot = value.lastIndexOf('.');
  if (dot <= 0) return {};
  const payload = value.slice(0, dot);
  const given = Buffer.from(value.slice(dot + 1), 'base64url');
  const want = mac(secret, payload);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as Session).user === 'string') return { user: (parsed as Session).user! };
  } catch {
    // not a session of ours
  }
  return {};
}

/** The value of cookie `name` in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
