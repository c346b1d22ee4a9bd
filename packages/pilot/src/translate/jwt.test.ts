import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { defaultMeshConfig, type JwksSource, type PushContext } from '../core/types.ts';
import { buildPushContext } from '../push/context.ts';
import { ServiceEntryRegistry } from '../registry/service-entry.ts';
import { storeFrom } from '../registry/test-support.ts';
import { fakeJwks, istioAuthnConfigType } from './jwt.ts';
import { bookinfoPlatform, generate, must, networking, reviewsV1, router, typed } from './test-support.ts';

const LDS = TypeUrl.Listener;
type Chain = { filters: { name: string; typed_config?: unknown }[]; filter_chain_match?: { destination_port?: { value: number } | null; transport_protocol?: string } | null };

const jwks = JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', kid: 'k1', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] });

function requestAuthentication(name: string, spec: string, namespace = 'default'): string {
  return `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ${name}, namespace: ${namespace}}
spec: ${spec}
`;
}

function push(texts: string[], source?: JwksSource): PushContext {
  const store = storeFrom(bookinfoPlatform(), ...texts);
  return buildPushContext({ store, registry: new ServiceEntryRegistry(store), mesh: defaultMeshConfig, version: 'test', ...(source ? { jwks: source } : {}) });
}

function inboundHttpFilters(p: PushContext, transport = 'raw_buffer') {
  const vi = must(generate(p, reviewsV1(), LDS).get('virtualInbound'));
  const chain = (vi.filter_chains as Chain[]).find((c) => c.filter_chain_match?.destination_port?.value === 9080 && c.filter_chain_match?.transport_protocol === transport);
  const hcm = must(chain?.filters.find((f) => f.name === 'envoy.filters.network.http_connection_manager'), 'hcm');
  return typed(hcm.typed_config as never, TypeUrl.HttpConnectionManager).http_filters;
}

function jwtConfig(filters: ReturnType<typeof inboundHttpFilters>) {
  return typed(must(filters.find((f) => f.name === 'envoy.filters.http.jwt_authn'), 'jwt_authn').typed_config, TypeUrl.JwtAuthentication);
}

const reviewsSelector = 'selector: {matchLabels: {app: reviews}}';

describe('RequestAuthentication -> jwt_authn and istio_authn', () => {
  it('adds nothing when no RequestAuthentication applies', () => {
    const filters = inboundHttpFilters(push([requestAuthentication('other', `{selector: {matchLabels: {app: ratings}}, jwtRules: [{issuer: a, jwks: '${jwks}'}]}`)]));
    expect(filters.map((f) => f.name)).toEqual(['envoy.filters.http.router']);
  });

  it('puts jwt_authn and istio_authn before RBAC on inbound chains (plaintext and mTLS), one provider requiring {provider OR allow_missing}', () => {
    const texts = [
      requestAuthentication(
        'jwt',
        `
  ${reviewsSelector}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwks: '${jwks}'
    audiences: [bookinfo]
    fromHeaders: [{name: x-jwt, prefix: "Token "}]
    fromParams: [token]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{header: x-jwt-group, claim: group}]
    spaceDelimitedClaims: [roles]`,
      ),
      `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: default}
spec:
  ${reviewsSelector}
  rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]
`,
    ];
    const p = push(texts);
    for (const transport of ['raw_buffer', 'tls']) {
      expect(inboundHttpFilters(p, transport).map((f) => f.name)).toEqual(['envoy.filters.http.jwt_authn', 'istio_authn', 'envoy.filters.http.rbac', 'envoy.filters.http.router']);
    }
    const filters = inboundHttpFilters(p);
    const config = jwtConfig(filters);
    const provider = must(config.providers['origins-0']);
    expect(provider).toMatchObject({
      issuer: 'testing@secure.istio.io',
      audiences: ['bookinfo'],
      forward: true,
      forward_payload_header: 'x-jwt-payload',
      payload_in_metadata: 'payload',
      from_headers: [{ name: 'x-jwt', value_prefix: 'Token ' }],
      from_params: ['token'],
      claim_to_headers: [{ header_name: 'x-jwt-group', claim_name: 'group' }],
      clear_route_cache: true,
      normalize_payload_in_metadata: { space_delimited_claims: ['permission', 'roles', 'scope'] },
    });
    expect(provider.local_jwks?.inline_string).toBe(jwks);
    expect(config.bypass_cors_preflight).toBe(true);
    expect(config.rules).toHaveLength(1);
    expect(config.rules[0]?.match?.prefix).toBe('/');
    const req = must(config.rules[0]?.requires);
    expect(req.requires_any?.requirements.map((r) => r.requires_type)).toEqual(['provider_name', 'allow_missing']);
    expect(req.requires_any?.requirements[0]?.provider_name).toBe('origins-0');

    const authn = typed(must(filters.find((f) => f.name === 'istio_authn')).typed_config, TypeUrl.TypedStruct);
    expect(authn.type_url).toBe(istioAuthnConfigType);
    const policy = authn.value?.fields?.policy?.structValue?.fields;
    expect(policy?.origins?.listValue?.values.map((v) => v.structValue?.fields?.jwt?.structValue?.fields?.issuer?.stringValue)).toEqual(['testing@secure.istio.io']);
    expect(policy?.origin_is_optional?.boolValue).toBe(true);
  });

  it('combines the rules of every policy that applies (root namespace, namespace-wide, selector), sorted by issuer, with Istio\'s multi-provider requirement', () => {
    const texts = [
      requestAuthentication('mesh', `{jwtRules: [{issuer: zeta, jwks: '${jwks}'}]}`, 'istio-system'),
      requestAuthentication('ns', `{jwtRules: [{issuer: beta, jwks: '${jwks}'}]}`),
      requestAuthentication('wl', `{${reviewsSelector}, jwtRules: [{issuer: alpha, jwks: '${jwks}'}]}`),
    ];
    const config = jwtConfig(inboundHttpFilters(push(texts)));
    expect(Object.entries(config.providers).map(([n, p]) => [n, p.issuer]).sort()).toEqual([
      ['origins-0', 'alpha'],
      ['origins-1', 'beta'],
      ['origins-2', 'zeta'],
    ]);
    // requires_any {P0, P1, P2, requires_all {any{P0, missing}, any{P1, missing}, any{P2, missing}}}
    const any = must(config.rules[0]?.requires?.requires_any).requirements;
    expect(any.slice(0, 3).map((r) => r.provider_name)).toEqual(['origins-0', 'origins-1', 'origins-2']);
    const all = must(any[3]?.requires_all).requirements;
    expect(all.map((r) => r.requires_any?.requirements.map((x) => x.provider_name || x.requires_type))).toEqual([
      ['origins-0', 'allow_missing'],
      ['origins-1', 'allow_missing'],
      ['origins-2', 'allow_missing'],
    ]);
  });

  it('inlines the keys pilot fetched for a jwksUri, and the fake JWKS before it has them', () => {
    const text = [requestAuthentication('uri', `{${reviewsSelector}, jwtRules: [{issuer: https://issuer.example, jwksUri: 'https://issuer.example/jwks.json', timeout: 2s}]}`)];
    const asked: [string, number][] = [];
    const keys = new Map<string, string>();
    const source: JwksSource = {
      get: (uri, timeoutMs) => {
        asked.push([uri, timeoutMs]);
        return keys.get(uri);
      },
    };
    const before = must(jwtConfig(inboundHttpFilters(push(text, source))).providers['origins-0']);
    expect(before.local_jwks?.inline_string).toBe(fakeJwks);
    expect(asked[0]).toEqual(['https://issuer.example/jwks.json', 2000]);
    keys.set('https://issuer.example/jwks.json', jwks);
    const after = must(jwtConfig(inboundHttpFilters(push(text, source))).providers['origins-0']);
    expect(after.local_jwks?.inline_string).toBe(jwks);
    // An issuer alone: its OpenID discovery document names the keys.
    const p = push([requestAuthentication('oidc', `{${reviewsSelector}, jwtRules: [{issuer: 'https://accounts.example/'}]}`)], source);
    jwtConfig(inboundHttpFilters(p));
    expect(asked.at(-1)).toEqual(['https://accounts.example/.well-known/openid-configuration', 5000]);
  });

  it('puts the filters on the ingress gateway\'s HTTP chain when a policy selects the gateway', () => {
    const p = push([
      networking('bookinfo-gateway.yaml'),
      requestAuthentication('gw', `{selector: {matchLabels: {istio: ingressgateway}}, jwtRules: [{issuer: testing@secure.istio.io, jwks: '${jwks}'}]}`, 'istio-system'),
    ]);
    const listeners = generate(p, router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' }), LDS);
    const l = must([...listeners.values()][0], 'gateway listener');
    const chain = (l.filter_chains as Chain[])[0];
    const hcm = typed(must(chain?.filters[0]).typed_config as never, TypeUrl.HttpConnectionManager);
    expect(hcm.http_filters.map((f) => f.name).slice(0, 2)).toEqual(['envoy.filters.http.jwt_authn', 'istio_authn']);
    // The sidecar is not selected by it.
    expect(inboundHttpFilters(p).map((f) => f.name)).toEqual(['envoy.filters.http.router']);
  });

  it("turns a VirtualService's @request.auth.claims header matches into jwt_authn payload matchers, as Istio's TranslateRouteMatch", () => {
    const p = push([
      networking('bookinfo-gateway.yaml'),
      `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: claims, namespace: default}
spec:
  hosts: [claims.example.com]
  gateways: [bookinfo-gateway]
  http:
  - match:
    - headers: {"@request.auth.claims.group": {exact: admins}, "@request.auth.claims[org][team]": {prefix: blue}, x-plain: {exact: 'yes'}}
      withoutHeaders: {"@request.auth.claims.banned": {exact: 'true'}}
    route: [{destination: {host: reviews, port: {number: 9080}}}]
  - route: [{destination: {host: ratings, port: {number: 9080}}}]
`,
    ]);
    const routes = generate(p, router('127.0.0.100', 'istio-ingressgateway-1', { istio: 'ingressgateway' }), TypeUrl.RouteConfiguration);
    const rc = must([...routes.values()].find((r) => r.virtual_hosts.some((v) => v.domains.includes('claims.example.com'))), 'route config');
    const vh = must(rc.virtual_hosts.find((v) => v.domains.includes('claims.example.com')));
    const [first, second] = vh.routes;
    expect(first?.match?.headers.map((h) => h.name)).toEqual(['x-plain']);
    const md = must(first?.match).dynamic_metadata;
    const byPath = Object.fromEntries(md.map((m) => [m.path.map((s) => s.key).join('/'), m]));
    expect(Object.keys(byPath).sort()).toEqual(['payload/banned', 'payload/group', 'payload/org/team']);
    for (const m of md) expect(m.filter).toBe('envoy.filters.http.jwt_authn');
    const group = must(byPath['payload/group']);
    expect(group.invert).toBe(false);
    expect(group.value?.or_match?.value_matchers.map((v) => v.match_pattern)).toEqual(['list_match', 'string_match']);
    expect(group.value?.or_match?.value_matchers[1]?.string_match?.exact).toBe('admins');
    expect(group.value?.or_match?.value_matchers[0]?.list_match?.one_of?.string_match?.exact).toBe('admins');
    expect(byPath['payload/org/team']?.value?.or_match?.value_matchers[1]?.string_match?.prefix).toBe('blue');
    expect(byPath['payload/banned']?.invert).toBe(true);
    // The route after it stays the catch-all; a claims-only match is no catch-all.
    expect(second?.match?.dynamic_metadata).toEqual([]);
  });
});
