import { describe, expect, it } from 'vitest';
import { NodeIdError, nodeId, nodeIdWorkload, parseNodeId, tryParseNodeId } from './node-id.ts';

describe('node IDs', () => {
  it('builds the agent’s form', () => {
    expect(nodeId({ type: 'sidecar', ip: '10.1.1.2', pod: 'reviews-v1-abc', namespace: 'default' })).toBe('sidecar~10.1.1.2~reviews-v1-abc.default~default.svc.cluster.local');
    expect(nodeId({ type: 'router', ip: '::1', pod: 'gw', namespace: 'istio-system', domainSuffix: 'example.internal' })).toBe('router~::1~gw.istio-system~istio-system.svc.example.internal');
  });

  it('parses what it builds, namespace and domain suffix included', () => {
    const id = parseNodeId('sidecar~10.1.1.2~reviews-v1-abc.default~default.svc.cluster.local');
    expect(id).toEqual({ type: 'sidecar', ipAddress: '10.1.1.2', podName: 'reviews-v1-abc', namespace: 'default', dnsDomain: 'default.svc.cluster.local', domainSuffix: 'cluster.local' });
    expect(parseNodeId('router~fd00::1~gw.istio-system~istio-system.svc.example.internal').domainSuffix).toBe('example.internal');
  });

  it('takes the namespace from the pod part when the DNS domain has none (Istio’s fallback)', () => {
    expect(parseNodeId('sidecar~10.0.0.1~app.prod~local')).toMatchObject({ podName: 'app', namespace: 'prod', domainSuffix: undefined });
  });

  it('says what is wrong', () => {
    expect(() => parseNodeId('sidecar~10.0.0.1~app.default')).toThrow(/has 3 parts separated by "~", not 4/);
    expect(() => parseNodeId('waypoint~10.0.0.1~a.b~b.svc.cluster.local')).toThrow(/type "waypoint" is neither sidecar nor router/);
    expect(() => parseNodeId('sidecar~not-an-ip~a.b~b.svc.cluster.local')).toThrow(NodeIdError);
    expect(parseNodeId('sidecar~not-an-ip~a.b~b.svc.cluster.local', { requireIp: false }).ipAddress).toBe('not-an-ip');
    expect(() => parseNodeId('sidecar~10.0.0.1~~b.svc.cluster.local')).toThrow(/pod part is empty/);
    expect(() => parseNodeId('sidecar~10.0.0.1~app~local')).toThrow(/no namespace/);
  });

  it('shows the workload part for display', () => {
    expect(nodeIdWorkload('sidecar~127.0.0.14~reviews-v2.default~default.svc.cluster.local')).toBe('reviews-v2.default');
    expect(nodeIdWorkload('grpc-client-1')).toBe('grpc-client-1');
    expect(tryParseNodeId('grpc-client-1')).toBeUndefined();
    expect(tryParseNodeId('router~x~gw.istio-system~istio-system.svc.cluster.local')).toMatchObject({ type: 'router', podName: 'gw', namespace: 'istio-system' });
  });
});
