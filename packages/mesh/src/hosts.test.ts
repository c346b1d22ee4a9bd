import { describe, expect, it } from 'vitest';
import { hostCandidates, hostSubsetOf, hostsMatch, isWildcardHost, resolveHost } from './hosts.ts';

// Cases from Istio's pkg/config/host name_test.go (TestNameMatches, TestNameSubsetOf).
describe('host matching', () => {
  const matches: Array<[string, string, boolean]> = [
    ['foo.com', 'foo.com', true],
    ['foo.com', 'bar.com', false],
    ['*.com', 'foo.com', true],
    ['foo.com', '*.com', true],
    ['*.com', '*.foo.com', true],
    ['*.foo.com', '*.com', true],
    ['*', '*.foo.com', true],
    ['*', 'foo.com', true],
    ['*.foo.com', '*.bar.com', false],
    ['*.foo.com', 'foo.com', false],
    ['*.foo.com', 'bar.foo.com', true],
    ['*', '*', true],
  ];
  it.each(matches)('Matches(%s, %s) = %s', (a, b, want) => {
    expect(hostsMatch(a, b)).toBe(want);
    expect(hostsMatch(b, a)).toBe(want);
  });

  const subsets: Array<[string, string, boolean]> = [
    ['foo.com', 'foo.com', true],
    ['foo.com', '*.com', true],
    ['*.com', 'foo.com', false],
    ['*.foo.com', '*.com', true],
    ['*.com', '*.foo.com', false],
    ['*.foo.com', '*', true],
    ['*', '*.foo.com', false],
    ['foo.com', '*', true],
    ['*', '*', true],
    ['foo.com', '*.foo.com', false],
    ['bar.foo.com', '*.foo.com', true],
  ];
  it.each(subsets)('SubsetOf(%s, %s) = %s', (a, b, want) => {
    expect(hostSubsetOf(a, b)).toBe(want);
  });

  it('knows wildcards', () => {
    expect(isWildcardHost('*')).toBe(true);
    expect(isWildcardHost('*.a.com')).toBe(true);
    expect(isWildcardHost('a.com')).toBe(false);
  });
});

describe('resolveHost (Istio’s ResolveShortnameToFQDN)', () => {
  it('completes a name without a dot from the namespace', () => {
    expect(resolveHost('reviews', 'default')).toBe('reviews.default.svc.cluster.local');
    expect(resolveHost('reviews', 'default', 'example.internal')).toBe('reviews.default.svc.example.internal');
  });

  // galley's analysis completed `reviews.prod` to `reviews.prod.svc.cluster.local`; Istio takes any
  // name with a dot as written (pilot never routes `reviews.prod` to the Service).
  it('takes names with a dot, wildcards and IP addresses as written', () => {
    expect(resolveHost('reviews.prod', 'default')).toBe('reviews.prod');
    expect(resolveHost('reviews.prod.svc.cluster.local', 'default')).toBe('reviews.prod.svc.cluster.local');
    expect(resolveHost('*.example.com', 'default')).toBe('*.example.com');
    expect(resolveHost('*', 'default')).toBe('*');
    expect(resolveHost('10.0.0.1', 'default')).toBe('10.0.0.1');
    expect(resolveHost('fd00::1', 'default')).toBe('fd00::1');
  });
});

describe('hostCandidates (the Service a short name stands for, then the name as written)', () => {
  it('completes names as a pod in the namespace resolves them, the Kubernetes Service first', () => {
    expect(hostCandidates('reviews', 'default')).toEqual(['reviews.default.svc.cluster.local']);
    expect(hostCandidates('reviews', 'prod', 'example.internal')).toEqual(['reviews.prod.svc.example.internal']);
    expect(hostCandidates('reviews.prod', 'default')).toEqual(['reviews.prod.svc.cluster.local', 'reviews.prod']);
    expect(hostCandidates('reviews.prod.svc', 'default')).toEqual(['reviews.prod.svc.cluster.local', 'reviews.prod.svc']);
  });
  it('keeps FQDNs, wildcards and addresses as written', () => {
    expect(hostCandidates('reviews.prod.svc.cluster.local', 'default')).toEqual(['reviews.prod.svc.cluster.local']);
    expect(hostCandidates('www.example.com', 'default')).toEqual(['www.example.com']);
    expect(hostCandidates('*.example.com', 'default')).toEqual(['*.example.com']);
    expect(hostCandidates('10.0.0.1', 'default')).toEqual(['10.0.0.1']);
  });
});
