import { decodeMessage, encodeMessage } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { decodeMx, decodeStruct, encodeMx, encodeStruct, PeerCache, structToWorkload, workloadToStruct } from './mx.ts';
import { localWorkload, type WorkloadInfo } from './workload.ts';

const productpage: WorkloadInfo = localWorkload({
  type: 'sidecar',
  ip: '10.0.0.5',
  pod: 'productpage-v1-7d9c',
  namespace: 'default',
  workloadName: 'productpage-v1',
  clusterId: 'client-cluster',
  labels: { app: 'productpage', version: 'v1', 'service.istio.io/canonical-name': 'productpage-v1', 'service.istio.io/canonical-revision': 'version-1' },
});

describe('metadata exchange Struct codec', () => {
  it('writes what protobuf decodes as the same google.protobuf.Struct, and reads protobuf output back', () => {
    const value = { NAME: 'a', LABELS: { app: 'x', 'service.istio.io/canonical-name': 'x' }, N: 3.5, B: true, L: ['p', 2, null], Z: null };
    const mine = encodeStruct(value);
    const decoded = decodeMessage('google.protobuf.Struct', mine) as { fields: Record<string, { kind: string }> };
    expect(Object.keys(decoded.fields).sort()).toEqual(['B', 'L', 'LABELS', 'N', 'NAME', 'Z']);
    expect(decoded.fields.NAME).toMatchObject({ kind: 'stringValue', stringValue: 'a' });
    expect(decoded.fields.N).toMatchObject({ kind: 'numberValue', numberValue: 3.5 });
    expect(decoded.fields.B).toMatchObject({ kind: 'boolValue', boolValue: true });
    expect(decoded.fields.LABELS).toMatchObject({ kind: 'structValue', structValue: { fields: { app: { stringValue: 'x' } } } });

    const theirs = encodeMessage('google.protobuf.Struct', {
      fields: {
        WORKLOAD_NAME: { stringValue: 'ratings-v1' },
        LABELS: { structValue: { fields: { app: { stringValue: 'ratings' } } } },
        COUNT: { numberValue: 7 },
        LIST: { listValue: { values: [{ stringValue: 'q' }, { boolValue: false }] } },
      },
    });
    expect(decodeStruct(theirs)).toEqual({ WORKLOAD_NAME: 'ratings-v1', LABELS: { app: 'ratings' }, COUNT: 7, LIST: ['q', false] });
  });

  it('serializes deterministically (map keys sorted), as Istio does', () => {
    expect(encodeStruct({ b: '1', a: '2' }).equals(encodeStruct({ a: '2', b: '1' }))).toBe(true);
  });

  it('carries the fields Istio exchanges: NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, LABELS (canonical, app, version)', () => {
    expect(workloadToStruct(productpage)).toEqual({
      NAME: 'productpage-v1-7d9c',
      NAMESPACE: 'default',
      WORKLOAD_NAME: 'productpage-v1',
      CLUSTER_ID: 'client-cluster',
      LABELS: { app: 'productpage', version: 'v1', 'service.istio.io/canonical-name': 'productpage-v1', 'service.istio.io/canonical-revision': 'version-1' },
    });
    const header = encodeMx(productpage);
    expect(header).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(decodeMx(header)).toEqual(productpage);
    // Istio decodes without padding too.
    expect(decodeMx(header.replace(/=+$/, ''))).toEqual(productpage);
  });

  it('reads a header Istio would send (serialized with the real protobuf runtime)', () => {
    const bytes = encodeMessage('google.protobuf.Struct', {
      fields: {
        NAME: { stringValue: 'ratings-v1-abc' },
        NAMESPACE: { stringValue: 'bookinfo' },
        WORKLOAD_NAME: { stringValue: 'ratings-v1' },
        CLUSTER_ID: { stringValue: 'Kubernetes' },
        OWNER: { stringValue: 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/ratings-v1' },
        LABELS: { structValue: { fields: { app: { stringValue: 'ratings' }, version: { stringValue: 'v1' }, 'service.istio.io/canonical-name': { stringValue: 'ratings' } } } },
        // Fields telemetry does not read are skipped.
        PLATFORM_METADATA: { structValue: { fields: { gcp_project: { stringValue: 'p' } } } },
      },
    });
    expect(decodeMx(bytes.toString('base64'))).toEqual({
      instance: 'ratings-v1-abc',
      namespace: 'bookinfo',
      workloadName: 'ratings-v1',
      cluster: 'Kubernetes',
      canonicalName: 'ratings',
      canonicalRevision: '',
      app: 'ratings',
      version: 'v1',
      owner: 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/ratings-v1',
    });
  });

  it('refuses what is not a Struct instead of inventing a peer', () => {
    expect(decodeMx('not base64 of anything!')).toBeUndefined();
    expect(decodeMx(Buffer.from([0x0a, 0x05, 0x01]).toString('base64'))).toBeUndefined();
    expect(structToWorkload({}).workloadName).toBe('');
  });

  it('decodes a peer once and hands back the same object; the cache stays bounded', () => {
    const cache = new PeerCache(8);
    const header = encodeMx(productpage);
    const a = cache.lookup('sidecar~10.0.0.5~productpage', header);
    const b = cache.lookup('sidecar~10.0.0.5~productpage', header);
    expect(a).toBe(b);
    for (let i = 0; i < 20; i++) cache.lookup(`peer-${i}`, header);
    expect(cache.size).toBeLessThanOrEqual(8);
  });
});

describe('local workload', () => {
  it('defaults the canonical service labels as Istio’s injector does', () => {
    const w = localWorkload({ type: 'sidecar', ip: '127.0.0.2', pod: 'reviews-v2-1', namespace: 'default', labels: { app: 'reviews', version: 'v2' } });
    expect(w).toMatchObject({ workloadName: 'reviews', canonicalName: 'reviews', canonicalRevision: 'v2', app: 'reviews', version: 'v2', cluster: 'Kubernetes' });
    const bare = localWorkload({ type: 'sidecar', ip: '127.0.0.3', pod: 'job-1', namespace: 'batch', workloadName: 'job' });
    expect(bare).toMatchObject({ canonicalName: 'job', canonicalRevision: 'latest', app: '', version: '' });
  });
});
