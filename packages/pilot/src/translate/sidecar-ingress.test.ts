// A Sidecar's `ingress` listeners as the sidecar receives them: its inbound ports are exactly the
// listed ones, each sent to its `defaultEndpoint` (inbound|<port>|| with that address), whatever
// ports the services selecting the workload declare.
import { TypeUrl } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { parseDefaultEndpoint } from './inbound.ts';
import { generate, pushFrom, sidecar } from './test-support.ts';

const CDS = TypeUrl.Cluster;
const LDS = TypeUrl.Listener;

const service = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.shop.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8000}]
  resolution: STATIC
  location: MESH_INTERNAL
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-1, namespace: shop}
spec: {address: 10.4.0.1, labels: {app: api}}
`;

const ingressSidecar = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: api, namespace: shop}
spec:
  workloadSelector: {labels: {app: api}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  - port: {number: 9443, protocol: TCP, name: tcp}
    defaultEndpoint: unix:///var/run/api.sock
`;

const api = () => sidecar('10.4.0.1', 'api-1', { app: 'api' }, 'shop');

function inbound(texts: string[]) {
  const clusters = generate(pushFrom(texts), api(), CDS);
  const out: Record<string, string> = {};
  for (const [name, c] of clusters) {
    if (!name.startsWith('inbound|') || name.startsWith('inbound|0')) continue;
    const a = c.load_assignment?.endpoints[0]?.lb_endpoints[0]?.endpoint?.address;
    out[name] = a?.pipe ? `unix://${a.pipe.path}` : `${a?.socket_address?.address}:${a?.socket_address?.port_value}`;
  }
  return out;
}

function inboundChainPorts(texts: string[]): number[] {
  const l = generate(pushFrom(texts), api(), LDS, ['virtualInbound']).get('virtualInbound');
  const ports = new Set((l?.filter_chains ?? []).map((c) => c.filter_chain_match?.destination_port?.value ?? 0).filter((p) => p !== 0 && p !== 15006));
  return [...ports].sort((a, b) => a - b);
}

describe('Sidecar ingress listeners', () => {
  it('without them, the inbound port is the service target port, sent to loopback', () => {
    expect(inbound([service])).toEqual({ 'inbound|8000||': '127.0.0.1:8000' });
    expect(inboundChainPorts([service])).toEqual([8000]);
  });

  it('with them, exactly their ports, each to its defaultEndpoint (an address and port, or a unix socket)', () => {
    expect(inbound([service, ingressSidecar])).toEqual({ 'inbound|9080||': '127.0.0.1:8080', 'inbound|9443||': 'unix:///var/run/api.sock' });
    expect(inboundChainPorts([service, ingressSidecar])).toEqual([9080, 9443]);
  });

  it('reads defaultEndpoint forms as Istio does', () => {
    expect(parseDefaultEndpoint('127.0.0.1:8080', 9080, '10.4.0.1')).toEqual({ address: '127.0.0.1', port: 8080 });
    expect(parseDefaultEndpoint('0.0.0.0:8080', 9080, '10.4.0.1')).toEqual({ address: '10.4.0.1', port: 8080 });
    expect(parseDefaultEndpoint('[::1]:8080', 9080, undefined)).toEqual({ address: '::1', port: 8080 });
    expect(parseDefaultEndpoint(':8080', 9080, undefined)).toEqual({ address: '127.0.0.1', port: 8080 });
    expect(parseDefaultEndpoint(undefined, 9080, undefined)).toEqual({ address: '127.0.0.1', port: 9080 });
    expect(parseDefaultEndpoint('unix:///run/a.sock', 9080, undefined)).toEqual({ address: 'unix:///run/a.sock', port: 0 });
  });
});
