// Where the CA's keys live on Kubernetes, as istiod keeps them in its namespace:
//   - Secret `cacerts`: a plug-in CA an operator made (Istio's layout: ca-cert.pem, ca-key.pem,
//     root-cert.pem, cert-chain.pem; or kubernetes.io/tls's: tls.crt, tls.key, ca.crt, as
//     cert-manager writes it; possibly an intermediate under the organisation's root);
//   - otherwise Secret `istio-ca-secret`: the self-signed root weftd generated the first time
//     (type istio.io/ca-root, Istio's keys), so a restarted or second replica signs with the same
//     root. Replicas starting together each generate a root and try to create the Secret; the API
//     server lets one create it, and the others read and use that one, so the mesh ends with one root.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { type CaMaterial, CertificateAuthority, type CertificateAuthorityOptions, caFileNames, joinPem, type SelfSignedRootOptions, splitPemCertificates } from '@weft/citadel';
import { createLogger } from '@weft/model';
import { apiStatusOf } from './client.ts';
import { describeError } from './informer.ts';

/** Istio's plug-in CA Secret. */
export const pluginCaSecretName = 'cacerts';
/** Istio's Secret for the self-signed root it generated. */
export const selfSignedCaSecretName = 'istio-ca-secret';
/** Istio's Secret type for istio-ca-secret. */
export const selfSignedCaSecretType = 'istio.io/ca-root';

export interface ClusterCaOptions extends CertificateAuthorityOptions, SelfSignedRootOptions {
  kubeConfig: KubeConfig;
  /** weftd's namespace (Istio: istio-system), where the Secrets are. */
  namespace: string;
  /** Give up when the API server has not answered for this long; default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ClusterCa {
  ca: CertificateAuthority;
  /** The Secret the keys came from, `<namespace>/<name>`. */
  secret: string;
  /** `plugged` (cacerts) or `self-signed` (istio-ca-secret). */
  kind: 'plugged' | 'self-signed';
  /** True when this process generated the root and created istio-ca-secret. */
  created: boolean;
}

const text = (secret: V1Secret, key: string): string | undefined => {
  const b64 = secret.data?.[key];
  if (b64 === undefined) return undefined;
  const s = Buffer.from(b64, 'base64').toString('utf8');
  return s.trim() === '' ? undefined : s;
};

/** Keys of a kubernetes.io/tls Secret (cert-manager's), which istiod also takes for cacerts. */
const tlsKeys = { cert: 'tls.crt', key: 'tls.key', root: 'ca.crt' } as const;

/**
 * CA material from a Secret in Istio's layout, or in the kubernetes.io/tls layout istiod also
 * accepts (tls.crt: the signing certificate and its chain, tls.key, ca.crt: the root); throws
 * naming the Secret and the missing keys.
 */
export function caMaterialOfSecret(secret: V1Secret): CaMaterial {
  const where = `Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`;
  const tlsCert = text(secret, tlsKeys.cert);
  if (tlsCert !== undefined && text(secret, caFileNames.caCert) === undefined) {
    const key = text(secret, tlsKeys.key);
    const root = text(secret, tlsKeys.root);
    if (key === undefined || root === undefined) throw new Error(`${where} has tls.crt but lacks ${[key === undefined ? 'tls.key' : '', root === undefined ? 'ca.crt' : ''].filter(Boolean).join(' and ')}`);
    const [signing] = splitPemCertificates(tlsCert);
    if (!signing) throw new Error(`${where}: tls.crt holds no certificate`);
    return { caCertPem: signing, caKeyPem: key, rootCertPem: root, certChainPem: joinPem([...splitPemCertificates(tlsCert), ...splitPemCertificates(root)]) };
  }
  const caCertPem = text(secret, caFileNames.caCert);
  const caKeyPem = text(secret, caFileNames.caKey);
  const missing = [caCertPem === undefined ? caFileNames.caCert : '', caKeyPem === undefined ? caFileNames.caKey : ''].filter(Boolean);
  if (caCertPem === undefined || caKeyPem === undefined) throw new Error(`${where} lacks ${missing.join(' and ')} (Istio's layout: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)`);
  const certChainPem = text(secret, caFileNames.certChain);
  // A self-signed CA is its own root (istio-ca-secret's root-cert.pem repeats ca-cert.pem).
  return { caCertPem, caKeyPem, rootCertPem: text(secret, caFileNames.rootCert) ?? caCertPem, ...(certChainPem !== undefined ? { certChainPem } : {}) };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * The mesh CA from weftd's namespace: `cacerts` when an operator plugged one in, else the root in
 * `istio-ca-secret`, created on first start. Retries while the API server does not answer; fails
 * at once on what retrying cannot fix (no permission, a Secret without keys, keys that do not chain).
 */
export async function openClusterCa(options: ClusterCaOptions): Promise<ClusterCa> {
  const { kubeConfig, namespace, timeoutMs, signal, ...caOptions } = options;
  const logger = caOptions.logger ?? createLogger({ scope: 'citadel' });
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const deadline = Date.now() + (timeoutMs ?? 60_000);
  let attempt = 0;

  /** One API call, retried with backoff while the server is unreachable or failing (5xx). */
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        const status = apiStatusOf(err);
        if (status !== undefined && status < 500 && status !== 429) throw err;
        if (Date.now() >= deadline || signal?.aborted) throw new Error(`${what}: the API server did not answer in time (${describeError(err)})`, { cause: err });
        const delay = Math.min(5_000, 200 * 2 ** attempt++);
        logger.warn(`${what} failed; retrying`, { error: describeError(err), retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
  const read = (name: string) =>
    call(`reading Secret ${namespace}/${name}`, () => api.readNamespacedSecret({ name, namespace })).catch((err: unknown) => {
      if (apiStatusOf(err) === 404) return undefined;
      if (apiStatusOf(err) === 403) throw new Error(`weftd may not read Secret ${namespace}/${name} (RBAC: get secrets in ${namespace}): ${describeError(err)}`, { cause: err });
      throw err;
    });
  const open = (secret: V1Secret, kind: ClusterCa['kind'], created: boolean): ClusterCa => {
    const where = `${namespace}/${secret.metadata?.name}`;
    let ca: CertificateAuthority;
    try {
      ca = new CertificateAuthority(caMaterialOfSecret(secret), { ...caOptions, logger });
    } catch (err) {
      throw new Error(`Secret ${where} does not hold a usable CA: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    logger.info(created ? 'generated a self-signed root CA and kept it in a Secret' : 'loaded CA from a Secret', {
      secret: where,
      kind: ca.kind,
      trustDomain: ca.trustDomain,
      rootCertExpiry: ca.expiry.rootCertExpiry.toISOString(),
    });
    return { ca, secret: where, kind, created };
  };

  const plugged = await read(pluginCaSecretName);
  if (plugged) return open(plugged, 'plugged', false);
  const kept = await read(selfSignedCaSecretName);
  if (kept) return open(kept, 'self-signed', false);

  const material = await CertificateAuthority.generateRoot(caOptions);
  const body: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: selfSignedCaSecretType,
    metadata: { name: selfSignedCaSecretName, namespace },
    // Istio's keys (BuildSecret): the workload key/chain fields stay empty for a CA secret.
    data: {
      [caFileNames.caCert]: b64(material.caCertPem),
      [caFileNames.caKey]: b64(material.caKeyPem),
      [caFileNames.rootCert]: b64(material.rootCertPem),
      [caFileNames.certChain]: '',
      'key.pem': '',
    },
  };
  try {
    const created = await call(`creating Secret ${namespace}/${selfSignedCaSecretName}`, () => api.createNamespacedSecret({ namespace, body }));
    return open(created, 'self-signed', true);
  } catch (err) {
    // Another replica created it between our read and our create: its root is the mesh's.
    if (apiStatusOf(err) !== 409) {
      if (apiStatusOf(err) === 403) throw new Error(`weftd may not create Secret ${namespace}/${selfSignedCaSecretName} (RBAC: create secrets in ${namespace}): ${describeError(err)}`, { cause: err });
      throw err;
    }
    const winner = await read(selfSignedCaSecretName);
    if (!winner) throw new Error(`Secret ${namespace}/${selfSignedCaSecretName} was created by another replica and then deleted; restart weftd`);
    logger.info('another replica created the CA Secret first; using its root', { secret: `${namespace}/${selfSignedCaSecretName}` });
    return open(winner, 'self-signed', false);
  }
}
