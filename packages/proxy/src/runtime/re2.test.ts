import { decodeMessage, encodeMessage } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { checkRe2Patterns, re2ProgramSizeAtLeast, re2Problem } from './re2.ts';

describe('re2Problem', () => {
  it('accepts what RE2 accepts', () => {
    for (const p of ['/api/v[0-9]+', '^(a|b){2,10}$', '[{]1001[}]', '\\{1001\\}', '(?i)foo', '(?P<x>a)']) expect(re2Problem(p)).toBeUndefined();
  });

  it('refuses what RE2 refuses and JavaScript accepts', () => {
    expect(re2Problem('/api/v[0-9]{1,1001}')).toMatch(/bad repetition operator \{1,1001\}/);
    expect(re2Problem('a{2000}')).toMatch(/at most 1000/);
    expect(re2Problem('(a)\\1')).toMatch(/backreferences/);
    expect(re2Problem('(?=a)b')).toMatch(/lookaround/);
    expect(re2Problem('(?<!a)b')).toMatch(/lookaround/);
  });

  it('finds regexes anywhere in a route configuration', () => {
    const name = 'envoy.config.route.v3.RouteConfiguration';
    const rc = decodeMessage(
      name,
      encodeMessage(name, {
        name: '9080',
        virtual_hosts: [
          {
            name: 'reviews',
            domains: ['*'],
            routes: [{ match: { prefix: '/', headers: [{ name: 'x-id', string_match: { safe_regex: { regex: '[0-9]{1,5000}' } } }] }, route: { cluster: 'c' } }],
          },
        ],
      }),
    );
    expect(() => checkRe2Patterns(rc)).toThrow(/regex "\[0-9\]\{1,5000\}": bad repetition operator/);
  });
});

describe('re2ProgramSizeAtLeast', () => {
  it('stays under what RE2 really compiles', () => {
    // RE2's real sizes (re2.ProgramSize()) are larger than or equal to these bounds.
    expect(re2ProgramSizeAtLeast('/api/v1')).toBe(8);
    expect(re2ProgramSizeAtLeast('^/api/v1/[0-9]+')).toBe(2);
    expect(re2ProgramSizeAtLeast('(?i)^/api/v1/[0-9]+')).toBe(2);
    expect(re2ProgramSizeAtLeast('abc|abd')).toBe(4);
    expect(re2ProgramSizeAtLeast('[0-9]{1,200}')).toBe(201);
    expect(re2ProgramSizeAtLeast('(ab){3}x*')).toBe(8);
  });

  it('lets the regexes people write pass, and refuses what Envoy refuses', () => {
    for (const p of ['^/productpage$', '/api/v[0-9]+/users/[a-z0-9-]+', '(?i).*(jason|mark).*', '^/static/.*\\.(css|js|png)$']) expect(re2Problem(p)).toBeUndefined();
    expect(re2Problem('/api/v[0-9]{1,200}')).toMatch(/RE2 program size of at least 207 > max program size of 100/);
  });
});
