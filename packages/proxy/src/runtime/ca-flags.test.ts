// The mesh identity flags of weft-proxy: --ca-address with its root and token, Istio's CA_ADDR and
// SECRET_TTL, durations, and what is refused.
import { describe, expect, it } from 'vitest';
import { durationSeconds, parseProxyFlags, UsageError } from './flags.ts';

const ca = ['--ca-address', '127.0.0.1:15012', '--ca-root-cert', '/ca/root-cert.pem', '--ca-token-file', '/run/istio-token'];

describe('mesh identity flags', () => {
  it('configure the CA, trust domain and certificate lifetime', () => {
    const o = parseProxyFlags([...ca, '--trust-domain', 'example.org', '--secret-ttl', '1h30m', '--ca-server-name', 'istiod.istio-system.svc', '--service-account', 'reviews'], {}, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o.ca).toEqual({
      address: '127.0.0.1:15012',
      rootCertFile: '/ca/root-cert.pem',
      tokenFile: '/run/istio-token',
      serverName: 'istiod.istio-system.svc',
      trustDomain: 'example.org',
      ttlSeconds: 5400,
    });
    expect(o.node.serviceAccount).toBe('reviews');
  });

  it("take Istio's CA_ADDR and SECRET_TTL from the environment; no CA means no identity", () => {
    const o = parseProxyFlags(['--ca-root-cert', '/r.pem', '--ca-token-file', '/t'], { CA_ADDR: 'istiod.istio-system.svc:15012', SECRET_TTL: '24h0m0s' }, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o.ca).toMatchObject({ address: 'istiod.istio-system.svc:15012', ttlSeconds: 86400 });
    const none = parseProxyFlags([], {}, 'sidecar');
    if (none === 'help') throw new Error('help');
    expect(none.ca).toBeUndefined();
  });

  it('refuses what it cannot use, saying why', () => {
    expect(() => parseProxyFlags(['--ca-root-cert', '/r.pem'], {}, 'sidecar')).toThrow(/--ca-root-cert needs --ca-address/);
    expect(() => parseProxyFlags(['--ca-address', 'istiod'], {}, 'sidecar')).toThrow(/is not HOST:PORT/);
    expect(() => parseProxyFlags(['--ca-address', '127.0.0.1:15012', '--ca-token-file', '/t'], {}, 'sidecar')).toThrow(/needs --ca-root-cert/);
    expect(() => parseProxyFlags(['--ca-address', '127.0.0.1:15012', '--ca-root-cert', '/r.pem'], {}, 'sidecar')).toThrow(/needs --ca-token-file/);
    expect(() => parseProxyFlags([...ca, '--secret-ttl', 'soon'], {}, 'sidecar')).toThrow(UsageError);
    expect(() => parseProxyFlags([...ca, '--secret-ttl', '500ms'], {}, 'sidecar')).toThrow(/at least 1s/);
  });

  it('--xds-tls: xDS to the CA address over TLS unless --xds-address says otherwise; needs the CA', () => {
    const o = parseProxyFlags([...ca, '--xds-tls'], {}, 'sidecar');
    if (o === 'help') throw new Error('help');
    expect(o).toMatchObject({ xdsTls: true, xdsAddress: '127.0.0.1:15012' });
    const other = parseProxyFlags([...ca, '--xds-tls', '--xds-address', '10.0.0.1:15012'], {}, 'sidecar');
    if (other === 'help') throw new Error('help');
    expect(other.xdsAddress).toBe('10.0.0.1:15012');
    const plain = parseProxyFlags(ca, {}, 'sidecar');
    if (plain === 'help') throw new Error('help');
    expect(plain).toMatchObject({ xdsAddress: '127.0.0.1:15010' });
    expect(plain.xdsTls).toBeUndefined();
    expect(() => parseProxyFlags(['--xds-tls'], {}, 'sidecar')).toThrow(/--xds-tls needs --ca-address/);
  });

  it('reads Go durations and plain seconds', () => {
    expect(durationSeconds('x', '90')).toBe(90);
    expect(durationSeconds('x', '2m')).toBe(120);
    expect(durationSeconds('x', '1h0m30s')).toBe(3630);
    expect(durationSeconds('x', '1500ms')).toBe(1.5);
    expect(() => durationSeconds('x', '')).toThrow(UsageError);
    expect(() => durationSeconds('x', '5 minutes')).toThrow(/duration such as/);
  });
});
