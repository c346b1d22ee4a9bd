// The webhook server over real TLS with a certificate from a real mesh CA, as the API server calls
// it: AdmissionReviews in, decisions out; and everything else a caller might send, refused clearly
// while the server keeps serving.
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { CertificateAuthority } from '@weft/citadel';
import { silentLogger } from '@weft/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPodPatch, type JsonPatchOperation } from './inject/patch.ts';
import { defaultInjectionValues } from './inject/values.ts';
import type { AdmissionReview } from './webhook-admission.ts';
import { Webhooks } from './webhook-service.ts';

let ca: CertificateAuthority;
let webhooks: Webhooks;

beforeAll(async () => {
  ca = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }));
  webhooks = await Webhooks.start({ ca, port: 0, namespace: 'weft-system', injection: defaultInjectionValues({ proxyImage: 'weft/proxy:test' }), maxBodyBytes: 64 * 1024, logger: silentLogger });
}, 60_000);
afterAll(() => webhooks?.close());

interface Answer {
  status: number;
  type: string;
  text: string;
  peerCert?: X509Certificate;
}

function post(path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, method = 'POST'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: webhooks.port, path, method, headers, ca: ca.rootCertPem, servername: 'weftd.weft-system.svc' }, (res) => {
      const chunks: Buffer[] = [];
      const peer = res.socket && 'getPeerX509Certificate' in res.socket ? (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate() : undefined;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString(), ...(peer ? { peerCert: peer } : {}) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const review = (request: Record<string, unknown>) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', operation: 'CREATE', ...request } });

const badVirtualService = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 105 }, { destination: { host: 'reviews', subset: 'v2' }, weight: -5 }] }] },
};

describe('the webhook server', () => {
  it('serves a certificate from the mesh CA for the webhook Service’s names', async () => {
    const a = await post('/validate', review({ kind: { group: '', version: 'v1', kind: 'ConfigMap' }, operation: 'DELETE' }));
    expect(a.status).toBe(200);
    expect(a.peerCert?.subjectAltName).toContain('DNS:weftd.weft-system.svc');
    expect(a.peerCert?.subjectAltName).toContain('DNS:istiod.istio-system.svc');
    expect(a.peerCert?.checkIssued(new X509Certificate(ca.rootCertPem))).toBe(true);
  });

  it('/validate denies an invalid VirtualService with galley’s field path and reason', async () => {
    const a = await post('/validate', review({ kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' }, namespace: 'shop', object: badVirtualService }));
    const r = (JSON.parse(a.text) as AdmissionReview).response!;
    expect(r.uid).toBe('u-1');
    expect(r.allowed).toBe(false);
    expect(r.status?.message).toMatch(/^configuration is invalid: VirtualService shop\/reviews: /);
    expect(r.status?.message).toContain('spec.http[0].route[1].weight: weight -5 < 0');
  });

  it('/validate admits a valid one, and lets kinds Weft does not model through with a warning', async () => {
    const good = { ...badVirtualService, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] } };
    const ok = JSON.parse((await post('/validate', review({ kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' }, namespace: 'shop', object: good }))).text) as AdmissionReview;
    expect(ok.response).toEqual({ uid: 'u-1', allowed: true });
    const other = { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name: 't', namespace: 'shop' }, spec: {} };
    const unknown = JSON.parse((await post('/validate', review({ kind: { group: 'telemetry.istio.io', version: 'v1', kind: 'Telemetry' }, object: other }))).text) as AdmissionReview;
    expect(unknown.response).toMatchObject({ allowed: true, warnings: ['Weft does not validate or use telemetry.istio.io/v1 Telemetry'] });
  });

  it('/inject answers a Pod with a JSON patch that injects it', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop' }, spec: { containers: [{ name: 'app', image: 'app:1' }] } };
    const a = await post('/inject', review({ kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'shop', object: pod }));
    const r = (JSON.parse(a.text) as AdmissionReview).response!;
    expect(r).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const patched = applyPodPatch(pod, JSON.parse(Buffer.from(r.patch!, 'base64').toString()) as JsonPatchOperation[]) as typeof pod & { spec: { initContainers: { name: string }[] } };
    expect(patched.spec.containers.map((c) => c.name)).toEqual(['app', 'istio-proxy']);
    expect(patched.spec.initContainers.map((c) => c.name)).toEqual(['istio-init']);
  });

  it('/inject refuses a pod whose annotations it cannot honour, naming them', async () => {
    const pod = { metadata: { name: 'p', namespace: 'shop', annotations: { 'sidecar.istio.io/proxyMemory': 'plenty' } }, spec: { containers: [{ name: 'app', image: 'app:1' }] } };
    const r = (JSON.parse((await post('/inject', review({ kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'shop', object: pod }))).text) as AdmissionReview).response!;
    expect(r.allowed).toBe(false);
    expect(r.status?.message).toBe('sidecar injection failed for pod shop/p: annotation sidecar.istio.io/proxyMemory: "plenty" is not a Kubernetes quantity (e.g. 100m, 128Mi)');
  });
});

describe('bad input is refused clearly, and the server keeps serving', () => {
  const cases: [string, () => Promise<Answer>, number, RegExp][] = [
    ['an oversized body (declared)', () => post('/validate', Buffer.alloc(65 * 1024, 0x20)), 413, /AdmissionReview of 66560 bytes refused: the limit is 65536 bytes/],
    ['a body three times the limit (declared): the client, still sending, reads the refusal', () => post('/validate', Buffer.alloc(192 * 1024, 0x20)), 413, /AdmissionReview of 196608 bytes refused/],
    ['an oversized body (chunked, no length)', () => post('/validate', Buffer.alloc(200 * 1024, 0x20), { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }), 413, /more than 65536 bytes/],
    ['a body that is not JSON', () => post('/validate', '{"apiVersion": "admission.k8s.io/v1", "kind": '), 400, /^malformed AdmissionReview: the body is not JSON/],
    ['JSON that is not an AdmissionReview', () => post('/inject', '[1,2,3]'), 400, /^malformed AdmissionReview: the body is not a JSON object/],
    ['an AdmissionReview of another version', () => post('/inject', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} })), 400, /apiVersion is "admission.k8s.io\/v1beta1"; this webhook speaks admission.k8s.io\/v1/],
    ['a review without a request uid', () => post('/validate', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: {} } })), 400, /request.uid is missing/],
    ['another content type', () => post('/validate', review({}), { 'content-type': 'text/yaml' }), 415, /webhooks take application\/json/],
    ['GET', () => post('/validate', '', {}, 'GET'), 405, /webhooks take POST/],
    ['an unknown path', () => post('/mutate', review({})), 404, /no webhook at \/mutate; try \/validate or \/inject/],
  ];
  for (const [what, send, status, message] of cases) {
    it(`${what}: HTTP ${status}`, async () => {
      const a = await send();
      expect(a.status).toBe(status);
      expect(a.text).toMatch(message);
    });
  }

  it('a review whose object is not an object: a denial naming it', async () => {
    const r = (JSON.parse((await post('/validate', review({ kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' }, object: 'nope' }))).text) as AdmissionReview).response!;
    expect(r).toEqual({ uid: 'u-1', allowed: false, status: { code: 400, message: 'request.object is not a Kubernetes object' } });
  });

  it('still answers after all of that', async () => {
    const a = await post('/validate', review({ kind: { group: '', version: 'v1', kind: 'ConfigMap' }, operation: 'DELETE' }));
    expect(JSON.parse(a.text)).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
  });
});
