// weftd's admission webhooks on the shared cluster, as a user meets them: weftd as a host process
// with --kubeconfig serving 15017 on 127.0.0.1 (a free port), webhook configurations of this file
// pointing at it by URL and selecting only this file's namespaces, kubectl in front.
// - an invalid VirtualService is refused at `kubectl apply` with galley's message;
// - a Pod created in an injected namespace comes back injected, field by field as kube-inject
//   renders it; `sidecar.istio.io/inject: "false"` and a namespace without the label are left alone;
// - malformed and oversized AdmissionReviews get a clear refusal and weftd keeps serving;
// - the caBundle is set to the mesh root, put back when edited, and follows a new root.
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultInjectionValues, kubeInject } from '@weft/kube';
import { kubeCluster, kubectl, kubectlOk, kubectlPath, needsKube, noteSkip, holdClusterLock } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, until, WeftdProcess as Weftd } from './kube-test-support.ts';

const crds = fileURLToPath(new URL('../../../deploy/crds/crd-all.gen.yaml', import.meta.url));
const skip = needsKube() ?? (kubectlPath() ? undefined : noteSkip('needs kubectl (on PATH, or kube-local’s)'));
const suffix = randomBytes(3).toString('hex');
const scope = `weft-test-webhooks-${suffix}`;
const sysNs = `${scope}-sys`;
const injectedNs = `${scope}-inj`;
const plainNs = `${scope}-plain`;
const injector = `${scope}-injector`;
const validator = `${scope}-validator`;
const proxyImage = 'weft/proxy:webhook-test';

let kubeconfig: string;
let dir: string;
let meshConfig: string;
let webhookPort: number;
let releaseLock: (() => Promise<void>) | undefined;
let weftd: Weftd | undefined;
const namespaces: string[] = [];

const k = (args: readonly string[], input?: string) => kubectlOk(kubeconfig, args, input);

async function startWeftd(): Promise<Weftd> {
  const d = new Weftd([
    '--kubeconfig',
    kubeconfig,
    '--system-namespace',
    sysNs,
    '--mesh-config',
    meshConfig,
    '--xds-port',
    'off',
    '--ca-port',
    '0',
    '--monitoring-port',
    '0',
    '--webhook-port',
    String(webhookPort),
    '--injection-webhook',
    injector,
    '--validation-webhook',
    validator,
    '--proxy-image',
    proxyImage,
  ]);
  weftd = d;
  await d.waitFor((l) => l.msg === 'weftd ready', 'weftd ready');
  return d;
}

/** The caBundle of each webhook of a configuration (decoded PEM). */
async function caBundles(kind: 'mutatingwebhookconfiguration' | 'validatingwebhookconfiguration', name: string): Promise<string[]> {
  const out = await k(['get', kind, name, '-o', 'json']);
  return (JSON.parse(out) as { webhooks: { clientConfig: { caBundle?: string } }[] }).webhooks.map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString());
}

const secretRoot = async () => Buffer.from(await k(['get', 'secret', 'istio-ca-secret', '-n', sysNs, '-o', 'jsonpath={.data.root-cert\\.pem}']), 'base64').toString();

/** Istio's selectors (its chart's `namespace.sidecar-injector.istio.io`), narrowed to this file's namespaces. */
const webhookConfigurations = () => `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: ${validator}}
webhooks:
- name: rev.validation.istio.io
  clientConfig: {url: "https://127.0.0.1:${webhookPort}/validate"}
  rules: [{operations: [CREATE, UPDATE], apiGroups: [networking.istio.io, security.istio.io], apiVersions: ["*"], resources: ["*"]}]
  namespaceSelector: {matchLabels: {weft-test: ${scope}}}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 10
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: ${injector}}
webhooks:
- name: namespace.sidecar-injector.istio.io
  clientConfig: {url: "https://127.0.0.1:${webhookPort}/inject"}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}]
  namespaceSelector:
    matchLabels: {weft-test: ${scope}}
    matchExpressions: [{key: istio-injection, operator: In, values: [enabled]}]
  objectSelector: {matchExpressions: [{key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}]}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
  reinvocationPolicy: Never
  timeoutSeconds: 10
`;

const badVirtualService = (ns: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: ${ns}}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 105
    - destination: {host: reviews, subset: v2}
      weight: -5
`;

const pod = (name: string, ns: string, extra = '') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  labels: {app: reviews, version: v1${extra}}
spec:
  containers:
  - name: reviews
    image: weft/bookinfo:webhook-test
    ports: [{name: http, containerPort: 9080}]
    readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 5}
    livenessProbe: {tcpSocket: {port: 9080}}
`;

type Obj = Record<string, unknown>;

/**
 * What a comparison of two pods as the API server stores them leaves out: identity, bookkeeping
 * and status, and the service-account token volume (kube-api-access-<random>) the API server's own
 * ServiceAccount admission adds. That runs before the webhooks: a pod created bare gets it before
 * the sidecar is added (so not in istio-proxy), kube-inject's pod after (so in every container);
 * neither is the injector's doing.
 */
function comparable(p: Obj): Obj {
  const meta = p.metadata as Obj;
  const { uid: _u, resourceVersion: _r, creationTimestamp: _c, managedFields: _m, generation: _g, ...keptMeta } = meta;
  const spec = structuredClone(p.spec) as { volumes?: { name: string }[]; containers?: { volumeMounts?: { name: string }[] }[]; initContainers?: { volumeMounts?: { name: string }[] }[]; nodeName?: string };
  const apiServers = (name: string) => name.startsWith('kube-api-access-');
  spec.volumes = spec.volumes?.filter((v) => !apiServers(v.name));
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    c.volumeMounts = c.volumeMounts?.filter((m) => !apiServers(m.name));
    if (c.volumeMounts?.length === 0) delete c.volumeMounts;
  }
  // The scheduler may have placed the stored pod already.
  delete spec.nodeName;
  return { metadata: keptMeta, spec };
}

function admissionPost(path: string, body: Buffer, root: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: webhookPort, path, method: 'POST', headers: { 'content-type': 'application/json' }, ca: root }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe.skipIf(skip !== undefined)('weftd --kubeconfig: validation and injection webhooks on 15017, caBundle kept current', () => {
  let root: string;

  beforeAll(async () => {
    kubeconfig = await kubeCluster();
    releaseLock = await holdClusterLock('shared');
    dir = await mkdtemp(join(tmpdir(), 'weftd-kube-webhooks-'));
    meshConfig = join(dir, 'mesh.yaml');
    // Only this file's namespaces: the root-cert ConfigMaps (and config) of this weftd go nowhere else.
    await writeFile(meshConfig, `discoverySelectors:\n- matchLabels: {weft-test: ${scope}}\n`);
    await kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '--field-manager=weft-tests', '-f', crds]);
    await kubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '-l', 'app.kubernetes.io/part-of=weft']);
    for (const [ns, labels] of [
      [sysNs, `weft-test: ${scope}`],
      [injectedNs, `{weft-test: ${scope}, istio-injection: enabled}`],
      [plainNs, `weft-test: ${scope}`],
    ] as const) {
      namespaces.push(ns);
      await k(['create', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n  labels: ${labels.startsWith('{') ? labels : `{${labels}}`}\n`);
    }
    // The pods never run (their images do not exist); the API server needs their service account.
    for (const ns of [injectedNs, plainNs]) await until(`default service account in ${ns}`, async () => ((await kubectl(kubeconfig, ['get', 'serviceaccount', 'default', '-n', ns])).code === 0 ? true : undefined));
    webhookPort = await freePort();
    await startWeftd();
    await k(['create', '-f', '-'], webhookConfigurations());
    root = await secretRoot();
    // weftd sets the caBundles once the configurations appear.
    await until('caBundles set to the mesh root', async () => {
      const all = [...(await caBundles('validatingwebhookconfiguration', validator)), ...(await caBundles('mutatingwebhookconfiguration', injector))];
      return all.every((b) => b.trim() === root.trim()) ? true : undefined;
    });
  }, 20 * 60_000);

  afterAll(async () => {
    // Configurations first: nothing of theirs may outlive weftd.
    if (kubeconfig) {
      await kubectl(kubeconfig, ['delete', 'mutatingwebhookconfiguration', injector, '--ignore-not-found']).catch(() => {});
      await kubectl(kubeconfig, ['delete', 'validatingwebhookconfiguration', validator, '--ignore-not-found']).catch(() => {});
    }
    await weftd?.stop();
    if (kubeconfig) for (const ns of namespaces) await kubectl(kubeconfig, ['delete', 'namespace', ns, '--wait=false']).catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
    await releaseLock?.();
  }, 120_000);

  it('sets each webhook’s caBundle to the mesh root, whose certificate the webhook serves', async () => {
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: webhookPort, path: '/validate', method: 'GET', ca: root }, (res) => {
        resolve((res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()!);
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
    expect(served.checkIssued(new X509Certificate(root))).toBe(true);
    expect(served.subjectAltName).toContain(`DNS:weftd.${sysNs}.svc`);
    expect(served.subjectAltName).toContain('IP Address:127.0.0.1');
  });

  it('refuses an invalid VirtualService at kubectl apply with galley’s field path and reason', async () => {
    const r = await kubectl(kubeconfig, ['apply', '-f', '-'], badVirtualService(injectedNs));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`admission webhook "rev.validation.istio.io" denied the request: configuration is invalid: VirtualService ${injectedNs}/reviews: `);
    expect(r.stderr).toContain('spec.http[0].route[1].weight: weight -5 < 0');
    // And a valid one goes in.
    const good = badVirtualService(injectedNs).replace('weight: 105', 'weight: 100').replace('weight: -5', 'weight: 0');
    expect((await kubectl(kubeconfig, ['apply', '-f', '-'], good)).code).toBe(0);
  });

  it('injects a Pod created in a labelled namespace, field by field as kube-inject renders it', async () => {
    const yaml = pod('reviews-v1', injectedNs);
    const values = defaultInjectionValues({ discoveryAddress: `weftd.${sysNs}.svc:15012`, proxyImage });
    const rendered = kubeInject(yaml, 'pod.yaml', values);
    expect(rendered.problems).toEqual([]);
    expect(rendered.workloads).toEqual([{ kind: 'Pod', name: 'reviews-v1', namespace: injectedNs, injected: true }]);
    // kube-inject's pod as the API server would store it (its defaults, the service-account token
    // volume); the webhook leaves a pod that already carries the status annotation alone.
    const expected = JSON.parse(await k(['create', '--dry-run=server', '-o', 'json', '-f', '-'], rendered.output)) as Obj;
    const created = JSON.parse(await k(['create', '-o', 'json', '-f', '-'], yaml)) as Obj;
    const spec = created.spec as { containers: { name: string; image: string }[]; initContainers: { name: string }[] };
    expect(spec.containers.map((c) => c.name)).toEqual(['reviews', 'istio-proxy']);
    expect(spec.initContainers.map((c) => c.name)).toEqual(['istio-init']);
    expect(spec.containers[1]!.image).toBe(proxyImage);
    expect(comparable(created)).toEqual(comparable(expected));
  });

  it('leaves alone a pod with sidecar.istio.io/inject "false", and pods of a namespace without istio-injection', async () => {
    const off = JSON.parse(await k(['create', '-o', 'json', '-f', '-'], pod('opted-out', injectedNs, ', sidecar.istio.io/inject: "false"'))) as Obj;
    const plain = JSON.parse(await k(['create', '-o', 'json', '-f', '-'], pod('plain', plainNs))) as Obj;
    for (const p of [off, plain]) {
      const s = p.spec as { containers: { name: string }[]; initContainers?: unknown[] };
      expect(s.containers.map((c) => c.name)).toEqual(['reviews']);
      expect(s.initContainers).toBeUndefined();
      expect((p.metadata as Obj).annotations).toBeUndefined();
    }
  });

  it('answers a malformed or oversized AdmissionReview with a clear refusal, and keeps serving', async () => {
    const malformed = await admissionPost('/validate', Buffer.from('{"kind": "AdmissionReview", '), root);
    expect(malformed).toMatchObject({ status: 400, text: expect.stringMatching(/^malformed AdmissionReview: the body is not JSON/) });
    const wrong = await admissionPost('/inject', Buffer.from(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'EXPLODE' } })), root);
    expect(wrong).toMatchObject({ status: 400, text: expect.stringContaining('request.operation "EXPLODE" is not CREATE, UPDATE, DELETE or CONNECT') });
    const big = await admissionPost('/validate', Buffer.alloc(5 * 1024 * 1024, 0x20), root);
    expect(big).toMatchObject({ status: 413, text: expect.stringContaining('refused: the limit is 4194304 bytes') });
    expect(weftd!.child.exitCode).toBeNull();
    expect((await kubectl(kubeconfig, ['apply', '-f', '-'], badVirtualService(injectedNs))).stderr).toContain('weight -5 < 0');
  });

  it('puts the caBundle back when someone changes it', async () => {
    const other = Buffer.from('-----BEGIN CERTIFICATE-----\nnot the mesh root\n-----END CERTIFICATE-----\n').toString('base64');
    await k(['patch', 'validatingwebhookconfiguration', validator, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: other }])]);
    await until('the caBundle restored', async () => ((await caBundles('validatingwebhookconfiguration', validator))[0]!.trim() === root.trim() ? true : undefined), 10_000);
  });

  it('follows a new mesh root: weftd restarted with a new root patches every caBundle, and the API server trusts it', async () => {
    await weftd!.stop();
    // While weftd is down the webhooks fail closed, naming themselves (Istio's failure policy).
    const down = await kubectl(kubeconfig, ['apply', '-f', '-'], badVirtualService(injectedNs));
    expect(down.code).not.toBe(0);
    expect(down.stderr).toContain('failed calling webhook "rev.validation.istio.io"');
    // A new root: the kept one removed, so weftd generates another.
    await k(['delete', 'secret', 'istio-ca-secret', '-n', sysNs]);
    await startWeftd();
    const next = await secretRoot();
    expect(next.trim()).not.toBe(root.trim());
    await until('caBundles on the new root', async () => {
      const all = [...(await caBundles('validatingwebhookconfiguration', validator)), ...(await caBundles('mutatingwebhookconfiguration', injector))];
      return all.every((b) => b.trim() === next.trim()) ? true : undefined;
    });
    const r = await kubectl(kubeconfig, ['apply', '-f', '-'], badVirtualService(injectedNs));
    expect(r.stderr).toContain('denied the request: configuration is invalid');
    const injected = JSON.parse(await k(['create', '-o', 'json', '-f', '-'], pod('after-new-root', injectedNs))) as { spec: { containers: { name: string }[] } };
    expect(injected.spec.containers.map((c) => c.name)).toEqual(['reviews', 'istio-proxy']);
  });
});
