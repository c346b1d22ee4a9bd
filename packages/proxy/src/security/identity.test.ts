// The proxy's workload identity against a real CA service over gRPC/TLS (citadel's CaServer, as
// weftd serves it on 15012): first certificate with a bootstrap token read from a file, renewals
// with the current certificate, and each certificate served as new `default`/`ROOTCA` secrets.
import { RootCertSecret, WorkloadCertSecret } from '@weft/mesh';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaServer, CertificateAuthority } from '@weft/citadel';
import { silentLogger } from '@weft/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkIdentityOptions, proxyIdentity, WorkloadIdentity } from './identity.ts';

let ca: CertificateAuthority;
let server: CaServer;
let dir: string;
let rootFile: string;

beforeAll(async () => {
  ca = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }), { logger: silentLogger });
  server = await CaServer.start({ ca, port: 0, logger: silentLogger });
  dir = mkdtempSync(join(tmpdir(), 'weft-identity-'));
  rootFile = join(dir, 'root-cert.pem');
  writeFileSync(rootFile, ca.rootCertPem);
}, 30_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

const pem = (b: Uint8Array | Buffer | string | undefined) => Buffer.from(b ?? '').toString('utf8');

describe('WorkloadIdentity', () => {
  it('gets a certificate for the proxy SPIFFE ID with a bootstrap token and serves it as SDS default and ROOTCA', async () => {
    const tokenFile = join(dir, 'reviews.token');
    writeFileSync(tokenFile, `${ca.issueBootstrapToken('bookinfo', 'reviews')}\n`);
    const id = proxyIdentity({ address: server.address, rootCertFile: rootFile, tokenFile }, 'bookinfo', 'reviews', silentLogger);
    expect(id.secret(WorkloadCertSecret)).toBeUndefined();
    await id.start();
    try {
      const cert = id.secret(WorkloadCertSecret)?.tls_certificate;
      const leaf = new X509Certificate(pem(cert?.certificate_chain?.inline_bytes));
      expect(leaf.subjectAltName).toBe('URI:spiffe://cluster.local/ns/bookinfo/sa/reviews');
      expect(leaf.verify(new X509Certificate(ca.rootCertPem).publicKey)).toBe(true);
      expect(pem(cert?.private_key?.inline_bytes)).toContain('PRIVATE KEY');
      expect(pem(id.secret(RootCertSecret)?.validation_context?.trusted_ca?.inline_bytes)).toBe(ca.rootCertPem);
      expect(id.status()).toMatchObject({ spiffeId: 'spiffe://cluster.local/ns/bookinfo/sa/reviews', serialNumber: leaf.serialNumber, rotations: 0 });
    } finally {
      id.stop();
    }
  }, 30_000);

  it('rotates before expiry: every certificate is a new pair of secret objects, listeners are told', async () => {
    const tokenFile = join(dir, 'ratings.token');
    writeFileSync(tokenFile, ca.issueBootstrapToken('default', 'ratings'));
    const id = new WorkloadIdentity({
      caAddress: server.address,
      rootCertPem: ca.rootCertPem,
      tokenFile,
      trustDomain: 'cluster.local',
      namespace: 'default',
      serviceAccount: 'ratings',
      ttlSeconds: 4,
      logger: silentLogger,
    });
    let changes = 0;
    id.onChange(() => changes++);
    await id.start();
    try {
      const first = id.secret(WorkloadCertSecret);
      const firstSerial = id.status().serialNumber;
      const deadline = Date.now() + 15_000;
      while (id.status().rotations < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(id.status().rotations).toBeGreaterThanOrEqual(2);
      expect(changes).toBe(id.status().rotations + 1);
      expect(id.secret(WorkloadCertSecret)).not.toBe(first);
      expect(id.status().serialNumber).not.toBe(firstSerial);
      // Renewals authenticate with the certificate: the token file may be gone by now.
      rmSync(tokenFile);
      const before = id.status().rotations;
      while (id.status().rotations === before && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 100));
      expect(id.status().rotations).toBeGreaterThan(before);
    } finally {
      id.stop();
    }
  }, 30_000);

  it('refuses options it cannot use, saying why', () => {
    const base = { caAddress: '127.0.0.1:15012', rootCertPem: ca.rootCertPem, token: 't', trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sa' };
    expect(() => checkIdentityOptions({ ...base, caAddress: 'istiod' })).toThrow(/not host:port/);
    expect(() => checkIdentityOptions({ ...base, rootCertPem: 'hello' })).toThrow(/not a PEM certificate/);
    const { token: _, ...noToken } = base;
    expect(() => checkIdentityOptions(noToken)).toThrow(/bootstrap token/);
    expect(() => proxyIdentity({ address: '127.0.0.1:1', rootCertFile: join(dir, 'missing.pem'), tokenFile: 'x' }, 'default', 'sa', silentLogger)).toThrow(/cannot read the CA root certificate/);
  });
});
