// The webhooks' caBundle against a real API server, without a weftd around them: a new mesh root
// given to a running Webhooks (as a rotated CA would be) reaches every webhook of the named
// configurations, and the API server then trusts the webhook's new serving certificate.
import { randomBytes } from 'node:crypto';
import { AdmissionregistrationV1Api, CoreV1Api, type V1MutatingWebhookConfiguration, type V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { CertificateAuthority } from '@weft/citadel';
import { silentLogger } from '@weft/model';
import { kubeCluster, needsKube, holdClusterLock } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from './client.ts';
import { defaultInjectionValues } from './inject/values.ts';
import { Webhooks } from './webhook-service.ts';

const skip = needsKube();
const scope = `weft-test-cabundle-${randomBytes(3).toString('hex')}`;

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const newCa = async () => new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }));

describe.skipIf(skip !== undefined)('the caBundle follows the mesh root (a real API server)', () => {
  let release: (() => Promise<void>) | undefined;
  let api: AdmissionregistrationV1Api;
  let core: CoreV1Api;
  let webhooks: Webhooks | undefined;

  beforeAll(async () => {
    const kubeconfig = await kubeCluster();
    release = await holdClusterLock('shared');
    const kc = loadKubeConfig(kubeconfig);
    api = kc.makeApiClient(AdmissionregistrationV1Api);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: scope, labels: { 'weft-test': scope } } } });
    webhooks = await Webhooks.start({
      ca: await newCa(),
      port: 0,
      namespace: scope,
      injection: defaultInjectionValues(),
      kubeConfig: kc,
      configurations: { mutating: [scope], validating: [scope] },
      logger: silentLogger,
    });
    const webhook = (path: string) => ({
      name: `${path.slice(1)}.weft.test`,
      clientConfig: { url: `https://127.0.0.1:${webhooks!.port}${path}` },
      namespaceSelector: { matchLabels: { 'weft-test': scope } },
      failurePolicy: 'Fail',
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
    });
    await api.createValidatingWebhookConfiguration({
      body: { metadata: { name: scope }, webhooks: [{ ...webhook('/validate'), rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }] }] },
    });
    await api.createMutatingWebhookConfiguration({
      body: { metadata: { name: scope }, webhooks: [{ ...webhook('/inject'), rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }] }] },
    });
  }, 20 * 60_000);

  afterAll(async () => {
    await api?.deleteMutatingWebhookConfiguration({ name: scope }).catch(() => {});
    await api?.deleteValidatingWebhookConfiguration({ name: scope }).catch(() => {});
    await webhooks?.close();
    await core?.deleteNamespace({ name: scope }).catch(() => {});
    await release?.();
  });

  const bundles = async () => {
    const m: V1MutatingWebhookConfiguration = await api.readMutatingWebhookConfiguration({ name: scope });
    const v: V1ValidatingWebhookConfiguration = await api.readValidatingWebhookConfiguration({ name: scope });
    return [...(m.webhooks ?? []), ...(v.webhooks ?? [])].map((w) => Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString());
  };

  it('is set when the configurations appear, and follows a new root without a restart', async () => {
    const first = webhooks!.patcher!;
    await until('the first root in every caBundle', async () => {
      const b = await bundles();
      return b.length === 2 && b.every((x) => x.startsWith('-----BEGIN CERTIFICATE-----')) && new Set(b).size === 1 ? b[0] : undefined;
    });

    const rotated = await newCa();
    await webhooks!.setCa(rotated);
    await until('the new root in every caBundle', async () => ((await bundles()).every((b) => b === rotated.rootCertPem) ? true : undefined));
    expect(first.patches).toBeGreaterThanOrEqual(4);
    // The API server reaches the webhook with the new root: a ConfigMap in the scoped namespace is admitted through it.
    await until('a ConfigMap admitted through the webhook', async () => {
      try {
        await core.createNamespacedConfigMap({ namespace: scope, body: { metadata: { name: 'through-the-webhook' }, data: { a: 'b' } } });
        return true;
      } catch {
        return undefined;
      }
    });
  });
});
