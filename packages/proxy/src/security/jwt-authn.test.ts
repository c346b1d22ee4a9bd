import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { encodeAny, type JwtAuthentication, type JwtProvider, type RbacPolicies, TypeUrl } from '@weft/xds';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DynamicMetadata, FilterHeaders, FilterLocalReply, FilterSite, HttpFilter, HttpFilterContext } from '../core/filters.ts';
import { testConnection } from '../core/test-support.ts';
import type { RequestRecord } from '../core/types.ts';
import { istioAuthnConfigType, istioAuthnFilterFactory } from './istio-authn.ts';
import { JwtStatus, jwtAuthnFilterFactory, maxTokenBytes } from './jwt-authn.ts';
import { rbacHttpFilterFactory } from './rbac-filter.ts';

const site: FilterSite = { where: 'test', listener: 'virtualInbound', direction: 'inbound' };
const issuer = 'testing@secure.istio.io';
const otherIssuer = 'https://other.example';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let key: Key;
let otherKey: Key;
let impostorKey: Key;
let jwks: { keys: JWK[] };
let otherJwks: { keys: JWK[] };

beforeAll(async () => {
  const a = await generateKeyPair('RS256');
  const b = await generateKeyPair('ES256');
  const c = await generateKeyPair('RS256');
  key = a.privateKey;
  otherKey = b.privateKey;
  impostorKey = c.privateKey;
  jwks = { keys: [{ ...(await exportJWK(a.publicKey)), kid: 'k1', alg: 'RS256' }] };
  otherJwks = { keys: [{ ...(await exportJWK(b.publicKey)), kid: 'k2', alg: 'ES256' }] };
});

async function token(claims: JWTPayload, o: { signer?: Key; alg?: string; kid?: string; exp?: number | string } = {}): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? 'RS256', kid: o.kid ?? 'k1' }).setIssuedAt();
  if (o.exp !== undefined) jwt.setExpirationTime(o.exp);
  return jwt.sign(o.signer ?? key);
}

function provider(o: Partial<JwtProvider> = {}): JwtProvider {
  return { issuer, payload_in_metadata: issuer, local_jwks: { inline_string: JSON.stringify(jwks) }, ...o };
}

/** Istio's requirement for one provider: {origins-0 OR allow_missing}. */
function single(p: JwtProvider): JwtAuthentication {
  return {
    providers: { 'origins-0': p },
    rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } } }],
    bypass_cors_preflight: true,
  };
}

function filter(config: JwtAuthentication): HttpFilter {
  return jwtAuthnFilterFactory(encodeAny(TypeUrl.JwtAuthentication, config) as never, site)!;
}

function ctx(headers: FilterHeaders, path = '/headers'): HttpFilterContext & { dynamicMetadata: DynamicMetadata } {
  return {
    connection: testConnection(),
    record: {} as RequestRecord,
    method: 'GET',
    authority: 'httpbin.foo:8000',
    path,
    scheme: 'http',
    requestHeaders: headers,
    routeName: undefined,
    upstreamCluster: undefined,
    dynamicMetadata: {},
  };
}

async function run(f: HttpFilter, c: HttpFilterContext): Promise<FilterLocalReply | undefined> {
  return (await f.begin(c)?.onRequest?.(c)) ?? undefined;
}

describe('envoy.filters.http.jwt_authn', () => {
  it('passes a valid token: payload in metadata, output headers set, the Authorization header removed (forward false)', async () => {
    const f = filter(single(provider({ forward_payload_header: 'x-jwt-payload', claim_to_headers: [{ header_name: 'x-jwt-group', claim_name: 'group' }, { header_name: 'x-jwt-nested', claim_name: 'org.team' }] })));
    const t = await token({ iss: issuer, sub: 'alice', group: 'admins', org: { team: 'blue' } }, { exp: '1h' });
    const c = ctx({ authorization: `Bearer ${t}` });
    expect(await run(f, c)).toBeUndefined();
    expect(c.requestHeaders.authorization).toBeUndefined();
    expect(c.requestHeaders['x-jwt-group']).toBe('admins');
    expect(c.requestHeaders['x-jwt-nested']).toBe('blue');
    expect(JSON.parse(Buffer.from(c.requestHeaders['x-jwt-payload'] as string, 'base64url').toString())).toMatchObject({ iss: issuer, sub: 'alice' });
    expect(c.dynamicMetadata['envoy.filters.http.jwt_authn']?.[issuer]).toMatchObject({ sub: 'alice', group: 'admins' });
  });

  it('puts the space-delimited claims into metadata as lists of their words (normalize_payload_in_metadata), the payload header unchanged', async () => {
    const f = filter(single(provider({ forward_payload_header: 'x-jwt-payload', normalize_payload_in_metadata: { space_delimited_claims: ['scope', 'roles'] } })));
    const c = ctx({ authorization: `Bearer ${await token({ iss: issuer, sub: 'alice', scope: 'read  write', roles: 'admin', other: 'a b' })}` });
    expect(await run(f, c)).toBeUndefined();
    expect(c.dynamicMetadata['envoy.filters.http.jwt_authn']?.[issuer]).toMatchObject({ scope: ['read', 'write'], roles: ['admin'], other: 'a b' });
    expect(JSON.parse(Buffer.from(c.requestHeaders['x-jwt-payload'] as string, 'base64url').toString())).toMatchObject({ scope: 'read  write' });
  });

  it('keeps the token with forward: true, and reads custom locations (header with prefix, query parameter)', async () => {
    const f = filter(single(provider({ forward: true, from_headers: [{ name: 'x-jwt', value_prefix: 'Token ' }], from_params: ['my_token'] })));
    const t = await token({ iss: issuer, sub: 'bob' });
    const c = ctx({ 'x-jwt': `Token ${t}` });
    expect(await run(f, c)).toBeUndefined();
    expect(c.requestHeaders['x-jwt']).toBe(`Token ${t}`);
    const q = ctx({}, `/get?my_token=${t}&x=1`);
    expect(await run(f, q)).toBeUndefined();
    expect(q.dynamicMetadata['envoy.filters.http.jwt_authn']?.[issuer]).toMatchObject({ sub: 'bob' });
    // Only the configured places count: the Authorization header is not one of them now.
    const bad = await token({ iss: issuer, sub: 'bob' }, { signer: impostorKey });
    expect(await run(f, ctx({ authorization: `Bearer ${bad}` }))).toBeUndefined();
  });

  it('lets a request without a token through (allow_missing) with nothing in metadata, and strips headers it would have written', async () => {
    const f = filter(single(provider({ forward_payload_header: 'x-jwt-payload', claim_to_headers: [{ header_name: 'x-jwt-group', claim_name: 'group' }] })));
    const c = ctx({ 'x-jwt-group': 'admins', 'x-jwt-payload': 'eyJzdWIiOiJyb290In0' });
    expect(await run(f, c)).toBeUndefined();
    expect(c.requestHeaders['x-jwt-group']).toBeUndefined();
    expect(c.requestHeaders['x-jwt-payload']).toBeUndefined();
    expect(c.dynamicMetadata['envoy.filters.http.jwt_authn']).toBeUndefined();
  });

  it("answers an invalid token with Envoy's status: expired, wrongly signed, no matching key, unknown issuer, malformed, too large (401), wrong audience (403)", async () => {
    const f = filter(single(provider({ audiences: ['bookinfo.com'] })));
    const ok = { iss: issuer, sub: 'alice', aud: 'bookinfo.com' };
    const cases: [string, string, number][] = [
      [await token(ok, { exp: Math.floor(Date.now() / 1000) - 120 }), JwtStatus.expired, 401],
      [await token(ok, { signer: impostorKey }), JwtStatus.verification, 401],
      [await token(ok, { signer: impostorKey, kid: 'unknown' }), JwtStatus.noKey, 401],
      [await token({ ...ok, iss: 'evil' }), JwtStatus.unknownIssuer, 401],
      ['not-a-jwt', JwtStatus.badFormat, 401],
      [`${'a'.repeat(maxTokenBytes)}.b.c`, JwtStatus.tooLarge, 401],
      [await token({ ...ok, aud: 'other.com' }), JwtStatus.audience, 403],
      [await token({ ...ok, nbf: Math.floor(Date.now() / 1000) + 3600 }), JwtStatus.notYetValid, 401],
    ];
    for (const [t, status, code] of cases) {
      const reply = await run(f, ctx({ authorization: `Bearer ${t}` }, '/headers?x=1'));
      expect({ status: reply?.status, body: reply?.body }).toEqual({ status: code, body: status });
      expect(reply?.details).toBe(`jwt_authn_access_denied{${status.replaceAll(' ', '_')}}`);
      if (code === 401) expect(reply?.headers?.['www-authenticate']).toBe('Bearer realm="http://httpbin.foo:8000/headers", error="invalid_token"');
    }
    // Within the 60 s clock skew an expired token still passes.
    expect(await run(f, ctx({ authorization: `Bearer ${await token(ok, { exp: Math.floor(Date.now() / 1000) - 30 })}` }))).toBeUndefined();
  });

  it("with several providers (Istio's requirement) accepts each issuer's token at the shared location and refuses one that fails its own", async () => {
    const p0 = provider();
    const p1 = provider({ issuer: otherIssuer, payload_in_metadata: otherIssuer, local_jwks: { inline_string: JSON.stringify(otherJwks) } });
    const name = (i: number) => `origins-${i}`;
    const inner = [0, 1].map((i) => ({ requires_any: { requirements: [{ provider_name: name(i) }, { allow_missing: {} }] } }));
    const f = filter({
      providers: { [name(0)]: p0, [name(1)]: p1 },
      rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: name(0) }, { provider_name: name(1) }, { requires_all: { requirements: inner } }] } } }],
    });
    const c0 = ctx({ authorization: `Bearer ${await token({ iss: issuer, sub: 'a' })}` });
    expect(await run(f, c0)).toBeUndefined();
    expect(Object.keys(c0.dynamicMetadata['envoy.filters.http.jwt_authn'] ?? {})).toEqual([issuer]);
    const c1 = ctx({ authorization: `Bearer ${await token({ iss: otherIssuer, sub: 'b' }, { signer: otherKey, alg: 'ES256', kid: 'k2' })}` });
    expect(await run(f, c1)).toBeUndefined();
    expect(Object.keys(c1.dynamicMetadata['envoy.filters.http.jwt_authn'] ?? {})).toEqual([otherIssuer]);
    expect(await run(f, ctx({}))).toBeUndefined();
    const bad = await run(f, ctx({ authorization: `Bearer ${await token({ iss: otherIssuer, sub: 'b' }, { signer: key, alg: 'RS256', kid: 'k2' })}` }));
    // Its own provider's key k2 is ES256: an RS256 token naming it matches no key.
    expect(bad?.status).toBe(401);
    expect(bad?.body).toBe(JwtStatus.noKey);
  });

  it('refuses what it cannot serve (NACK): remote_jwks, a JWKS that is not JSON, an unknown provider name', () => {
    expect(() => filter(single(provider({ local_jwks: undefined, remote_jwks: { http_uri: { uri: 'https://x/jwks', cluster: 'c', timeout: { seconds: 1 } } } })))).toThrow(/only local_jwks/);
    expect(() => filter(single(provider({ local_jwks: { inline_string: 'nope' } })))).toThrow(/not JSON/);
    expect(() => filter({ providers: { a: provider() }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'b' } }] })).toThrow(/not configured/);
  });
});

describe('istio_authn and RBAC on its metadata', () => {
  const authn = () =>
    istioAuthnFilterFactory(
      encodeAny(TypeUrl.TypedStruct, {
        type_url: istioAuthnConfigType,
        value: { fields: { policy: { structValue: { fields: { origins: { listValue: { values: [{ structValue: { fields: { jwt: { structValue: { fields: { issuer: { stringValue: issuer } } } } } } }] } } } } } } },
      }) as never,
      site,
    )!;

  function rbac(principals: NonNullable<RbacPolicies['policies']>[string]['principals']): HttpFilter {
    return rbacHttpFilterFactory(encodeAny(TypeUrl.HttpRbac, { rules: { action: 'ALLOW', policies: { p: { permissions: [{ any: true }], principals } } } }) as never, site)!;
  }

  it('writes request.auth.* from the verified payload, and RBAC matches requestPrincipals and claims on it', async () => {
    const jwt = filter(single(provider()));
    const a = authn();
    const requirePrincipal = rbac([{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { safe_regex: { regex: '.+' } } } } }]);
    const requireGroup = rbac([{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'group1' } } } } } }]);
    const t = await token({ iss: issuer, sub: 'alice', aud: ['bookinfo', 'x'], azp: 'web', groups: ['group1', 'group2'], scope: 'read write' });
    const c = ctx({ authorization: `Bearer ${t}` });
    expect(await run(jwt, c)).toBeUndefined();
    expect(await run(a, c)).toBeUndefined();
    expect(c.dynamicMetadata.istio_authn).toMatchObject({
      'request.auth.principal': `${issuer}/alice`,
      'request.auth.audiences': 'bookinfo',
      'request.auth.presenter': 'web',
      'request.auth.claims': { groups: ['group1', 'group2'], sub: ['alice'], scope: ['read write', 'read', 'write'] },
    });
    expect(await run(requirePrincipal, c)).toBeUndefined();
    expect(await run(requireGroup, c)).toBeUndefined();
    // Without a token: no principal, so the policy requiring one denies (403 from RBAC, not 401).
    const none = ctx({});
    expect(await run(jwt, none)).toBeUndefined();
    expect(await run(a, none)).toBeUndefined();
    expect(none.dynamicMetadata.istio_authn).toBeUndefined();
    expect((await run(requirePrincipal, none))?.status).toBe(403);
    const other = ctx({ authorization: `Bearer ${await token({ iss: issuer, sub: 'bob', groups: ['group2'] })}` });
    await run(jwt, other);
    await run(a, other);
    expect((await run(requireGroup, other))?.status).toBe(403);
  });
});
