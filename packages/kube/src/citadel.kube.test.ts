// Citadel's Kubernetes parts against a real API server: TokenReview of real projected tokens, the
// CA's keys in Secrets, istio-ca-root-cert in every namespace, and leader election on a Lease.
// Every namespace here is this file's own (weft-test-citadel-*), deleted afterwards.
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, V1MicroTime } from '@kubernetes/client-node';
import { CertificateAuthority, CertificateSigner, generateRsaKeyPair, TokenError } from '@weft/citadel';
import { createLogger } from '@weft/model';
import { kubeCluster, needsKube, holdClusterLock } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClusterCa, selfSignedCaSecretName } from './ca-secret.ts';
import { apiStatusOf, loadKubeConfig } from './client.ts';
import { LeaderElection } from './leader-election.ts';
import { RootCertPublisher, rootCertConfigMapKey, rootCertConfigMapName } from './root-cert.ts';
import { TokenReviewAuthenticator } from './token-review.ts';

const skip = needsKube();
const quiet = createLogger({ scope: 'kube', sink: () => {} });
const suffix = randomBytes(3).toString('hex');
const nsName = (part: string) => `weft-test-citadel-${part}-${suffix}`;

let kc: KubeConfig;
let core: CoreV1Api;
let releaseLock: (() => Promise<void>) | undefined;
const created: string[] = [];


/** This file's label: the publisher here selects only namespaces carrying it (the cluster is shared). */
const testLabel = { 'weft-test': `citadel-${suffix}` };

async function namespace(part: string, labels: Record<string, string> = testLabel): Promise<string> {
  const name = nsName(part);
  await core.createNamespace({ body: { metadata: { name, labels } } });
  created.push(name);
  return name;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const rootCertOf = (ns: string) =>
  core.readNamespacedConfigMap({ name: rootCertConfigMapName, namespace: ns }).then(
    (cm) => cm.data?.[rootCertConfigMapKey],
    (err: unknown) => (apiStatusOf(err) === 404 ? undefined : Promise.reject(err)),
  );

describe.skipIf(skip !== undefined)('citadel on a real API server', () => {
  beforeAll(async () => {
    const kubeconfig = await kubeCluster();
    releaseLock = await holdClusterLock('shared');
    kc = loadKubeConfig(kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
  }, 20 * 60_000);

  afterAll(async () => {
    for (const name of created) await core.deleteNamespace({ name }).catch(() => {});
    await releaseLock?.();
  });

  describe('TokenReviewAuthenticator with tokens from the TokenRequest API', () => {
    let ns: string;
    const token = async (sa: string, audiences = ['istio-ca'], namespace = ns) =>
      (await core.createNamespacedServiceAccountToken({ name: sa, namespace, body: { spec: { audiences, expirationSeconds: 600 } } })).status?.token ?? '';

    beforeAll(async () => {
      ns = await namespace('tokens');
      for (const name of ['bookinfo-reviews', 'doomed']) await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
    });

    it('names the namespace and service account of a projected token for istio-ca', async () => {
      const auth = new TokenReviewAuthenticator({ kubeConfig: kc, logger: quiet });
      expect(await auth.authenticate(await token('bookinfo-reviews'))).toEqual({ namespace: ns, serviceAccount: 'bookinfo-reviews' });
    });

    it('refuses a token for another audience, a token of a deleted service account and a tampered token, each with the API server’s reason', async () => {
      const auth = new TokenReviewAuthenticator({ kubeConfig: kc, logger: quiet });
      const wrongAudience = await token('bookinfo-reviews', ['vault']);
      await expect(auth.authenticate(wrongAudience)).rejects.toThrow(TokenError);
      await expect(auth.authenticate(wrongAudience)).rejects.toThrow(/audience/);

      const doomed = await token('doomed');
      await core.deleteNamespacedServiceAccount({ name: 'doomed', namespace: ns });
      await expect(auth.authenticate(doomed)).rejects.toThrow(TokenError);

      const good = await token('bookinfo-reviews');
      const [h, c, s] = good.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>;
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: `system:serviceaccount:${ns}:admin` })).toString('base64url')}.${s}`;
      await expect(auth.authenticate(forged)).rejects.toThrow(/refused the token|did not authenticate/);
      // Three refusals, three reviews (the wrong-audience one answered again from the cache).
      expect(auth.reviews).toBe(3);
    });
  });

  describe('the CA in Secrets (openClusterCa)', () => {
    it('creates istio-ca-secret once: a second open (a restart) loads the same root', async () => {
      const ns = await namespace('ca');
      const first = await openClusterCa({ kubeConfig: kc, namespace: ns, logger: quiet });
      expect(first).toMatchObject({ kind: 'self-signed', created: true, secret: `${ns}/${selfSignedCaSecretName}` });
      const secret = await core.readNamespacedSecret({ name: selfSignedCaSecretName, namespace: ns });
      expect(secret.type).toBe('istio.io/ca-root');
      expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'key.pem', 'root-cert.pem']);
      const again = await openClusterCa({ kubeConfig: kc, namespace: ns, logger: quiet });
      expect(again.created).toBe(false);
      expect(again.ca.rootCertPem).toBe(first.ca.rootCertPem);
    });

    it('two replicas starting together end with one root', async () => {
      const ns = await namespace('race');
      const [a, b] = await Promise.all([openClusterCa({ kubeConfig: kc, namespace: ns, logger: quiet }), openClusterCa({ kubeConfig: kc, namespace: ns, logger: quiet })]);
      expect(a.ca.rootCertPem).toBe(b.ca.rootCertPem);
      expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    });

    it('uses a plug-in CA from Secret cacerts (an intermediate under another root), and says what a broken one lacks', async () => {
      const ns = await namespace('plugin');
      const root = await CertificateAuthority.generateRoot({ organization: 'Example Org' });
      const keys = await generateRsaKeyPair();
      const now = Date.now();
      const intermediate = new CertificateSigner(root.caCertPem, root.caKeyPem).issue({
        publicKey: keys.publicKeyPem,
        subject: { organization: 'Example Org', commonName: 'weft intermediate' },
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 86_400_000),
        ca: {},
      });
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      await core.createNamespacedSecret({
        namespace: ns,
        body: {
          metadata: { name: 'cacerts' },
          data: { 'ca-cert.pem': b64(intermediate), 'ca-key.pem': b64(keys.privateKeyPem), 'root-cert.pem': b64(root.rootCertPem), 'cert-chain.pem': b64(`${intermediate}${root.rootCertPem}`) },
        },
      });
      const plugged = await openClusterCa({ kubeConfig: kc, namespace: ns, logger: quiet });
      expect(plugged).toMatchObject({ kind: 'plugged', created: false, secret: `${ns}/cacerts` });
      expect(plugged.ca.rootCertPem).toBe(root.rootCertPem);
      expect(plugged.ca.kind).toBe('plugged');
      // Nothing generated beside it.
      await expect(core.readNamespacedSecret({ name: selfSignedCaSecretName, namespace: ns })).rejects.toMatchObject({ code: 404 });

      // The kubernetes.io/tls layout (cert-manager's), which istiod takes too.
      await core.deleteNamespacedSecret({ name: 'cacerts', namespace: ns });
      await core.createNamespacedSecret({
        namespace: ns,
        body: { metadata: { name: 'cacerts' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(intermediate), 'tls.key': b64(keys.privateKeyPem), 'ca.crt': b64(root.rootCertPem) } },
      });
      const tls = await openClusterCa({ kubeConfig: kc, namespace: ns, logger: quiet });
      expect(tls.kind).toBe('plugged');
      expect(tls.ca.rootCertPem).toBe(root.rootCertPem);
      expect(tls.ca.caCertPem.trim()).toBe(intermediate.trim());

      await core.deleteNamespacedSecret({ name: 'cacerts', namespace: ns });
      await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'cacerts' }, data: { 'root-cert.pem': b64(root.rootCertPem) } } });
      await expect(openClusterCa({ kubeConfig: kc, namespace: ns, logger: quiet })).rejects.toThrow(`Secret ${ns}/cacerts lacks ca-cert.pem and ca-key.pem`);
    });
  });

  describe('RootCertPublisher: istio-ca-root-cert in every namespace', () => {
    let publisher: RootCertPublisher;
    let root: string;
    beforeAll(async () => {
      root = (await CertificateAuthority.generateRoot()).rootCertPem;
      publisher = new RootCertPublisher({ kubeConfig: kc, rootCertPem: root, logger: quiet, discoverySelectors: [{ matchLabels: testLabel }] });
      publisher.start();
      await publisher.synced();
    });
    afterAll(() => publisher?.stop());

    it('appears in a new namespace (time printed), labelled as istiod labels it', async () => {
      const t0 = Date.now();
      const ns = await namespace('new');
      expect(await until('the ConfigMap', () => rootCertOf(ns), 30_000)).toBe(root);
      console.log(`istio-ca-root-cert in a new namespace after ${Date.now() - t0} ms`);
      const cm = await core.readNamespacedConfigMap({ name: rootCertConfigMapName, namespace: ns });
      expect(cm.metadata?.labels).toMatchObject({ 'istio.io/config': 'true' });
    });

    it('comes back when deleted, and when edited (other keys stay)', async () => {
      const ns = await namespace('edit');
      await until('the ConfigMap', () => rootCertOf(ns), 30_000);
      await core.deleteNamespacedConfigMap({ name: rootCertConfigMapName, namespace: ns });
      expect(await until('the ConfigMap back', () => rootCertOf(ns), 30_000)).toBe(root);
      await core.replaceNamespacedConfigMap({
        name: rootCertConfigMapName,
        namespace: ns,
        body: { metadata: { name: rootCertConfigMapName, namespace: ns }, data: { [rootCertConfigMapKey]: 'tampered', note: 'mine' } },
      });
      await until('the root restored', async () => ((await rootCertOf(ns)) === root ? true : undefined), 30_000);
      expect((await core.readNamespacedConfigMap({ name: rootCertConfigMapName, namespace: ns })).data?.note).toBe('mine');
    });

    it('leaves namespaces outside discoverySelectors alone, and takes one in when it is labelled', async () => {
      const ns = await namespace('outside', { 'weft-test': 'someone-else' });
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await rootCertOf(ns)).toBeUndefined();
      await core.patchNamespace({ name: ns, body: { metadata: { labels: testLabel } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      expect(await until('the ConfigMap once selected', () => rootCertOf(ns), 30_000)).toBe(root);
    });

    it('brings every namespace to a new root', async () => {
      const ns = await namespace('rotate');
      await until('the ConfigMap', () => rootCertOf(ns), 30_000);
      const next = (await CertificateAuthority.generateRoot()).rootCertPem;
      publisher.setRoot(next);
      await until('the new root', async () => ((await rootCertOf(ns)) === next ? true : undefined), 30_000);
      expect(publisher.status().failing).toEqual({});
    });
  });

  describe('LeaderElection on a Lease', () => {
    const fast = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };
    const released = { leaseDurationMs: 20_000, renewDeadlineMs: 15_000, retryPeriodMs: 300 };
    const elections: LeaderElection[] = [];
    afterAll(async () => {
      for (const e of elections) await e.stop();
    });

    it('elects one of two replicas; the other takes over at once when the leader stops, and only the leader runs its work', async () => {
      const ns = await namespace('lease');
      const running = new Set<string>();
      const make = (identity: string) => {
        // a lease long enough that taking over before it could expire shows the release was seen
        const e = new LeaderElection({ kubeConfig: kc, namespace: ns, name: 'weftd-leader', identity, logger: quiet, ...released });
        e.whileLeading((signal) => {
          running.add(identity);
          signal.addEventListener('abort', () => running.delete(identity));
        });
        elections.push(e);
        e.start();
        return e;
      };
      const a = make('replica-a');
      const b = make('replica-b');
      const first = await until('a leader', async () => (a.isLeader || b.isLeader ? (a.isLeader ? a : b) : undefined));
      const second = first === a ? b : a;
      await new Promise((r) => setTimeout(r, 1_000));
      expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
      expect([...running]).toEqual([first.identity]);
      expect(second.leader).toBe(first.identity);
      const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'weftd-leader', namespace: ns });
      expect(lease.spec?.holderIdentity).toBe(first.identity);

      const t0 = Date.now();
      await first.stop();
      await until('the other replica leading', async () => (second.isLeader ? true : undefined), 30_000);
      console.log(`takeover after a released lease: ${Date.now() - t0} ms`);
      expect(Date.now() - t0, 'taken over before the lease could have expired').toBeLessThan(released.leaseDurationMs);
      expect([...running]).toEqual([second.identity]);
    });

    it('takes over from a leader that vanished without releasing, once its lease has expired', async () => {
      const ns = await namespace('crash');
      const leases = kc.makeApiClient(CoordinationV1Api);
      // A holder that renewed a moment ago and then died (no release): the Lease as it left it.
      const now = new V1MicroTime();
      await leases.createNamespacedLease({
        namespace: ns,
        body: { metadata: { name: 'weftd-leader' }, spec: { holderIdentity: 'crashed', leaseDurationSeconds: 3, acquireTime: now, renewTime: now, leaseTransitions: 4 } },
      });
      const e = new LeaderElection({ kubeConfig: kc, namespace: ns, name: 'weftd-leader', identity: 'survivor', logger: quiet, ...fast });
      elections.push(e);
      const t0 = Date.now();
      e.start();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(e.isLeader).toBe(false);
      expect(e.leader).toBe('crashed');
      await until('the survivor leading', async () => (e.isLeader ? true : undefined), 30_000);
      // Not before the lease duration, measured from when the survivor first saw the record.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(3_000);
      const lease = await leases.readNamespacedLease({ name: 'weftd-leader', namespace: ns });
      expect(lease.spec).toMatchObject({ holderIdentity: 'survivor', leaseTransitions: 5 });
    });
  });
});
