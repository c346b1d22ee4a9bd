import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaError, CertificateAuthority, defaultRootTtlSeconds } from './ca.ts';
import { createCsr, generateRsaKeyPairSync, type KeyPairPem } from './pki.ts';
import { makePluggedCaDir, openssl, tempDir } from './testing.ts';
import { TokenError } from './token.ts';

const quiet = { logger: { debug() {}, info() {}, warn() {}, error() {}, with: () => quiet.logger } };
const bookinfo = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
// The checks through the openssl binary skip without it, saying how to install it.
const noOpenssl = needs({ tools: ['openssl'] }) !== undefined;
const itWithOpenssl = it.skipIf(noOpenssl);

let keys: KeyPairPem;
const dirs: Array<() => void> = [];
beforeAll(() => {
  keys = generateRsaKeyPairSync();
});
afterAll(() => {
  for (const remove of dirs) remove();
});

function scratch(): string {
  const d = tempDir();
  dirs.push(d.remove);
  return d.path;
}

/** Everything `openssl x509 -text` says about a certificate, for the checks below. */
function inspect(certPem: string, dir: string): string {
  const path = join(dir, `inspect-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(path, certPem);
  return openssl(['x509', '-text', '-noout', '-in', path]);
}

function expectWorkloadProfile(text: string, uri: string): void {
  const san = /X509v3 Subject Alternative Name:.*\n\s*(.*)\n/.exec(text);
  expect(san?.[1]?.trim(), 'exactly one SAN, the URI').toBe(`URI:${uri}`);
  expect(text).toMatch(/X509v3 Key Usage: critical\n\s*Digital Signature, Key Encipherment\n/);
  expect(text).toMatch(/X509v3 Extended Key Usage: \n\s*TLS Web Server Authentication, TLS Web Client Authentication\n/);
  expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s*CA:FALSE\n/);
}

describe('self-signed CA', () => {
  let dir: string;
  let ca: CertificateAuthority;
  beforeAll(async () => {
    dir = scratch();
    ca = await CertificateAuthority.open(join(dir, 'ca'), quiet);
  });

  itWithOpenssl('generates a 10-year root on first start and persists it in the cacerts layout', async () => {
    expect(ca.kind).toBe('self-signed');
    expect(ca.trustDomain).toBe('cluster.local');
    for (const f of ['root-cert.pem', 'ca-cert.pem', 'ca-key.pem', 'cert-chain.pem']) expect(statSync(join(dir, 'ca', f)).isFile()).toBe(true);
    expect(statSync(join(dir, 'ca', 'ca-key.pem')).mode & 0o777).toBe(0o600);
    const root = new X509Certificate(readFileSync(join(dir, 'ca', 'root-cert.pem')));
    expect(root.ca).toBe(true);
    expect(root.subject).toBe('O=cluster.local');
    expect((Date.parse(root.validTo) - Date.parse(root.validFrom)) / 1000).toBe(defaultRootTtlSeconds);
    const text = inspect(ca.rootCertPem, dir);
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Certificate Sign/);

    const again = await CertificateAuthority.open(join(dir, 'ca'), quiet);
    expect(again.rootCertPem).toBe(ca.rootCertPem);
  });

  itWithOpenssl('issues a workload certificate that openssl verifies, with Istio’s profile and a 24 h default TTL', () => {
    const issued = ca.sign(createCsr(bookinfo, keys), { identity: bookinfo });
    expect(issued.chain).toHaveLength(2);
    expect(issued.chain[1]).toBe(ca.roots[0]);
    writeFileSync(join(dir, 'leaf.pem'), issued.certificatePem);
    const verified = openssl(['verify', '-CAfile', join(dir, 'ca', 'root-cert.pem'), '-untrusted', join(dir, 'ca', 'cert-chain.pem'), join(dir, 'leaf.pem')]);
    expect(verified.trim()).toBe(`${join(dir, 'leaf.pem')}: OK`);
    const text = inspect(issued.certificatePem, dir);
    expectWorkloadProfile(text, bookinfo);
    const notBefore = Date.parse(/Not Before: (.*)\n/.exec(text)![1]!);
    const notAfter = Date.parse(/Not After : (.*)\n/.exec(text)![1]!);
    expect((notAfter - notBefore) / 1000).toBe(24 * 3600);
    expect(issued.notAfter.getTime() - issued.notBefore.getTime()).toBe(24 * 3600 * 1000);
    // the certified key is the CSR's
    expect(new X509Certificate(issued.certificatePem).publicKey.export({ type: 'spki', format: 'pem' })).toBe(keys.publicKeyPem);
  });

  it('honours a requested TTL, uses the default for 0, and refuses one above the maximum (Istio’s TTL_ERROR)', async () => {
    const short = ca.sign(createCsr(bookinfo, keys), { ttlSeconds: 20 });
    expect((short.notAfter.getTime() - short.notBefore.getTime()) / 1000).toBe(20);
    const dflt = ca.sign(createCsr(bookinfo, keys), { ttlSeconds: 0 });
    expect((dflt.notAfter.getTime() - dflt.notBefore.getTime()) / 1000).toBe(86400);
    const capped = new CertificateAuthority(
      { caCertPem: ca.caCertPem, caKeyPem: readFileSync(join(dir, 'ca', 'ca-key.pem'), 'utf8'), rootCertPem: ca.rootCertPem },
      { ...quiet, maxCertTtlSeconds: 3600, defaultCertTtlSeconds: 600 },
    );
    const err = (() => {
      try {
        capped.sign(createCsr(bookinfo, keys), { ttlSeconds: 3601 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CaError);
    expect((err as CaError).type).toBe('TTL_ERROR');
    expect((err as CaError).grpcStatus).toBe(3);
    expect(() => ca.sign(createCsr(bookinfo, keys), { ttlSeconds: 91 * 86400 })).toThrow(/greater than the max allowed TTL/);
  });

  itWithOpenssl('validates CSRs: parse, signature, exactly one SPIFFE URI SAN in the trust domain, the caller’s identity', () => {
    const type = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof CaError ? `${e.type}: ${e.message}` : String(e);
      }
      return 'signed';
    };
    expect(type(() => ca.sign('not a csr'))).toMatch(/^CSR_ERROR/);
    const csr = createCsr(bookinfo, keys);
    // Flip a byte inside the signature (the end of the DER): the CSR still parses but must not verify.
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(type(() => ca.sign(tampered))).toMatch(/^CSR_ERROR: CSR signature is invalid/);
    expect(type(() => ca.sign(createCsr('https://example.com/x', keys)))).toMatch(/^ID_ERROR: .*not a SPIFFE ID/);
    expect(type(() => ca.sign(createCsr('spiffe://other.domain/ns/a/sa/b', keys)))).toMatch(/^ID_ERROR: .*outside trust domain/);
    expect(type(() => ca.sign(createCsr(bookinfo, keys), { identity: 'spiffe://cluster.local/ns/default/sa/ratings' }))).toMatch(/^IDENTITY_MISMATCH/);

    // CSRs made by openssl: no SAN, two URI SANs, and a good one.
    writeFileSync(join(dir, 'wl-key.pem'), keys.privateKeyPem);
    const req = (name: string, ...ext: string[]) => {
      openssl(['req', '-new', '-key', 'wl-key.pem', '-subj', '/O=test', ...ext.flatMap((e) => ['-addext', e]), '-out', name], dir);
      return readFileSync(join(dir, name), 'utf8');
    };
    expect(type(() => ca.sign(req('none.csr')))).toMatch(/^ID_ERROR: CSR must have exactly one URI SAN, it has 0/);
    expect(type(() => ca.sign(req('two.csr', `subjectAltName=URI:${bookinfo},URI:spiffe://cluster.local/ns/default/sa/x`)))).toMatch(/it has 2/);
    expect(type(() => ca.sign(req('good.csr', `subjectAltName=URI:${bookinfo}`)))).toBe('signed');

    // Keys forge cannot handle, and small keys.
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    writeFileSync(join(dir, 'ec-key.pem'), ec.privateKey);
    openssl(['req', '-new', '-key', 'ec-key.pem', '-subj', '/O=test', '-addext', `subjectAltName=URI:${bookinfo}`, '-out', 'ec.csr'], dir);
    expect(type(() => ca.sign(readFileSync(join(dir, 'ec.csr'), 'utf8')))).toMatch(/^CSR_ERROR: .*not RSA/);
    const small = generateRsaKeyPairSync(1024);
    expect(type(() => ca.sign(createCsr(bookinfo, small)))).toMatch(/^CSR_ERROR: CSR key is 1024 bits/);
  });

  it('issues bootstrap tokens that name an identity and expire', () => {
    let now = Date.now();
    const clocked = new CertificateAuthority(
      { caCertPem: ca.caCertPem, caKeyPem: readFileSync(join(dir, 'ca', 'ca-key.pem'), 'utf8'), rootCertPem: ca.rootCertPem },
      { ...quiet, now: () => now },
    );
    const token = clocked.issueBootstrapToken('default', 'bookinfo-productpage', 60);
    expect(clocked.verifyBootstrapToken(token)).toBe(bookinfo);
    expect(ca.verifyBootstrapToken(token)).toBe(bookinfo);
    const [h, c, s] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(c, 'base64url').toString()), sub: 'spiffe://cluster.local/ns/kube-system/sa/admin' })).toString('base64url');
    expect(() => clocked.verifyBootstrapToken(`${h}.${forged}.${s}`)).toThrow(TokenError);
    now += 61_000;
    expect(() => clocked.verifyBootstrapToken(token)).toThrow(/expired/);
  });

  it('writes the root certificate for trust distribution', async () => {
    const path = join(dir, 'dist', 'nested', 'root-cert.pem');
    await ca.writeRootCert(path);
    expect(readFileSync(path, 'utf8')).toBe(ca.rootCertPem);
  });
});

describe.skipIf(noOpenssl)('plug-in CA (Istio cacerts made with openssl)', () => {
  let dir: string;
  let ca: CertificateAuthority;
  beforeAll(async () => {
    dir = scratch();
    makePluggedCaDir(dir);
    ca = await CertificateAuthority.open(dir, quiet);
  }, 30_000);

  it('signs with the intermediate and includes it in issued chains; openssl verifies the leaf', async () => {
    expect(ca.kind).toBe('plugged');
    expect(ca.intermediates).toHaveLength(1);
    const issued = ca.sign(createCsr(bookinfo, keys));
    expect(issued.chain).toHaveLength(3);
    expect(new X509Certificate(issued.chain[1]!).subject).toContain('CN=Intermediate CA');
    expect(new X509Certificate(issued.chain[2]!).subject).toContain('CN=Root CA');
    writeFileSync(join(dir, 'leaf.pem'), issued.certificatePem);
    expect(openssl(['verify', '-CAfile', 'root-cert.pem', '-untrusted', 'cert-chain.pem', 'leaf.pem'], dir).trim()).toBe('leaf.pem: OK');
    // Without the intermediate the leaf does not verify: the chain really goes through it.
    expect(() => openssl(['verify', '-CAfile', 'root-cert.pem', 'leaf.pem'], dir)).toThrow(/unable to get local issuer certificate/);
    expectWorkloadProfile(inspect(issued.certificatePem, dir), bookinfo);
    // The issuer name is the intermediate's subject, byte for byte.
    expect(new X509Certificate(issued.certificatePem).issuer).toBe(new X509Certificate(ca.caCertPem).subject);
    // the files were only read
    expect(readFileSync(join(dir, 'root-cert.pem'), 'utf8')).toBe(ca.rootCertPem);
  });

  it('refuses a cacerts directory whose key does not match, or whose chain does not reach the root', async () => {
    const bad = scratch();
    makePluggedCaDir(bad);
    writeFileSync(join(bad, 'ca-key.pem'), keys.privateKeyPem);
    await expect(CertificateAuthority.open(bad, quiet)).rejects.toThrow(/does not match/);
    const other = scratch();
    makePluggedCaDir(other);
    writeFileSync(join(other, 'root-cert.pem'), readFileSync(join(dir, 'root-cert.pem')));
    writeFileSync(join(other, 'cert-chain.pem'), readFileSync(join(other, 'ca-cert.pem')));
    await expect(CertificateAuthority.open(other, quiet)).rejects.toThrow(/does not chain to root-cert.pem/);
    // Two cacerts directories are four RSA keys made by openssl: seconds when npm test loads every core.
  }, 30_000);
});
