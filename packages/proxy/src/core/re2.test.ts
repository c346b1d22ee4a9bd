import { decodeMessage, encodeMessage, TypeUrl, decodeAny, encodeAny } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { checkRe2Patterns } from './re2.ts';

describe('checkRe2Patterns', () => {
  it('finds a regex RE2 refuses anywhere in a route configuration and names its field', () => {
    const name = 'envoy.config.route.v3.RouteConfiguration';
    const rc = decodeMessage(
      name,
      encodeMessage(name, {
        name: '9080',
        virtual_hosts: [
          {
            name: 'reviews',
            domains: ['*'],
            routes: [
              { match: { prefix: '/ok', headers: [{ name: 'x-id', string_match: { safe_regex: { regex: '[0-9]{1,500}' } } }] }, route: { cluster: 'c' } },
              { match: { prefix: '/', headers: [{ name: 'x-id', string_match: { safe_regex: { regex: '[0-9]{1,5000}' } } }] }, route: { cluster: 'c' } },
            ],
          },
        ],
      }),
    );
    expect(() => checkRe2Patterns(rc)).toThrow(
      'virtual_hosts[0].routes[1].match.headers[0].string_match.safe_regex: regex "[0-9]{1,5000}": error parsing regexp: invalid repeat count: `{1,5000}`',
    );
  });

  it('finds subject alt name regexes in an upstream TLS context', () => {
    const tls = decodeAny(
      encodeAny(TypeUrl.UpstreamTlsContext, { common_tls_context: { validation_context: { match_subject_alt_names: [{ safe_regex: { regex: 'spiffe://(?=x).*' } }] } } }),
      TypeUrl.UpstreamTlsContext,
    );
    expect(() => checkRe2Patterns(tls)).toThrow(/common_tls_context\.validation_context\.match_subject_alt_names\[0\]\.safe_regex: .*RE2 has no lookahead/);
    expect(() => checkRe2Patterns({ match_subject_alt_names: [{ safe_regex: { regex: 'spiffe://.+/ns/default/.*' } }] })).not.toThrow();
  });
});
