// Route matching with RE2, as Envoy matches `safe_regex`: where RE2 and JavaScript's RegExp differ,
// the router answers as Envoy would.
import type { IncomingHttpHeaders } from 'node:http';
import type { Route, RouteConfiguration } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { type CompiledRoutes, compileRouteConfiguration } from './compile.ts';
import { RouteConfigError } from './matchers.ts';
import { decodeRouteConfig } from './test-support.ts';
import { RequestView } from './view.ts';

type HeaderMatch = NonNullable<NonNullable<Route['match']>['headers']>[number];

const header = (name: string, regex: string): HeaderMatch => ({ name, string_match: { safe_regex: { regex } } });
const to = (name: string, match: Route['match']): Route => ({ name, match, route: { cluster: name } });

function compile(routes: Route[]): CompiledRoutes {
  const rc: RouteConfiguration = { name: '80', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [...routes, to('fallback', { prefix: '/' })] }] };
  return compileRouteConfiguration(decodeRouteConfig(rc));
}

function pick(routes: CompiledRoutes, path: string, headers: IncomingHttpHeaders = {}): string {
  return routes.route(new RequestView('GET', 'h', path, 'http', headers), () => 0).route?.name ?? '-';
}

describe('RE2 route matching', () => {
  it('answers a catastrophic-backtracking pattern against a long non-matching header (linear time)', () => {
    // A backtracking engine explores 2^n ways to split n `a`s before failing; RE2 reads the value once.
    const routes = compile([to('hostile', { prefix: '/', headers: [header('x-user', '(a+)+$'), header('x-id', '(x+x+)+y')] })]);
    const as = 'a'.repeat(100_000);
    expect(pick(routes, '/', { 'x-user': `${as}!`, 'x-id': 'xy' })).toBe('fallback');
    expect(pick(routes, '/', { 'x-user': as, 'x-id': `${'x'.repeat(100_000)}` })).toBe('fallback');
    expect(pick(routes, '/', { 'x-user': as, 'x-id': 'xxy' })).toBe('hostile');
    const paths = compile([to('hostile-path', { safe_regex: { regex: '/(([a-z])+.)+[A-Z]([a-z])+' } })]);
    expect(pick(paths, `/${'a'.repeat(50_000)}`)).toBe('fallback');
  });

  it('matches RE2 syntax JavaScript reads differently', () => {
    const routes = compile([
      to('letters', { prefix: '/', headers: [header('x-name', '\\pL+')] }),
      to('case-from-here', { safe_regex: { regex: '/api(?i)/users' } }),
      to('quoted', { safe_regex: { regex: '/\\Q*.json\\E' } }),
      to('not-digits', { prefix: '/', headers: [header('x-code', '[[:^digit:]]+')] }),
      to('ascii-digits', { prefix: '/', headers: [header('x-num', '\\d+')] }),
      to('ascii-space', { prefix: '/', headers: [header('x-sp', 'a\\sb')] }),
      to('end-of-text', { prefix: '/', headers: [header('x-end', 'v1\\z')] }),
    ]);
    // \pL is RE2's Unicode letter class; JavaScript (no u flag) reads it as the letters "pL".
    expect(pick(routes, '/', { 'x-name': 'jäson' })).toBe('letters');
    expect(pick(routes, '/', { 'x-name': 'j4son' })).toBe('fallback');
    // (?i) in the middle applies from there on.
    expect(pick(routes, '/api/USERS')).toBe('case-from-here');
    expect(pick(routes, '/API/users')).toBe('fallback');
    // \Q…\E quotes.
    expect(pick(routes, '/*.json')).toBe('quoted');
    expect(pick(routes, '/x.json')).toBe('fallback');
    // Negated POSIX classes.
    expect(pick(routes, '/', { 'x-code': 'abc' })).toBe('not-digits');
    expect(pick(routes, '/', { 'x-code': 'ab1' })).toBe('fallback');
    // \d and \s are ASCII in RE2: an Arabic-Indic digit or a no-break space is not one (JavaScript's \s takes NBSP).
    expect(pick(routes, '/', { 'x-num': '42' })).toBe('ascii-digits');
    expect(pick(routes, '/', { 'x-num': '٤٢' })).toBe('fallback');
    expect(pick(routes, '/', { 'x-sp': 'a b' })).toBe('ascii-space');
    expect(pick(routes, '/', { 'x-sp': 'a\u00a0b' })).toBe('fallback');
    expect(pick(routes, '/', { 'x-end': 'v1' })).toBe('end-of-text');
  });

  it('refuses what RE2 refuses, naming the virtual host, the route and the construct (a NACK)', () => {
    const refused = (regex: string) => {
      try {
        compile([to('bad', { safe_regex: { regex } })]);
      } catch (err) {
        expect(err).toBeInstanceOf(RouteConfigError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(refused('/(?!admin).*')).toMatch(/^virtual host all, route bad: regex "\/\(\?!admin\)\.\*": error parsing regexp: .* \(RE2 has no lookahead\)$/);
    expect(refused('/(a)/\\1')).toMatch(/RE2 has no backreferences/);
    expect(refused('/(?<=x)y')).toMatch(/RE2 has no lookbehind/);
    expect(refused('/x\\Cy')).toMatch(/invalid escape sequence: `\\C`/);
    expect(refused('/[0-9]{1001}')).toMatch(/invalid repeat count/);
    expect(refused('/v[0-9]{1000}'.repeat(33))).toMatch(/RE2 program size \d+ > max program size of 32768/);
    expect(refused('/v[0-9]{1,200}')).toBe('accepted');
  });

  it('rewrites with RE2 GlobalReplace semantics (\\N groups; a missing group leaves the path)', () => {
    const rc: RouteConfiguration = {
      name: '80',
      virtual_hosts: [
        {
          name: 'all',
          domains: ['*'],
          routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c', regex_rewrite: { pattern: { regex: '(?i)/V([0-9]+)/' }, substitution: '/api/\\1/' } } }],
        },
      ],
    };
    const routes = compileRouteConfiguration(decodeRouteConfig(rc));
    const rewrite = routes.virtualHosts[0]!.routes[0]!.action!.regexRewrite!;
    expect(rewrite.re.globalReplace('/v1/users/V2/x', rewrite.substitution)).toBe('/api/1/users/api/2/x');
  });
});
