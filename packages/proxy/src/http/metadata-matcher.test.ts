import { describe, expect, it } from 'vitest';
import { compileRouteConfiguration } from './compile.ts';
import { decodeRouteConfig } from './test-support.ts';
import { RequestView } from './view.ts';

/** Istio's `@request.auth.claims.<path>` route matcher: the claim a string or a list holding the value. */
function claim(path: string[], exact: string, invert = false) {
  const sm = { exact };
  return {
    filter: 'envoy.filters.http.jwt_authn',
    path: ['payload', ...path].map((key) => ({ key })),
    value: { or_match: { value_matchers: [{ list_match: { one_of: { string_match: sm } } }, { string_match: sm }] } },
    invert,
  };
}

const routes = compileRouteConfiguration(
  decodeRouteConfig({
    name: 'http.8080',
    virtual_hosts: [
      {
        name: 'claims',
        domains: ['*'],
        routes: [
          { name: 'admins', match: { prefix: '/', dynamic_metadata: [claim(['group'], 'admins'), claim(['banned'], 'true', true)] }, route: { cluster: 'v2' } },
          { name: 'blue', match: { prefix: '/', dynamic_metadata: [claim(['org', 'team'], 'blue')] }, route: { cluster: 'v3' } },
          { name: 'rest', match: { prefix: '/' }, route: { cluster: 'v1' } },
        ],
      },
    ],
  }),
);

function pick(payload: Record<string, unknown> | undefined): string | undefined {
  const view = new RequestView('GET', 'claims.example.com', '/', 'http', {});
  if (payload) view.dynamicMetadata = { 'envoy.filters.http.jwt_authn': { payload } };
  return routes.route(view).route?.name;
}

describe("routes' dynamic_metadata (JWT claim routing)", () => {
  it('matches the verified payload jwt_authn left on the request: strings, lists, nested claims, inverted matchers', () => {
    expect(pick({ group: 'admins' })).toBe('admins');
    expect(pick({ group: ['users', 'admins'] })).toBe('admins');
    expect(pick({ group: 'admins', banned: 'true' })).toBe('rest');
    expect(pick({ group: 'users', org: { team: 'blue' } })).toBe('blue');
    expect(pick({ group: 'users' })).toBe('rest');
    // No verified token, no metadata: only the catch-all.
    expect(pick(undefined)).toBe('rest');
  });
});
