import { describe, expect, it } from 'vitest';
import { credentialDir, renderGatewayDeployment } from './gateway-controller.ts';

const proxy = { image: 'weft/proxy:0.1.0', discoveryAddress: 'weftd.istio-system.svc:15012', trustDomain: 'cluster.local' };

type Obj = {
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: {
    type?: string;
    selector?: Record<string, string> | { matchLabels: Record<string, string> };
    ports?: { port: number; targetPort: number }[];
    template?: { metadata: { labels: Record<string, string> }; spec: { containers: { args: string[]; volumeMounts: { mountPath: string }[] }[]; volumes: { secret?: { secretName: string } }[] } };
  };
};

describe('renderGatewayDeployment (Istio\'s automated deployment)', () => {
  it('names everything <gateway>-<class>, selects the pods by the gateway-name label, a Service port per listener port', () => {
    const objects = renderGatewayDeployment(
      { name: 'web', namespace: 'shop', spec: { gatewayClassName: 'istio', listeners: [{ name: 'a', port: 8080, protocol: 'HTTP' }, { name: 'b', port: 80, protocol: 'HTTP' }, { name: 'c', port: 80, protocol: 'HTTP', hostname: 'x.example.com' }] } },
      proxy,
    ) as unknown as Obj[];
    expect(objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['ServiceAccount shop/web-istio', 'Deployment shop/web-istio', 'Service shop/web-istio']);
    for (const o of objects) expect(o.metadata.labels['gateway.networking.k8s.io/gateway-name']).toBe('web');
    const svc = objects.find((o) => o.kind === 'Service')!;
    expect(svc.spec.type).toBe('LoadBalancer');
    expect(svc.spec.ports?.map((p) => `${p.port}->${p.targetPort}`)).toEqual(['15021->15021', '80->80', '8080->8080']);
    expect(svc.spec.selector).toEqual({ 'gateway.networking.k8s.io/gateway-name': 'web', 'istio.io/gateway-name': 'web' });
    const d = objects.find((o) => o.kind === 'Deployment')!;
    // Not selected by Istio Gateways meant for the shared ingress gateway.
    expect(d.spec.template?.metadata.labels.istio).toBeUndefined();
    expect(d.spec.template?.spec.containers[0]?.args).toContain('gateway.networking.k8s.io/gateway-name=web,istio.io/gateway-name=web');
  });

  it('mounts the HTTPS listeners\' Secrets of its namespace where weft-ingress reads credentials; ClusterIP on request', () => {
    const objects = renderGatewayDeployment(
      {
        name: 'tls',
        namespace: 'shop',
        annotations: { 'networking.istio.io/service-type': 'ClusterIP' },
        spec: {
          gatewayClassName: 'weft',
          listeners: [{ name: 'https', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'shop-cert' }, { name: 'other', namespace: 'elsewhere' }] } }],
        },
      },
      proxy,
    ) as unknown as Obj[];
    expect(objects.find((o) => o.kind === 'Service')!.spec.type).toBe('ClusterIP');
    const pod = objects.find((o) => o.kind === 'Deployment')!.spec.template!.spec;
    expect(pod.containers[0]!.args.slice(-2)).toEqual(['--credential-dir', credentialDir]);
    expect(pod.containers[0]!.volumeMounts.map((m) => m.mountPath)).toContain(`${credentialDir}/shop-cert`);
    expect(pod.volumes.filter((v) => v.secret).map((v) => v.secret!.secretName)).toEqual(['shop-cert']);
  });
});
