// RequestAuthentication -> the JWT filters of a workload's inbound (and a gateway's) HTTP chains,
// as Istio's authn policy applier builds them (pilot/pkg/security/authn/policy_applier.go,
// convertToEnvoyJwtConfig):
// - `envoy.filters.http.jwt_authn`: one provider `origins-<i>` per JWT rule of every
//   RequestAuthentication that applies (rules merged, sorted by issuer), one rule on prefix `/`.
//   One provider: requires {provider OR allow_missing}; several: requires_any of {each provider,
//   requires_all of {provider_i OR allow_missing}}, so a token must be valid for some provider if
//   present, a missing token passes (an AuthorizationPolicy decides whether a principal is needed),
//   and providers that share a location (the Authorization header) still accept their own tokens.
//   The payload in metadata has `scope`, `permission` and the rule's spaceDelimitedClaims as lists.
// - Keys: inline `jwks` as written; `jwksUri` fetched by pilot (Istio's default, PILOT_JWT_ENABLE_REMOTE_JWKS
//   off) and inlined as local_jwks; before the first successful fetch, Istio's fake JWKS, so tokens
//   of that issuer fail rather than pass.
// - `istio_authn` right after it (Istio's authn filter, before 1.19): turns the verified payload
//   (jwt_authn's metadata under `payload`, as Istio names it; VirtualService `@request.auth.claims`
//   matches read it there too) into the `istio_authn` dynamic metadata RBAC matches
//   (`request.auth.principal` = iss/sub, audiences, presenter, claims). Its config travels as a
//   TypedStruct of Istio's FilterConfig (origins = the issuers, origin optional, principal from origin).
import { protoDurationOf } from '@weft/mesh';
import type { Config, JWTRule, RequestAuthenticationSpec } from '@weft/model';
import { encodeAny, type JwtAuthentication, type JwtProvider, type JwtRequirement, TypeUrl } from '@weft/xds';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';
import type { AuthzFilters } from './authz.ts';
import { type HttpFilter, struct } from './envoy.ts';

/** The filters, and the metadata key jwt_authn keeps a verified payload under (Istio's EnvoyJwtFilterPayload). */
export const JwtFilterNames = { jwt: 'envoy.filters.http.jwt_authn', authn: 'istio_authn', payload: 'payload' } as const;
/** The type of istio_authn's config (inside a TypedStruct). */
export const istioAuthnConfigType = 'type.googleapis.com/istio.envoy.config.filter.http.authn.v2alpha1.FilterConfig';

/**
 * Istio's model.FakeJwks role: a well-formed JWKS whose only key signs nothing anyone has, used while
 * a jwksUri has not been fetched (or cannot be), so its tokens get 401 instead of passing.
 */
export const fakeJwks = JSON.stringify({
  keys: [
    {
      kty: 'RSA',
      kid: 'weft-fake-jwks',
      alg: 'RS256',
      use: 'sig',
      e: 'AQAB',
      n: 'vj3WaRxZOGF2mKGKGDiQ222FBfyuBMCJwemF8st83ziL7v3ed7-4_DUKoK9P3a2d8jgvwWqXhCg59RKFgqmMuJVYKeYsL4frzd9W-5gv9FsM2wMxyFrbLV9hfXHgePytmczdATTTCpv812_USl79wmqYQkFGGF43JPGyaisGY8A0aI1Ime1Lv5tjCb3-gb_mCri_cIm8OIZWenNXtBDi10AYUuV38Txt-8tgZcOALoZiRWbYVso-7hN4wFOykQRvqdOo6Fbb-FAJ30bz0uQPJWSjXz8sBFcVjGLV1I1vv4Omtt7p8rWJZyKmIN-xO5fda8K6sU8EKWQsPqfh_wQTow',
    },
  ],
});

/** Istio's default JWKS fetch timeout (JWTRule.timeout). */
export const defaultJwksTimeoutMs = 5000;

/** Where a rule's keys come from: an inline JWKS, or the URI pilot fetches (the issuer's OpenID discovery when neither is set). */
export function jwksUriOf(rule: JWTRule): string | undefined {
  const uri = rule.jwksUri ?? rule.jwks_uri;
  if (uri) return uri;
  if (rule.jwks) return undefined;
  return rule.issuer ? `${rule.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration` : undefined;
}

/** The JWT rules of every policy, merged and sorted by issuer (stable), as Istio's newPolicyApplier. */
export function mergedJwtRules(policies: readonly Config<RequestAuthenticationSpec>[]): JWTRule[] {
  const rules = policies.flatMap((p) => (p.spec?.jwtRules ?? []).filter((r): r is JWTRule => r !== null && typeof r === 'object'));
  return rules.map((r, i) => [r, i] as const).sort(([a, i], [b, j]) => ((a.issuer ?? '') < (b.issuer ?? '') ? -1 : (a.issuer ?? '') > (b.issuer ?? '') ? 1 : i - j)).map(([r]) => r);
}

function timeoutMs(rule: JWTRule): number {
  const d = protoDurationOf(rule.timeout);
  if (!d) return defaultJwksTimeoutMs;
  return Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) || defaultJwksTimeoutMs;
}

function provider(rule: JWTRule, jwks: (uri: string, timeoutMs: number) => string | undefined): JwtProvider {
  const p: JwtProvider = {
    issuer: rule.issuer ?? '',
    audiences: rule.audiences ?? [],
    forward: rule.forwardOriginalToken ?? false,
    forward_payload_header: rule.outputPayloadToHeader ?? '',
    payload_in_metadata: JwtFilterNames.payload,
    normalize_payload_in_metadata: { space_delimited_claims: spaceDelimitedClaims(rule) },
    from_headers: (rule.fromHeaders ?? []).map((h) => ({ name: h.name, value_prefix: h.prefix ?? '' })),
    from_params: rule.fromParams ?? [],
    from_cookies: rule.fromCookies ?? [],
    claim_to_headers: (rule.outputClaimToHeaders ?? []).map((c) => ({ header_name: c.header, claim_name: c.claim })),
    // A claim copied to a header can be routed on: the route is chosen again after the filter.
    clear_route_cache: (rule.outputClaimToHeaders ?? []).length > 0,
  };
  const uri = jwksUriOf(rule);
  const keys = uri === undefined ? (rule.jwks ?? fakeJwks) : (jwks(uri, timeoutMs(rule)) ?? fakeJwks);
  p.local_jwks = { inline_string: keys };
  return p;
}

const providerName = (i: number) => `origins-${i}`;

/** Istio's buildSpaceDelimitedClaims: `scope` and `permission` always, plus the rule's own, sorted. */
export function spaceDelimitedClaims(rule: JWTRule): string[] {
  return [...new Set([...(rule.spaceDelimitedClaims ?? []), 'permission', 'scope'])].sort();
}

/** Istio's convertToEnvoyJwtConfig; undefined when there are no rules. */
export function jwtAuthentication(rules: readonly JWTRule[], jwks: (uri: string, timeoutMs: number) => string | undefined): JwtAuthentication | undefined {
  if (rules.length === 0) return undefined;
  const providers: Record<string, JwtProvider> = {};
  const innerAnd: JwtRequirement[] = [];
  const outerOr: JwtRequirement[] = [];
  rules.forEach((rule, i) => {
    const name = providerName(i);
    providers[name] = provider(rule, jwks);
    innerAnd.push({ requires_any: { requirements: [{ provider_name: name }, { allow_missing: {} }] } });
    outerOr.push({ provider_name: name });
  });
  const requires: JwtRequirement = innerAnd.length === 1 ? innerAnd[0]! : { requires_any: { requirements: [...outerOr, { requires_all: { requirements: innerAnd } }] } };
  return { rules: [{ match: { prefix: '/' }, requires }], providers, bypass_cors_preflight: true };
}

/** Istio's authn FilterConfig for the rules: the issuers as origins, optional, principal from the origin. */
export function istioAuthnConfig(rules: readonly JWTRule[]): Record<string, unknown> {
  return {
    policy: {
      origins: rules.map((r) => ({ jwt: { issuer: r.issuer ?? '' } })),
      origin_is_optional: true,
      principal_binding: 'USE_ORIGIN',
    },
    skip_validate_trust_domain: true,
  };
}

/** The JWT filters for a list of policies (no policies: none). */
export function buildJwtFilters(policies: readonly Config<RequestAuthenticationSpec>[], jwks: (uri: string, timeoutMs: number) => string | undefined): HttpFilter[] {
  const rules = mergedJwtRules(policies);
  const config = jwtAuthentication(rules, jwks);
  if (!config) return [];
  return [
    { name: JwtFilterNames.jwt, typed_config: encodeAny(TypeUrl.JwtAuthentication, config) },
    { name: JwtFilterNames.authn, typed_config: encodeAny(TypeUrl.TypedStruct, { type_url: istioAuthnConfigType, value: struct(istioAuthnConfig(rules)) }) },
  ];
}

const cache = new WeakMap<PushContext, WeakMap<MeshProxy, readonly HttpFilter[]>>();

/** The JWT filters of a workload's (or gateway's) HTTP chains; they go before RBAC. */
export function jwtFilters(push: PushContext, proxy: MeshProxy): readonly HttpFilter[] {
  let perProxy = cache.get(push);
  if (!perProxy) {
    perProxy = new WeakMap();
    cache.set(push, perProxy);
  }
  let out = perProxy.get(proxy);
  if (!out) {
    out = Object.freeze(buildJwtFilters(push.requestAuthentications(proxy), (uri, t) => push.jwks(uri, t)));
    perProxy.set(proxy, out);
  }
  return out;
}

/** The authorization filters with the JWT filters in front of the HTTP ones: jwt_authn, istio_authn, then RBAC, as Istio orders them. */
export function withJwtFilters(authz: AuthzFilters, jwt: readonly HttpFilter[]): AuthzFilters {
  if (jwt.length === 0) return authz;
  return { http: [...jwt, ...authz.http], tcp: authz.tcp };
}
