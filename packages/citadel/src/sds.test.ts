import { join } from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import { createSdsClient, type DiscoveryResponse__Output, decodeAny, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './ca.ts';
import { issueWorkloadSecret, type WorkloadSecret } from './cert-manager.ts';
import { silentLogger } from '@weft/model';
import { SdsServer } from './sds.ts';
import { captureLogger, FixedSource, sdsReader, tempDir } from './testing.ts';

const node = { id: 'sidecar~10.1.0.7~productpage-v1-abc.default~default.svc.cluster.local', cluster: 'productpage.default' };

let dir: ReturnType<typeof tempDir>;
let ca: CertificateAuthority;
let first: WorkloadSecret;
let second: WorkloadSecret;
beforeAll(async () => {
  dir = tempDir();
  ca = new CertificateAuthority(await CertificateAuthority.generateRoot(), { logger: silentLogger });
  first = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'bookinfo-productpage' }, { version: '1' });
  second = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'bookinfo-productpage' }, { version: '2' });
});
afterAll(() => dir.remove());

describe('SDS server', () => {
  it('serves default and ROOTCA over a unix socket, decodable as Envoy Secrets, with ACK/NACK and pushes', async () => {
    const source = new FixedSource();
    const log = captureLogger('sds');
    const sds = await SdsServer.start({ source, address: `unix:${join(dir.path, 'var/run/secrets/workload-spiffe-uds/socket')}`, logger: log.logger });
    const client = createSdsClient(sds.address, credentials.createInsecure());
    try {
      const stream = client.StreamSecrets();
      const r = sdsReader(stream);
      stream.write({ node, resource_names: ['default'], type_url: TypeUrl.Secret });
      // Nothing until the workload has a certificate; then it is pushed.
      expect(await r.none(150)).toBe(true);
      source.set(first);
      const res1 = await r.next();
      expect(res1.version_info).toBe('1');
      expect(res1.type_url).toBe(TypeUrl.Secret);
      expect(res1.nonce).not.toBe('');
      expect(res1.resources).toHaveLength(1);
      const secret = decodeAny(res1.resources[0]!, TypeUrl.Secret);
      expect(secret.name).toBe('default');
      expect(secret.type).toBe('tls_certificate');
      expect(secret.tls_certificate?.certificate_chain?.inline_bytes?.toString()).toBe(first.certChainPem);
      expect(secret.tls_certificate?.private_key?.inline_bytes?.toString()).toBe(first.privateKeyPem);

      // ACK: nothing new is sent.
      stream.write({ node, version_info: '1', response_nonce: res1.nonce, resource_names: ['default'], type_url: TypeUrl.Secret });
      expect(await r.none()).toBe(true);
      expect(sds.streamStatus()[0]).toMatchObject({ nodeId: node.id, ackedVersion: '1', sentVersion: '1', resourceNames: ['default'] });

      // A request carrying an old nonce is stale and ignored, even with other names.
      stream.write({ node, version_info: '1', response_nonce: 'not-the-last-nonce', resource_names: ['ROOTCA'], type_url: TypeUrl.Secret });
      expect(await r.none()).toBe(true);

      // Adding ROOTCA (with the current nonce) gets both resources.
      stream.write({ node, version_info: '1', response_nonce: res1.nonce, resource_names: ['default', 'ROOTCA'], type_url: TypeUrl.Secret });
      const res2 = await r.next();
      const byName = new Map(res2.resources.map((a) => [decodeAny(a, TypeUrl.Secret).name, decodeAny(a, TypeUrl.Secret)]));
      expect([...byName.keys()].sort()).toEqual(['ROOTCA', 'default']);
      expect(byName.get('ROOTCA')?.validation_context?.trusted_ca?.inline_bytes?.toString()).toBe(ca.rootCertPem);

      // NACK: logged and recorded; nothing is resent until a new certificate exists.
      stream.write({
        node,
        version_info: '1',
        response_nonce: res2.nonce,
        resource_names: ['default', 'ROOTCA'],
        type_url: TypeUrl.Secret,
        error_detail: { code: 3, message: 'cannot load certificate' },
      });
      expect(await r.none()).toBe(true);
      expect(sds.streamStatus()[0]?.nacked).toEqual({ version: '1', nonce: res2.nonce, message: 'cannot load certificate' });
      expect(log.lines.find((l) => l.msg === 'secrets NACKed')).toMatchObject({ level: 'warn', node: node.id, error: 'cannot load certificate' });

      // Rotation: the new certificate is pushed with a new version and nonce.
      source.set(second);
      const res3 = await r.next();
      expect(res3.version_info).toBe('2');
      expect(res3.nonce).not.toBe(res2.nonce);
      const rotated = res3.resources.map((a) => decodeAny(a, TypeUrl.Secret)).find((s) => s.name === 'default');
      expect(rotated?.tls_certificate?.certificate_chain?.inline_bytes?.toString()).toBe(second.certChainPem);
      stream.end();
    } finally {
      client.close();
      await sds.close();
    }
  });

  it('answers FetchSecrets, refuses other types on a stream, and listens on TCP too', async () => {
    const source = new FixedSource();
    const sds = await SdsServer.start({ source, address: '127.0.0.1:0', logger: silentLogger });
    expect(sds.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(sds.address).not.toBe('127.0.0.1:0');
    const client = createSdsClient(sds.address, credentials.createInsecure());
    try {
      const fetch = () =>
        new Promise<DiscoveryResponse__Output | number>((resolve) =>
          client.FetchSecrets({ node, resource_names: ['ROOTCA', 'default'], type_url: TypeUrl.Secret }, (err, res) => resolve(err ? err.code : res!)),
        );
      expect(await fetch()).toBe(status.UNAVAILABLE);
      source.set(first);
      const res = await fetch();
      if (typeof res === 'number') throw new Error(`FetchSecrets failed: ${res}`);
      expect(res.resources.map((a) => decodeAny(a, TypeUrl.Secret).name)).toEqual(['ROOTCA', 'default']);

      const stream = client.StreamSecrets();
      const r = sdsReader(stream);
      stream.write({ node, resource_names: ['default'], type_url: TypeUrl.Cluster });
      await expect(r.next(2000)).rejects.toThrow(/INVALID_ARGUMENT|SDS serves/);
    } finally {
      client.close();
      await sds.close();
    }
  });
});
