import { describe, expect, it } from 'vitest';
import { hostMatches, hostsOverlap, resolveHost } from './hosts.ts';
import { parseLocality, protocolOf, spiffeId } from './model.ts';

describe('protocolOf', () => {
  it('follows Istio: explicit protocol or appProtocol, then the port name prefix', () => {
    expect(protocolOf({ name: 'http' })).toBe('HTTP');
    expect(protocolOf({ name: 'http-web' })).toBe('HTTP');
    expect(protocolOf({ name: 'grpc-api' })).toBe('GRPC');
    expect(protocolOf({ name: 'grpc-web' })).toBe('GRPC-WEB');
    expect(protocolOf({ name: 'tcp-db' })).toBe('TCP');
    expect(protocolOf({ name: 'web' })).toBe('UNSUPPORTED');
    expect(protocolOf({ name: 'web', appProtocol: 'http2' })).toBe('HTTP2');
    expect(protocolOf({ name: 'web', appProtocol: 'kubernetes.io/h2c' })).toBe('HTTP2');
    expect(protocolOf({ name: 'http', protocol: 'TCP' })).toBe('TCP');
    expect(protocolOf({ protocol: 'HTTPS' })).toBe('HTTPS');
  });
});

describe('hosts', () => {
  it('resolves short names in the config namespace', () => {
    expect(resolveHost('reviews', 'default')).toBe('reviews.default.svc.cluster.local');
    expect(resolveHost('reviews.prod.svc.cluster.local', 'default')).toBe('reviews.prod.svc.cluster.local');
    expect(resolveHost('*.example.com', 'default')).toBe('*.example.com');
    expect(resolveHost('reviews', 'default', 'example.internal')).toBe('reviews.default.svc.example.internal');
  });
  it('matches wildcards', () => {
    expect(hostMatches('*.example.com', 'a.example.com')).toBe(true);
    expect(hostMatches('*.example.com', 'example.com')).toBe(false);
    expect(hostMatches('*', 'anything')).toBe(true);
    expect(hostMatches('a.example.com', '*.example.com')).toBe(false);
    expect(hostsOverlap('a.example.com', '*.example.com')).toBe(true);
    expect(hostMatches('*.example.com', '*.a.example.com')).toBe(true);
  });
  it('builds SPIFFE ids and localities', () => {
    expect(spiffeId('cluster.local', 'default', 'bookinfo-reviews')).toBe('spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    expect(parseLocality('us-east/us-east-1a')).toEqual({ region: 'us-east', zone: 'us-east-1a' });
    expect(parseLocality(undefined)).toEqual({});
  });
});
