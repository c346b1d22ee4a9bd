import { describe, expect, it } from 'vitest';
import { originHeader, originLocation, parseOriginHeader } from './origin.ts';

describe('config directory origin headers', () => {
  it('reads back what it writes, a file:line origin as a location and a phrase as none', () => {
    const line = originHeader('virtualservice.networking.istio.io/reviews', 'default', '/home/u/vs: reviews.yaml:12');
    expect(line).toBe('# virtualservice.networking.istio.io/reviews in default, from /home/u/vs: reviews.yaml:12\n');
    const h = parseOriginHeader(line.trimEnd());
    expect(h).toEqual({ object: 'virtualservice.networking.istio.io/reviews', origin: '/home/u/vs: reviews.yaml:12' });
    expect(originLocation(h!.origin)).toEqual({ file: '/home/u/vs: reviews.yaml', line: 12 });
    const up = parseOriginHeader(originHeader('gateway.networking.istio.io/ingress', undefined, 'weftctl up (the ingress gateway)').trimEnd());
    expect(up).toEqual({ object: 'gateway.networking.istio.io/ingress', origin: 'weftctl up (the ingress gateway)' });
    expect(originLocation(up!.origin)).toBeUndefined();
    expect(parseOriginHeader('apiVersion: networking.istio.io/v1')).toBeUndefined();
  });
});
