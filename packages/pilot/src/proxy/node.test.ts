import { validateBootstrapConfig } from '@grpc/grpc-js-xds/build/src/xds-bootstrap.js';
import { WeftError } from '@weft/model';
import { decodeMessage, encodeMessage } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { parseNodeId, proxyFromNode } from './node.ts';

/** A node as it arrives at the server: encoded in a DiscoveryRequest by the client, decoded by Weft. */
function overTheWire(node: object) {
  const bytes = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { node } as never);
  return decodeMessage('envoy.service.discovery.v3.DiscoveryRequest', bytes).node!;
}

/** Node metadata as Istio's agent sends it, as a google.protobuf.Struct. */
function struct(json: Record<string, unknown>): { fields: Record<string, unknown> } {
  const value = (v: unknown): object => {
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    if (v && typeof v === 'object') return { structValue: struct(v as Record<string, unknown>) };
    return { nullValue: 'NULL_VALUE' };
  };
  return { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, value(v)])) };
}

function errorOf(f: () => unknown): WeftError {
  try {
    f();
  } catch (e) {
    if (e instanceof WeftError) return e;
    throw e;
  }
  throw new Error('expected a WeftError');
}

describe('parseNodeId', () => {
  it('reads sidecar and router ids', () => {
    expect(parseNodeId('sidecar~10.1.1.2~reviews-v1-abc.default~default.svc.cluster.local')).toEqual({
      type: 'sidecar',
      ipAddress: '10.1.1.2',
      podName: 'reviews-v1-abc',
      namespace: 'default',
      dnsDomain: 'default.svc.cluster.local',
      domainSuffix: 'cluster.local',
    });
    expect(parseNodeId('router~10.0.0.5~istio-ingressgateway-7d9f.istio-system~istio-system.svc.cluster.local')).toMatchObject({
      type: 'router',
      podName: 'istio-ingressgateway-7d9f',
      namespace: 'istio-system',
    });
    expect(parseNodeId('sidecar~fd00::1~vm-1.prod~prod.svc.cluster.local')).toMatchObject({ ipAddress: 'fd00::1', namespace: 'prod', podName: 'vm-1' });
  });

  it('rejects malformed ids with INVALID_ARGUMENT and says what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['reviews-v1', /has 1 part separated by "~", not 4/],
      ['sidecar~10.0.0.1~pod.default', /has 3 parts/],
      ['waypoint~10.0.0.1~pod.default~default.svc.cluster.local', /type "waypoint" is neither sidecar nor router/],
      ['sidecar~pod-ip~pod.default~default.svc.cluster.local', /"pod-ip" is not an IP address/],
      ['sidecar~10.0.0.1~~default.svc.cluster.local', /the pod part is empty/],
      ['sidecar~10.0.0.1~pod~local', /no namespace/],
    ];
    for (const [id, message] of cases) {
      const e = errorOf(() => parseNodeId(id));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.grpcStatus).toBe(3);
      expect(e.message).toMatch(message);
      expect(e.message).toContain(JSON.stringify(id));
    }
  });
});

describe('proxyFromNode', () => {
  it('reads an Envoy sidecar node with Istio agent metadata, as decoded off the wire', () => {
    const node = overTheWire({
      id: 'sidecar~10.1.1.2~reviews-v2-xyz.default~default.svc.cluster.local',
      metadata: struct({
        NAMESPACE: 'default',
        LABELS: { app: 'reviews', version: 'v2' },
        SERVICE_ACCOUNT: 'bookinfo-reviews',
        INSTANCE_IPS: '10.1.1.2,fd00::2',
        ISTIO_VERSION: '1.24.0',
        CLUSTER_ID: 'Kubernetes',
      }),
    });
    const proxy = proxyFromNode(node);
    expect(proxy).toEqual({
      id: 'sidecar~10.1.1.2~reviews-v2-xyz.default~default.svc.cluster.local',
      type: 'sidecar',
      ipAddresses: ['10.1.1.2', 'fd00::2'],
      podName: 'reviews-v2-xyz',
      namespace: 'default',
      dnsDomain: 'default.svc.cluster.local',
      labels: { app: 'reviews', version: 'v2' },
      metadata: expect.objectContaining({ ISTIO_VERSION: '1.24.0', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'reviews', version: 'v2' } }),
      generator: 'envoy',
      serviceAccount: 'bookinfo-reviews',
    });
  });

  it('takes the IP from the id when metadata has none, and the namespace from metadata over the id', () => {
    const proxy = proxyFromNode({ id: 'router~10.0.0.5~gw-1.istio-system~istio-system.svc.cluster.local', metadata: { NAMESPACE: 'gateways' } });
    expect(proxy).toMatchObject({ type: 'router', ipAddresses: ['10.0.0.5'], namespace: 'gateways', labels: {}, generator: 'envoy' });
    expect(proxy.serviceAccount).toBeUndefined();
  });

  it('accepts an id without an IP address when INSTANCE_IPS carries them (as Istio does)', () => {
    const proxy = proxyFromNode({ id: 'sidecar~unknown~vm.prod~prod.svc.cluster.local', metadata: { INSTANCE_IPS: ['10.9.0.1'] } });
    expect(proxy.ipAddresses).toEqual(['10.9.0.1']);
    expect(errorOf(() => proxyFromNode({ id: 'sidecar~unknown~vm.prod~prod.svc.cluster.local' })).message).toMatch(/not an IP address/);
    expect(errorOf(() => proxyFromNode({})).code).toBe('INVALID_ARGUMENT');
  });

  it('reads the node a proxyless gRPC client sends from its GRPC_XDS_BOOTSTRAP file', () => {
    // What grpc-js-xds does with the bootstrap file named by GRPC_XDS_BOOTSTRAP.
    const bootstrap = validateBootstrapConfig({
      xds_servers: [{ server_uri: 'localhost:15010', channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: {
        id: 'sidecar~10.1.1.7~ratings-grpc-1.shop~shop.svc.cluster.local',
        locality: {},
        metadata: { GENERATOR: 'grpc', NAMESPACE: 'shop', LABELS: { app: 'ratings' }, INSTANCE_IPS: '10.1.1.7', SERVICE_ACCOUNT: 'ratings' },
      },
    });
    const proxy = proxyFromNode(overTheWire(bootstrap.node));
    expect(proxy).toMatchObject({
      type: 'sidecar',
      generator: 'grpc',
      namespace: 'shop',
      podName: 'ratings-grpc-1',
      ipAddresses: ['10.1.1.7'],
      labels: { app: 'ratings' },
      serviceAccount: 'ratings',
    });
  });

  it('accepts any id from a proxyless gRPC client, taking the namespace from metadata or `default`', () => {
    const a = proxyFromNode({ id: 'my-grpc-client', metadata: struct({ GENERATOR: 'grpc' }) });
    expect(a).toMatchObject({ id: 'my-grpc-client', type: 'sidecar', generator: 'grpc', namespace: 'default', podName: 'my-grpc-client', ipAddresses: [], dnsDomain: 'default.svc.cluster.local' });
    const b = proxyFromNode({ id: 'client-7', metadata: { GENERATOR: 'grpc', NAMESPACE: 'shop', WORKLOAD_NAME: 'checkout' } });
    expect(b).toMatchObject({ namespace: 'shop', podName: 'checkout', dnsDomain: 'shop.svc.cluster.local' });
  });
});
