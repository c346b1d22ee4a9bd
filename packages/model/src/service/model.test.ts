import { describe, expect, it } from 'vitest';
import { kubernetesPortProtocol, type Protocol, parseLocality, protocolOf } from './model.ts';

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

describe('kubernetesPortProtocol', () => {
  // Istio's ConvertProtocol cases (pkg/config/kube/conversion_test.go), then the edges of its rule.
  const cases: [string, Parameters<typeof kubernetesPortProtocol>[0], Protocol][] = [
    ['resolves empty', { port: 0 }, 'UNSUPPORTED'],
    ['resolves from protocol directly', { port: 0, protocol: 'UDP' }, 'UDP'],
    ['resolves from port name', { port: 0, name: 'http-something' }, 'HTTP'],
    ['prefers appProtocol over the port name', { port: 0, name: 'http-something', appProtocol: 'https' }, 'HTTPS'],
    ['resolves from appProtocol', { port: 0, name: 'something-httpx', appProtocol: 'https' }, 'HTTPS'],
    ['resolves grpc-web', { port: 0, name: 'grpc-web-x' }, 'GRPC-WEB'],
    ['does not read grpcweb as grpc-web', { port: 0, name: 'grpcweb-x' }, 'UNSUPPORTED'],
    ['resolves well-known ports', { port: 3306, name: 'random-name' }, 'TCP'],
    ['standard appProtocol', { port: 3306, name: 'random-name', appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
    ['UDP wins over the name', { port: 53, name: 'http-dns', protocol: 'UDP' }, 'UDP'],
    ['TCP as the Kubernetes protocol says nothing', { port: 8080, name: 'web', protocol: 'TCP' }, 'UNSUPPORTED'],
    ['a bare protocol name', { port: 80, name: 'http' }, 'HTTP'],
    ['case-insensitive', { port: 80, name: 'HTTP2-api' }, 'HTTP2'],
    ['grpc-web prefix without a dash after it', { port: 80, name: 'grpc-webx' }, 'GRPC-WEB'],
    ['grpc', { port: 80, name: 'grpc-api' }, 'GRPC'],
    ['tls, mongo, redis, mysql', { port: 1, name: 'tls-x' }, 'TLS'],
    ['mongo', { port: 1, name: 'mongo' }, 'MONGO'],
    ['redis', { port: 1, name: 'redis-cache' }, 'REDIS'],
    ['mysql', { port: 1, name: 'mysql' }, 'MYSQL'],
    ['tcp', { port: 1, name: 'tcp-db' }, 'TCP'],
    ['an unknown appProtocol hides a telling name', { port: 80, name: 'http-web', appProtocol: 'custom' }, 'UNSUPPORTED'],
    ['an unknown appProtocol on a well-known port', { port: 27017, name: 'mongo', appProtocol: 'custom' }, 'TCP'],
    ['appProtocol read up to its first dash', { port: 80, appProtocol: 'http-alt' }, 'HTTP'],
    ['kubernetes.io names are exact', { port: 80, appProtocol: 'Kubernetes.io/h2c' }, 'UNSUPPORTED'],
    ['websocket', { port: 80, appProtocol: 'kubernetes.io/ws' }, 'HTTP'],
    ['websocket over TLS', { port: 443, appProtocol: 'kubernetes.io/wss' }, 'HTTPS'],
    ['a standard name as a port name means nothing', { port: 80, name: 'kubernetes.io/h2c' }, 'UNSUPPORTED'],
    ['well-known SMTP', { port: 25 }, 'TCP'],
    ['well-known DNS over TCP', { port: 53, name: 'dns-tcp' }, 'TCP'],
    ['unnamed elsewhere', { port: 9080 }, 'UNSUPPORTED'],
    ['http_proxy (Istio HTTP_PROXY) is HTTP', { port: 80, name: 'http_proxy' }, 'HTTP'],
  ];
  it.each(cases)('%s', (_name, port, expected) => {
    expect(kubernetesPortProtocol(port)).toBe(expected);
  });
});

describe('localities', () => {
  it('parses them', () => {
    expect(parseLocality('us-east/us-east-1a')).toEqual({ region: 'us-east', zone: 'us-east-1a' });
    expect(parseLocality(undefined)).toEqual({});
  });
});
