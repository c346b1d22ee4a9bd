// envoy.filters.http.jwt_authn (JwtAuthentication), as Envoy runs it for pilot's RequestAuthentications,
// with `jose` for the JOSE parts (signature verification against a JWKS).
//
// Per request: the first rule whose match fits the path names a requirement; the requirement tree
// (provider, provider with audiences, requires_any, requires_all, allow_missing,
// allow_missing_or_failed) is evaluated with each (provider, token) verified at most once. A
// provider looks for its token where it was told (from_headers with a value prefix, from_params,
// from_cookies; none: `Authorization: Bearer` and `access_token`), then checks, in Envoy's order:
// the JWT's form, its issuer, exp/nbf (clock skew 60 s by default), audiences, and the signature
// against its local JWKS (kid and alg). Envoy's status strings are the 401 bodies ("Jwt is expired",
// "Jwt verification fails", ...), 403 for "Audiences in Jwt are not allowed", with
// `www-authenticate: Bearer realm="<url>"` and details `jwt_authn_access_denied{<status>}`.
// A verified token: its payload goes to dynamic metadata under `payload_in_metadata` (the claims
// `normalize_payload_in_metadata` names split at spaces into lists), base64url to
// `forward_payload_header`, claims to `claim_to_headers`, and unless `forward` the header it came in
// is removed. Headers the filter writes are removed from every incoming request first, so a client
// cannot pose as a verified one by sending them itself.
//
// Deviations, on purpose: a token whose issuer no provider has is a failure ("Jwt issuer is not
// configured") under allow_missing too; keys only inline (`local_jwks`: pilot fetches jwksUris, as
// istiod does by default); `remote_jwks` and route matches other than prefix/path are refused (NACK).
// Bounded cost: a token longer than 16 KiB is refused before parsing, at most 8 values per location
// are looked at, and JWKS parsing happens once per listener version, not per request.
import { Buffer } from 'node:buffer';
import { type createLocalJWKSet, compactVerify, createLocalJWKSet as localJwks, decodeJwt, decodeProtectedHeader, errors as joseErrors, type JWTPayload } from 'jose';
import { decodeAny, type JwtAuthentication__Output, type JwtProvider__Output, type JwtRequirement__Output, TypeUrl } from '@weft/xds';
import type { FilterHeaders, FilterLocalReply, HttpFilter, HttpFilterContext, HttpFilterFactory, HttpStreamHooks } from '../core/filters.ts';

export const jwtAuthnFilterName = 'envoy.filters.http.jwt_authn';
/** Tokens longer than this are refused without parsing. */
export const maxTokenBytes = 16 * 1024;
const maxValuesPerLocation = 8;
const defaultClockSkewSeconds = 60;

/** Envoy's jwt_verify_lib status strings (the 401 bodies). */
export const JwtStatus = {
  missing: 'Jwt is missing',
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  badFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  badHeader: 'Jwt header is an invalid JSON',
  badPayload: 'Jwt payload is an invalid JSON',
  unknownIssuer: 'Jwt issuer is not configured',
  audience: 'Audiences in Jwt are not allowed',
  verification: 'Jwt verification fails',
  noKey: "Jwks doesn't have key to match kid or alg from Jwt",
  tooLarge: 'Jwt is too large',
} as const;

type Status = 'ok' | (typeof JwtStatus)[keyof typeof JwtStatus];

interface Location {
  kind: 'header' | 'param' | 'cookie';
  name: string;
  prefix: string;
}

interface Provider {
  name: string;
  issuer: string;
  audiences: readonly string[];
  forward: boolean;
  payloadHeader: string;
  padPayload: boolean;
  payloadInMetadata: string;
  claimToHeaders: readonly { header: string; claim: string }[];
  /** Claims whose string value goes into metadata as a list of its space-separated words (`scope`). */
  spaceDelimited: readonly string[];
  locations: readonly Location[];
  keys: ReturnType<typeof createLocalJWKSet>;
  clockSkew: number;
}

type Requirement =
  | { kind: 'provider'; provider: Provider; audiences: readonly string[] | undefined }
  | { kind: 'any' | 'all'; list: readonly Requirement[] }
  | { kind: 'allow_missing' | 'allow_missing_or_failed' };

interface Rule {
  prefix?: string;
  path?: string;
  requirement: Requirement | undefined;
}

interface Token {
  value: string;
  location: Location;
}

function lower(name: string): string {
  return name.toLowerCase();
}

function compileProvider(name: string, p: JwtProvider__Output): Provider {
  if (p.jwks_source_specifier !== 'local_jwks' || !p.local_jwks) throw new Error(`provider ${name}: only local_jwks is supported (pilot inlines the keys of jwksUri)`);
  const ds = p.local_jwks;
  const text = ds.specifier === 'inline_string' ? ds.inline_string : ds.specifier === 'inline_bytes' ? Buffer.from(ds.inline_bytes ?? []).toString('utf8') : undefined;
  if (text === undefined) throw new Error(`provider ${name}: local_jwks must be inline_string or inline_bytes`);
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch (err) {
    throw new Error(`provider ${name}: local_jwks is not JSON (${(err as Error).message})`);
  }
  if (!jwks || typeof jwks !== 'object' || !Array.isArray((jwks as { keys?: unknown }).keys)) throw new Error(`provider ${name}: local_jwks has no "keys" list`);
  const locations: Location[] = [
    ...p.from_headers.map((h) => ({ kind: 'header' as const, name: lower(h.name), prefix: h.value_prefix })),
    ...p.from_params.map((n) => ({ kind: 'param' as const, name: n, prefix: '' })),
    ...p.from_cookies.map((n) => ({ kind: 'cookie' as const, name: n, prefix: '' })),
  ];
  if (locations.length === 0) locations.push({ kind: 'header', name: 'authorization', prefix: 'Bearer ' }, { kind: 'param', name: 'access_token', prefix: '' });
  return {
    name,
    issuer: p.issuer,
    audiences: p.audiences,
    forward: p.forward,
    payloadHeader: lower(p.forward_payload_header),
    padPayload: p.pad_forward_payload_header,
    payloadInMetadata: p.payload_in_metadata,
    claimToHeaders: p.claim_to_headers.map((c) => ({ header: lower(c.header_name), claim: c.claim_name })),
    spaceDelimited: p.normalize_payload_in_metadata?.space_delimited_claims ?? [],
    locations,
    keys: localJwks(jwks as Parameters<typeof localJwks>[0]),
    clockSkew: p.clock_skew_seconds || defaultClockSkewSeconds,
  };
}

function compileRequirement(r: JwtRequirement__Output | null | undefined, providers: ReadonlyMap<string, Provider>): Requirement | undefined {
  if (!r) return undefined;
  const provider = (name: string) => {
    const p = providers.get(name);
    if (!p) throw new Error(`requirement names provider ${JSON.stringify(name)}, which is not configured`);
    return p;
  };
  switch (r.requires_type) {
    case 'provider_name':
      return { kind: 'provider', provider: provider(r.provider_name ?? ''), audiences: undefined };
    case 'provider_and_audiences':
      return { kind: 'provider', provider: provider(r.provider_and_audiences?.provider_name ?? ''), audiences: r.provider_and_audiences?.audiences ?? [] };
    case 'requires_any':
      return { kind: 'any', list: (r.requires_any?.requirements ?? []).map((x) => compileRequirement(x, providers)!).filter(Boolean) };
    case 'requires_all':
      return { kind: 'all', list: (r.requires_all?.requirements ?? []).map((x) => compileRequirement(x, providers)!).filter(Boolean) };
    case 'allow_missing':
      return { kind: 'allow_missing' };
    case 'allow_missing_or_failed':
      return { kind: 'allow_missing_or_failed' };
    default:
      return undefined;
  }
}

/** The compiled filter config of one chain. */
export interface CompiledJwtAuthn {
  readonly providers: readonly Provider[];
  readonly rules: readonly Rule[];
  readonly bypassCorsPreflight: boolean;
  /** Headers the filter writes (payload and claims), removed from every request first. */
  readonly written: readonly string[];
}

export function compileJwtAuthn(config: JwtAuthentication__Output): CompiledJwtAuthn {
  const providers = new Map<string, Provider>();
  for (const [name, p] of Object.entries(config.providers ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) providers.set(name, compileProvider(name, p));
  const named = new Map<string, Requirement | undefined>();
  for (const [name, r] of Object.entries(config.requirement_map ?? {})) named.set(name, compileRequirement(r, providers));
  const rules: Rule[] = (config.rules ?? []).map((rule, i) => {
    const m = rule.match;
    if (!m || (m.path_specifier !== 'prefix' && m.path_specifier !== 'path')) throw new Error(`rules[${i}]: only prefix and path matches are supported`);
    if ((m.headers ?? []).length > 0 || (m.query_parameters ?? []).length > 0) throw new Error(`rules[${i}]: header and query parameter matches are not supported`);
    let requirement: Requirement | undefined;
    if (rule.requirement_type === 'requires') requirement = compileRequirement(rule.requires, providers);
    else if (rule.requirement_type === 'requirement_name') {
      if (!named.has(rule.requirement_name ?? '')) throw new Error(`rules[${i}]: requirement ${JSON.stringify(rule.requirement_name)} is not in requirement_map`);
      requirement = named.get(rule.requirement_name ?? '');
    }
    return m.path_specifier === 'prefix' ? { prefix: m.prefix ?? '', requirement } : { path: m.path ?? '', requirement };
  });
  if (config.filter_state_rules) throw new Error('filter_state_rules are not supported');
  const written = new Set<string>();
  for (const p of providers.values()) {
    if (p.payloadHeader) written.add(p.payloadHeader);
    for (const c of p.claimToHeaders) written.add(c.header);
  }
  return { providers: [...providers.values()], rules, bypassCorsPreflight: config.bypass_cors_preflight, written: [...written] };
}

// ---------------------------------------------------------------- per request

function headerValues(headers: FilterHeaders, name: string): string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).slice(0, maxValuesPerLocation);
}

function queryParam(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(path.slice(q + 1)).get(name) ?? undefined;
}

function cookie(headers: FilterHeaders, name: string): string | undefined {
  for (const line of headerValues(headers, 'cookie')) {
    for (const part of line.split(';').slice(0, 64)) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}

function extract(ctx: HttpFilterContext, locations: readonly Location[]): Token[] {
  const out: Token[] = [];
  for (const location of locations) {
    if (location.kind === 'header') {
      for (const raw of headerValues(ctx.requestHeaders, location.name)) {
        if (location.prefix && !raw.startsWith(location.prefix)) continue;
        const value = raw.slice(location.prefix.length).trim();
        if (value) out.push({ value, location });
      }
    } else {
      const value = location.kind === 'param' ? queryParam(ctx.path, location.name) : cookie(ctx.requestHeaders, location.name);
      if (value) out.push({ value, location });
    }
  }
  return out;
}

/** Envoy's audience comparison: scheme and trailing slash do not count. */
function normalizeAudience(a: string): string {
  return a.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

function audiencesOf(payload: JWTPayload): string[] {
  const aud = payload.aud;
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((x): x is string => typeof x === 'string') : [];
}

interface Verified {
  status: Status;
  payload?: JWTPayload;
  /** The payload as it came in the token (base64url). */
  payloadB64?: string;
}

/** The checks before the signature, in Envoy's order; the payload when they pass. */
function precheck(token: string, issuer: string): Verified {
  if (token.length > maxTokenBytes) return { status: JwtStatus.tooLarge };
  const parts = token.split('.');
  if (parts.length !== 3) return { status: JwtStatus.badFormat };
  try {
    decodeProtectedHeader(token);
  } catch {
    return { status: JwtStatus.badHeader };
  }
  let payload: JWTPayload;
  try {
    payload = decodeJwt(token);
  } catch {
    return { status: JwtStatus.badPayload };
  }
  if (issuer && payload.iss !== issuer) return { status: JwtStatus.unknownIssuer };
  return { status: 'ok', payload, payloadB64: parts[1]! };
}

function timeStatus(payload: JWTPayload, skew: number): Status {
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.nbf === 'number' && payload.nbf > now + skew) return JwtStatus.notYetValid;
  if (typeof payload.exp === 'number' && payload.exp < now - skew) return JwtStatus.expired;
  return 'ok';
}

async function verifySignature(token: string, p: Provider): Promise<Status> {
  try {
    await compactVerify(token, p.keys);
    return 'ok';
  } catch (err) {
    if (err instanceof joseErrors.JWKSNoMatchingKey) return JwtStatus.noKey;
    return JwtStatus.verification;
  }
}

/** One request's evaluation: each (provider, token) verified once, side effects applied on success. */
class Evaluation {
  readonly #ctx: HttpFilterContext;
  readonly #cfg: CompiledJwtAuthn;
  readonly #tokens = new Map<Provider, Token[]>();
  readonly #results = new Map<string, Promise<Status>>();

  constructor(ctx: HttpFilterContext, cfg: CompiledJwtAuthn) {
    this.#ctx = ctx;
    this.#cfg = cfg;
    // Every token is read before any is removed (a verified token leaves the request unless forwarded).
    for (const p of cfg.providers) this.#tokens.set(p, extract(ctx, p.locations));
  }

  #tokensOf(p: Provider): Token[] {
    return this.#tokens.get(p) ?? [];
  }

  /** Verifies one token for one provider (once per request and audience list). */
  #verify(p: Provider, token: Token, audiences: readonly string[]): Promise<Status> {
    const key = `${p.name}\u0000${audiences.join('\u0000')}\u0000${token.value}`;
    let r = this.#results.get(key);
    if (!r) {
      r = this.#run(p, token, audiences);
      this.#results.set(key, r);
    }
    return r;
  }

  async #run(p: Provider, token: Token, audiences: readonly string[]): Promise<Status> {
    const pre = precheck(token.value, p.issuer);
    if (pre.status !== 'ok') return pre.status;
    const payload = pre.payload!;
    const time = timeStatus(payload, p.clockSkew);
    if (time !== 'ok') return time;
    if (audiences.length > 0) {
      const want = new Set(audiences.map(normalizeAudience));
      if (!audiencesOf(payload).some((a) => want.has(normalizeAudience(a)))) return JwtStatus.audience;
    }
    const sig = await verifySignature(token.value, p);
    if (sig !== 'ok') return sig;
    this.#accept(p, token, payload, pre.payloadB64!);
    return 'ok';
  }

  #accept(p: Provider, token: Token, payload: JWTPayload, payloadB64: string): void {
    const ctx = this.#ctx;
    if (p.payloadInMetadata && ctx.dynamicMetadata) {
      ctx.dynamicMetadata[jwtAuthnFilterName] ??= {};
      ctx.dynamicMetadata[jwtAuthnFilterName][p.payloadInMetadata] = normalized(payload, p.spaceDelimited);
    }
    if (p.payloadHeader) ctx.requestHeaders[p.payloadHeader] = p.padPayload ? padBase64(payloadB64) : payloadB64;
    for (const c of p.claimToHeaders) {
      const v = claimValue(payload, c.claim);
      if (v !== undefined) ctx.requestHeaders[c.header] = v;
    }
    if (!p.forward && token.location.kind === 'header') delete ctx.requestHeaders[token.location.name];
  }

  /** A provider: its first token (Envoy verifies every token it finds; all must pass). */
  async #provider(p: Provider, audiences: readonly string[] | undefined): Promise<Status> {
    const tokens = this.#tokensOf(p);
    if (tokens.length === 0) return JwtStatus.missing;
    for (const t of tokens) {
      const s = await this.#verify(p, t, audiences ?? p.audiences);
      if (s !== 'ok') return s;
    }
    return 'ok';
  }

  /** allow_missing: every token any provider reads must verify with the provider of its issuer there; no token at all passes. */
  async #allowMissing(): Promise<Status> {
    const checked = new Set<string>();
    for (const p of this.#cfg.providers) {
      for (const t of this.#tokensOf(p)) {
        if (checked.has(t.value)) continue;
        checked.add(t.value);
        const pre = precheck(t.value, '');
        if (pre.status !== 'ok') return pre.status;
        const owner = this.#cfg.providers.find((q) => q.issuer === pre.payload!.iss && sameLocation(q, t.location));
        if (!owner) return JwtStatus.unknownIssuer;
        const s = await this.#verify(owner, t, owner.audiences);
        if (s !== 'ok') return s;
      }
    }
    return 'ok';
  }

  async evaluate(r: Requirement): Promise<Status> {
    switch (r.kind) {
      case 'provider':
        return this.#provider(r.provider, r.audiences);
      case 'allow_missing':
        return this.#allowMissing();
      case 'allow_missing_or_failed':
        // Tokens are still verified (and their payloads kept); failures do not count.
        await this.#allowMissing();
        return 'ok';
      case 'all': {
        for (const x of r.list) {
          const s = await this.evaluate(x);
          if (s !== 'ok') return s;
        }
        return 'ok';
      }
      case 'any': {
        const failures: Status[] = [];
        for (const x of r.list) {
          const s = await this.evaluate(x);
          if (s === 'ok') return 'ok';
          failures.push(s);
        }
        // The failure that says the most: a verification error, else an unknown issuer, else missing.
        return failures.find((s) => s !== JwtStatus.missing && s !== JwtStatus.unknownIssuer) ?? failures.find((s) => s === JwtStatus.unknownIssuer) ?? JwtStatus.missing;
      }
    }
  }
}

function sameLocation(p: Provider, l: Location): boolean {
  return p.locations.some((x) => x.kind === l.kind && x.name === l.name && x.prefix === l.prefix);
}

/** The payload as metadata holds it: the space-delimited claims (normalize_payload_in_metadata) as lists of their words. */
function normalized(payload: JWTPayload, claims: readonly string[]): JWTPayload {
  let out: JWTPayload | undefined;
  for (const c of claims) {
    const v = payload[c];
    if (typeof v !== 'string') continue;
    out ??= { ...payload };
    out[c] = v.split(' ').filter((w) => w !== '');
  }
  return out ?? payload;
}

function padBase64(b64url: string): string {
  const pad = (4 - (b64url.length % 4)) % 4;
  return b64url + '='.repeat(pad);
}

/** A claim (dotted path for nested ones) as a header value: strings as they are, numbers and booleans printed, lists of them joined by commas. */
export function claimValue(payload: JWTPayload, claim: string): string | undefined {
  let v: unknown = payload[claim];
  if (v === undefined && claim.includes('.')) {
    v = payload;
    for (const k of claim.split('.')) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
  }
  const scalar = (x: unknown) => (typeof x === 'string' ? x : typeof x === 'number' || typeof x === 'boolean' ? String(x) : undefined);
  if (Array.isArray(v)) {
    const parts = v.map(scalar).filter((x): x is string => x !== undefined);
    return parts.length > 0 ? parts.join(',') : undefined;
  }
  return scalar(v);
}

function matches(rule: Rule, path: string): boolean {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return rule.prefix !== undefined ? p.startsWith(rule.prefix) : p === rule.path;
}

/** The local reply for a failed requirement, as Envoy's filter sends it. */
export function jwtDenied(status: Status, ctx: HttpFilterContext): FilterLocalReply {
  const forbidden = status === JwtStatus.audience;
  const q = ctx.path.indexOf('?');
  const realm = `${ctx.scheme}://${ctx.authority}${q < 0 ? ctx.path : ctx.path.slice(0, q)}`;
  const reply: FilterLocalReply = { status: forbidden ? 403 : 401, body: status, details: `jwt_authn_access_denied{${status.replaceAll(' ', '_')}}` };
  if (!forbidden) reply.headers = { 'www-authenticate': `Bearer realm="${realm}"${status === JwtStatus.missing ? '' : ', error="invalid_token"'}` };
  return reply;
}

export class JwtAuthnFilter implements HttpFilter {
  readonly name = jwtAuthnFilterName;
  readonly config: CompiledJwtAuthn;
  readonly #hooks: HttpStreamHooks;

  constructor(config: CompiledJwtAuthn) {
    this.config = config;
    this.#hooks = { onRequest: (ctx) => this.#onRequest(ctx) };
  }

  begin(): HttpStreamHooks {
    return this.#hooks;
  }

  #onRequest(ctx: HttpFilterContext): Promise<FilterLocalReply | undefined> | undefined {
    const cfg = this.config;
    for (const h of cfg.written) delete ctx.requestHeaders[h];
    if (cfg.bypassCorsPreflight && ctx.method === 'OPTIONS' && ctx.requestHeaders.origin !== undefined && ctx.requestHeaders['access-control-request-method'] !== undefined) return undefined;
    const rule = cfg.rules.find((r) => matches(r, ctx.path));
    if (!rule?.requirement) return undefined;
    const requirement = rule.requirement;
    return new Evaluation(ctx, cfg).evaluate(requirement).then((status) => (status === 'ok' ? undefined : jwtDenied(status, ctx)));
  }
}

/** `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication` -> the filter. */
export const jwtAuthnFilterFactory: HttpFilterFactory = (config) => new JwtAuthnFilter(compileJwtAuthn(decodeAny(config, TypeUrl.JwtAuthentication)));
