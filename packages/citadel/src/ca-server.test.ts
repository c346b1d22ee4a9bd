import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './ca.ts';
import { createCaClient, requestCertificate } from './ca-client.ts';
import type { PlatformTokenAuthenticator } from './caller-auth.ts';
import { CaServer, caServiceDefinition } from './ca-server.ts';
import { issueWorkloadSecret } from './cert-manager.ts';
import { CitadelMetrics } from './metrics.ts';
import { createCsr, generateRsaKeyPairSync, joinPem, type KeyPairPem } from './pki.ts';
import { spiffeIdOf } from './spiffe.ts';
import { captureLogger, tempDir } from './testing.ts';
import { TokenError } from './token.ts';

const ratings = 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings';
const reviews = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';

let dir: ReturnType<typeof tempDir>;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let server: CaServer;
let metrics: CitadelMetrics;
let log: ReturnType<typeof captureLogger>;
let keys: KeyPairPem;

beforeAll(async () => {
  dir = tempDir();
  log = captureLogger('citadel');
  ca = await CertificateAuthority.open(join(dir.path, 'ca'), { logger: log.logger });
  otherCa = await CertificateAuthority.open(join(dir.path, 'other'), { logger: log.logger });
  metrics = new CitadelMetrics();
  server = await CaServer.start({ ca, metrics, logger: log.logger, port: 0 });
  keys = generateRsaKeyPairSync();
});
afterAll(async () => {
  await server.close();
  dir.remove();
});

async function counter(name: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return m?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

function grpcCode(p: Promise<unknown>): Promise<number | string> {
  return p.then(
    () => 'OK',
    (e: ServiceError) => e.code,
  );
}

describe('IstioCertificateService over TLS', () => {
  it('serves with a certificate it issued itself for istiod.istio-system.svc, weftd, localhost and 127.0.0.1', () => {
    const serving = new X509Certificate(server.serving.current!.certChainPem);
    expect(serving.subjectAltName).toBe('DNS:istiod.istio-system.svc, DNS:weftd, DNS:localhost, IP Address:127.0.0.1');
    expect(serving.checkIssued(new X509Certificate(ca.caCertPem))).toBe(true);
  });

  it('signs a first CSR authenticated by a bootstrap token; the chain is leaf first, root last', async () => {
    const before = await counter('citadel_server_success_cert_issuance_count');
    const chain = await requestCertificate({
      address: server.address,
      rootCertPem: ca.rootCertPem,
      csrPem: createCsr(ratings, keys),
      ttlSeconds: 3600,
      credential: { kind: 'token', token: ca.issueBootstrapToken('default', 'bookinfo-ratings') },
    });
    expect(chain).toHaveLength(2);
    expect(spiffeIdOf(chain[0]!)).toBe(ratings);
    expect(chain[1]).toBe(ca.roots[0]);
    const leaf = new X509Certificate(chain[0]!);
    expect((Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000).toBe(3600);
    expect(await counter('citadel_server_success_cert_issuance_count')).toBe(before + 1);
    const line = log.lines.find((l) => l.msg === 'issued certificate' && l.identity === ratings);
    expect(line).toMatchObject({ level: 'info', scope: 'citadel', authn: 'token' });
  });

  it('renews over mTLS: the caller’s current certificate is its identity', async () => {
    const current = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'bookinfo-ratings' }, { ttlSeconds: 600 });
    const chain = await requestCertificate({
      address: server.address,
      rootCertPem: ca.rootCertPem,
      csrPem: createCsr(ratings, keys),
      credential: { kind: 'certificate', certChainPem: current.certChainPem, privateKeyPem: current.privateKeyPem },
    });
    expect(spiffeIdOf(chain[0]!)).toBe(ratings);
    expect(log.lines.some((l) => l.msg === 'issued certificate' && l.authn === 'mtls')).toBe(true);
  });

  it('refuses a CSR for a foreign identity with PERMISSION_DENIED, signs nothing, and logs it', async () => {
    const signed = await counter('citadel_server_success_cert_issuance_count');
    const received = await counter('citadel_server_csr_count');
    const byToken = grpcCode(
      requestCertificate({
        address: server.address,
        rootCertPem: ca.rootCertPem,
        csrPem: createCsr(reviews, keys),
        credential: { kind: 'token', token: ca.issueBootstrapToken('default', 'bookinfo-ratings') },
      }),
    );
    expect(await byToken).toBe(status.PERMISSION_DENIED);
    const current = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'bookinfo-ratings' });
    const byCert = grpcCode(
      requestCertificate({
        address: server.address,
        rootCertPem: ca.rootCertPem,
        csrPem: createCsr(reviews, keys),
        credential: { kind: 'certificate', certChainPem: current.certChainPem, privateKeyPem: current.privateKeyPem },
      }),
    );
    expect(await byCert).toBe(status.PERMISSION_DENIED);
    expect(await counter('citadel_server_success_cert_issuance_count')).toBe(signed);
    expect(await counter('citadel_server_csr_count')).toBe(received + 2);
    const refusals = log.lines.filter((l) => l.msg === 'CSR refused: identity differs from the caller');
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatchObject({ level: 'warn', caller: ratings, error: 'IDENTITY_MISMATCH', code: 'PERMISSION_DENIED' });
    expect(String(refusals[0]!.reason)).toContain(reviews);
    const metricsText = await metrics.registry.metrics();
    expect(metricsText).toMatch(/citadel_server_csr_refused_count\{reason="permission_denied"\} 2/);
  });

  it('refuses unauthenticated calls with UNAUTHENTICATED: no credential, a bad token, a certificate from another root', async () => {
    const signed = await counter('citadel_server_success_cert_issuance_count');
    const authnFailures = await counter('citadel_server_authentication_failure_count');
    const csrPem = createCsr(ratings, keys);
    // No credential at all (a raw client: the request carries no authorization metadata).
    const client = createCaClient(server.address, credentials.createSsl(Buffer.from(ca.rootCertPem)));
    const bare = await new Promise<number | string>((resolve) => {
      client.CreateCertificate({ csr: csrPem }, new Metadata(), (err) => resolve(err ? err.code : 'OK'));
    });
    client.close();
    expect(bare).toBe(status.UNAUTHENTICATED);
    const good = ca.issueBootstrapToken('default', 'bookinfo-ratings');
    const at = good.length - 20;
    const badToken = `${good.slice(0, at)}${good[at] === 'A' ? 'B' : 'A'}${good.slice(at + 1)}`;
    expect(await grpcCode(requestCertificate({ address: server.address, rootCertPem: ca.rootCertPem, csrPem, credential: { kind: 'token', token: badToken } }))).toBe(
      status.UNAUTHENTICATED,
    );
    const otherToken = otherCa.issueBootstrapToken('default', 'bookinfo-ratings');
    expect(await grpcCode(requestCertificate({ address: server.address, rootCertPem: ca.rootCertPem, csrPem, credential: { kind: 'token', token: otherToken } }))).toBe(
      status.UNAUTHENTICATED,
    );
    const foreign = await issueWorkloadSecret(otherCa, { namespace: 'default', serviceAccount: 'bookinfo-ratings' });
    const foreignCall = requestCertificate({
      address: server.address,
      rootCertPem: ca.rootCertPem,
      csrPem,
      credential: { kind: 'certificate', certChainPem: foreign.certChainPem, privateKeyPem: foreign.privateKeyPem },
    });
    expect(await grpcCode(foreignCall)).toBe(status.UNAUTHENTICATED);
    expect(await counter('citadel_server_success_cert_issuance_count')).toBe(signed);
    expect(await counter('citadel_server_authentication_failure_count')).toBe(authnFailures + 4);
    expect(log.lines.filter((l) => l.msg === 'CSR refused: caller not authenticated').length).toBeGreaterThanOrEqual(4);
  });

  it('refuses malformed CSRs and TTLs above the maximum with INVALID_ARGUMENT', async () => {
    const token = ca.issueBootstrapToken('default', 'bookinfo-ratings');
    const call = (csrPem: string, ttlSeconds = 0) =>
      grpcCode(requestCertificate({ address: server.address, rootCertPem: ca.rootCertPem, csrPem, ttlSeconds, credential: { kind: 'token', token } }));
    expect(await call('garbage')).toBe(status.INVALID_ARGUMENT);
    expect(await call(createCsr('spiffe://cluster.local/ns/default', keys))).toBe(status.INVALID_ARGUMENT);
    expect(await call(createCsr(ratings, keys), 100 * 86400)).toBe(status.INVALID_ARGUMENT);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/citadel_server_csr_parsing_err_count 1/);
    expect(text).toMatch(/citadel_server_id_extraction_err_count 1/);
    expect(text).toMatch(/citadel_server_csr_sign_err_count\{error="TTL_ERROR"\} 1/);
  });

  it('exports Istio’s CA expiry metrics', async () => {
    const text = await metrics.registry.metrics();
    const rootExpiry = Math.floor(ca.expiry.rootCertExpiry.getTime() / 1000);
    expect(text).toContain(`citadel_server_root_cert_expiry_timestamp ${rootExpiry}`);
    expect(text).toContain(`citadel_server_cert_chain_expiry_timestamp ${rootExpiry}`);
    const seconds = Number(/^citadel_server_root_cert_expiry_seconds (\S+)$/m.exec(text)?.[1]);
    expect(seconds).toBeGreaterThan(3649 * 86400);
  });

  it('uses the wire contract of istio.io/api security/v1alpha1/ca.proto', () => {
    const method = caServiceDefinition().CreateCertificate;
    expect(method.path).toBe('/istio.v1.auth.IstioCertificateService/CreateCertificate');
    // Field numbers: csr = 1 (tag 0x0a), validity_duration = 3 (tag 0x18), metadata = 4 (tag 0x22); cert_chain = 1.
    const bytes = method.requestSerialize({ csr: 'x', validity_duration: 5, metadata: { fields: { ClusterID: { stringValue: 'Kubernetes' } } } });
    expect([...bytes.subarray(0, 3)]).toEqual([0x0a, 0x01, 0x78]);
    expect([...bytes.subarray(3, 5)]).toEqual([0x18, 0x05]);
    expect(bytes[5]).toBe(0x22);
    // google.protobuf.Struct comes from protobufjs's built-in definition, whose Value fields are camelCase.
    expect(method.requestDeserialize(bytes).metadata?.fields.ClusterID?.stringValue).toBe('Kubernetes');
    expect([...method.responseSerialize({ cert_chain: ['a'] })]).toEqual([0x0a, 0x01, 0x61]);
    expect(joinPem(['a', 'b\n'])).toBe('a\nb\n');
  });
});

describe('IstioCertificateService with a platform token authenticator (what @weft/kube gives it: TokenReview)', () => {
  // The platform stands in for the API server: it knows one JWT-shaped token per service account.
  const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
  const reviewsToken = jwt({ iss: 'https://kubernetes.default.svc.cluster.local', sub: 'system:serviceaccount:default:bookinfo-reviews' });
  const expiredToken = jwt({ iss: 'https://kubernetes.default.svc.cluster.local', exp: 1 });
  const reviewed: string[] = [];
  const platform: PlatformTokenAuthenticator = {
    via: 'kubernetes-token',
    async authenticate(token) {
      reviewed.push(token);
      if (token === reviewsToken) return { namespace: 'default', serviceAccount: 'bookinfo-reviews' };
      if (token === expiredToken) throw new TokenError('token has expired');
      throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
    },
  };
  let kube: CaServer;
  beforeAll(async () => {
    kube = await CaServer.start({ ca, platformTokens: platform, metrics: new CitadelMetrics(), logger: log.logger, port: 0 });
  });
  afterAll(() => kube.close());
  const ask = (csrPem: string, token: string) => requestCertificate({ address: kube.address, rootCertPem: ca.rootCertPem, csrPem, credential: { kind: 'token', token } });

  it('signs a CSR for the token’s own service account, in the CA’s trust domain, logged with authn kubernetes-token', async () => {
    const chain = await ask(createCsr(reviews, keys), reviewsToken);
    expect(spiffeIdOf(chain[0]!)).toBe(reviews);
    expect(log.lines.find((l) => l.msg === 'issued certificate' && l.authn === 'kubernetes-token')).toMatchObject({ identity: reviews });
  });

  it('refuses the same token asking for another identity (PERMISSION_DENIED), and tokens the platform refuses or cannot check (UNAUTHENTICATED, with its reason)', async () => {
    await expect(ask(createCsr(ratings, keys), reviewsToken)).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    await expect(ask(createCsr(reviews, keys), expiredToken)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    expect(log.lines.findLast((l) => l.msg === 'CSR refused: caller not authenticated')).toMatchObject({ reason: 'token has expired' });
    await expect(ask(createCsr(reviews, keys), jwt({ iss: 'elsewhere' }))).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    expect(log.lines.findLast((l) => l.msg === 'CSR refused: caller not authenticated')).toMatchObject({ reason: 'token check failed: connect ECONNREFUSED 127.0.0.1:6443' });
  });

  it('still verifies its own bootstrap tokens itself: they never reach the platform', async () => {
    const before = reviewed.length;
    const chain = await ask(createCsr(ratings, keys), ca.issueBootstrapToken('default', 'bookinfo-ratings'));
    expect(spiffeIdOf(chain[0]!)).toBe(ratings);
    expect(reviewed.length).toBe(before);
  });
});
