import { describe, expect, it } from 'vitest';
import { firstUriSan, parseSpiffeId, parseSubjectAltNames, spiffeId, spiffeIdOfSans, uriSans } from './spiffe.ts';

describe('SPIFFE IDs', () => {
  it('builds and parses Istio’s form', () => {
    const id = spiffeId('cluster.local', 'default', 'bookinfo-reviews');
    expect(id).toBe('spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    expect(parseSpiffeId(id)).toEqual({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-reviews' });
  });

  it('refuses other shapes and invalid names', () => {
    for (const bad of [
      'spiffe://cluster.local/ns/default/sa/a/extra',
      'spiffe://cluster.local/sa/a/ns/default',
      'spiffe://cluster.local/ns//sa/a',
      'spiffe://cluster.local/ns/Default/sa/a',
      'http://cluster.local/ns/default/sa/a',
      'spiffe://cluster.local/ns/default',
    ])
      expect(parseSpiffeId(bad), bad).toBeUndefined();
  });
});

describe('subjectAltName text', () => {
  it('reads Node’s plain form', () => {
    expect(parseSubjectAltNames('URI:spiffe://cluster.local/ns/a/sa/b, DNS:a.b, IP Address:127.0.0.1')).toEqual([
      { type: 'URI', value: 'spiffe://cluster.local/ns/a/sa/b' },
      { type: 'DNS', value: 'a.b' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
    expect(parseSubjectAltNames(undefined)).toEqual([]);
  });

  // The proxy's copy split at every comma: a quoted value holding ", URI:" became a second identity.
  it('keeps a quoted value whole, so a certificate cannot smuggle in a second identity', () => {
    const text = 'URI:"spiffe://evil.example/x, URI:spiffe://cluster.local/ns/default/sa/admin", DNS:a.b';
    expect(uriSans(text)).toEqual(['spiffe://evil.example/x, URI:spiffe://cluster.local/ns/default/sa/admin']);
    expect(firstUriSan(text)).toBe('spiffe://evil.example/x, URI:spiffe://cluster.local/ns/default/sa/admin');
    expect(parseSubjectAltNames('URI:"a\\"b", DNS:c')).toEqual([
      { type: 'URI', value: 'a"b' },
      { type: 'DNS', value: 'c' },
    ]);
  });

  it('stops at an unterminated quote rather than guessing', () => {
    expect(parseSubjectAltNames('DNS:a, URI:"spiffe://x')).toEqual([{ type: 'DNS', value: 'a' }]);
  });

  it('names a workload certificate’s SPIFFE ID only when it has exactly one URI SAN', () => {
    expect(spiffeIdOfSans('URI:spiffe://cluster.local/ns/a/sa/b, DNS:x')).toBe('spiffe://cluster.local/ns/a/sa/b');
    expect(spiffeIdOfSans('URI:spiffe://cluster.local/ns/a/sa/b, URI:spiffe://cluster.local/ns/a/sa/c')).toBeUndefined();
    expect(spiffeIdOfSans('URI:https://example.com')).toBeUndefined();
    expect(spiffeIdOfSans('DNS:a')).toBeUndefined();
  });
});
