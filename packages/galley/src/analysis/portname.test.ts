import { describe, expect, it } from 'vitest';
import { portNameAnalyzer, protocolOfName } from './portname.ts';
import { lineOf, run } from './test-support.ts';

const service = (ports: string, meta = '') => `apiVersion: v1
kind: Service
metadata:
  name: web${meta}
spec:
  selector: {app: web}
  ports:
${ports}`;

describe('service.PortNameAnalyzer', () => {
  it('warns about a port name without a protocol prefix (IST0118)', () => {
    const text = service('  - {name: http-web, port: 80}\n  - name: web\n    port: 8080\n    targetPort: 9080\n');
    expect(run(text, [portNameAnalyzer])).toEqual([
      expect.objectContaining({
        subject: 'Service default/web',
        code: 'IST0118',
        severity: 'warning',
        path: 'spec.ports[1].name',
        message:
          'Port name "web" (port 8080, targetPort 9080) does not follow Istio\'s naming convention <protocol>[-<suffix>] (for example http-web or grpc-api) and has no appProtocol, so Istio falls back to protocol sniffing',
        line: lineOf(text, '- name: web'),
      }),
    ]);
  });

  it('warns about an unnamed port and an unknown appProtocol', () => {
    const fs = run(service('  - port: 80\n  - {name: x, port: 81, appProtocol: carrier-pigeon}\n'), [portNameAnalyzer]);
    expect(fs.map((f) => [f.path, f.message.split(' (')[0]])).toEqual([
      ['spec.ports[0]', 'Unnamed port'],
      ['spec.ports[1].appProtocol', 'appProtocol "carrier-pigeon"'],
    ]);
  });

  it('accepts protocol prefixes, appProtocol, UDP ports, and Istio system Services', () => {
    const ports = ['http', 'http2-api', 'HTTPS', 'grpc', 'grpc-web', 'grpc-web-x', 'tcp-db', 'tls', 'mongo', 'mysql', 'redis']
      .map((n, i) => `  - {name: ${n}, port: ${1000 + i}}`)
      .join('\n');
    expect(run(service(`${ports}\n  - {name: api, port: 2000, appProtocol: kubernetes.io/h2c}\n  - {name: dns, port: 53, protocol: UDP}\n`), [portNameAnalyzer])).toEqual([]);
    expect(run(service('  - {name: status, port: 15021}\n', '\n  labels: {istio: ingressgateway}'), [portNameAnalyzer])).toEqual([]);
    expect(run(service('  - {name: status, port: 15021}\n', '\n  namespace: kube-system'), [portNameAnalyzer])).toEqual([]);
  });

  it('parses names like Istio', () => {
    expect(protocolOfName('grpc-web-ui')).toBe('grpc-web');
    expect(protocolOfName('Http2-x')).toBe('http2');
    expect(protocolOfName('web-http')).toBeUndefined();
  });
});
