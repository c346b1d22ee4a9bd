import { describe, expect, it } from 'vitest';
import { ingressGatewayPortAnalyzer } from './gateway.ts';
import { lineOf, run } from './test-support.ts';

const ingress = `apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: istio-system
spec:
  selector: {istio: ingressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istio-ingressgateway
  namespace: istio-system
spec:
  selector:
    matchLabels: {istio: ingressgateway}
  template:
    metadata:
      labels: {istio: ingressgateway}
    spec:
      containers:
      - name: istio-proxy
        image: weft/proxy:latest
`;

const gateway = (ports: number[]) => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
spec:
  selector: {istio: ingressgateway}
  servers:
${ports.map((p) => `  - port: {number: ${p}, name: http-${p}, protocol: HTTP}\n    hosts: ["*"]`).join('\n')}
`;

describe('gateway.IngressGatewayPortAnalyzer', () => {
  it('warns about a server port the gateway Service does not expose (IST0162)', () => {
    const text = gateway([80, 9000]);
    expect(run([ingress, text], [ingressGatewayPortAnalyzer])).toEqual([
      expect.objectContaining({
        subject: 'Gateway default/public',
        code: 'IST0162',
        severity: 'warning',
        path: 'spec.servers[1].port.number',
        message:
          'The gateway listens on port 9000, which the Service istio-system/istio-ingressgateway of its workloads (selector istio=ingressgateway) does not expose (ports 80, 443): clients cannot reach this server through the Service',
        line: lineOf(text, 'number: 9000'),
      }),
    ]);
  });

  it('accepts Service ports and their target ports', () => {
    expect(run([ingress, gateway([80, 443, 8080])], [ingressGatewayPortAnalyzer])).toEqual([]);
  });

  it('stays quiet when the input has no gateway workloads or no Service for them', () => {
    expect(run(gateway([9000]), [ingressGatewayPortAnalyzer])).toEqual([]);
    const deploymentOnly = ingress.split('---')[1]!;
    expect(run([deploymentOnly, gateway([9000])], [ingressGatewayPortAnalyzer])).toEqual([]);
  });
});
