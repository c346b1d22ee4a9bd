// The proxy's workload identity, as Istio's agent provides it to Envoy over SDS: a certificate for
// `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` from the mesh CA (weftd's Istio
// CSR service on 15012), kept current by citadel's CertificateManager (first request with a
// bootstrap token, renewals with the current certificate, rotation at half the lifetime), served
// to listeners and clusters as the SDS secrets `default` (chain and key) and `ROOTCA` (trust bundle).
//
// Each certificate becomes new secret objects; the TLS caches (listener/tls.ts, cluster/transport.ts)
// compare secret identity, so new connections use the new certificate while open ones keep theirs.
// @weft/citadel (node-forge) is imported only when an identity is configured.
//
// The same credentials authenticate the proxy's xDS stream on the control plane's TLS port
// (`xdsChannel`), as Istio's agent does on 15012.
import { RootCertSecret, spiffeId, WorkloadCertSecret } from '@weft/mesh';
import { readFileSync } from 'node:fs';
import { credentials, Metadata } from '@grpc/grpc-js';
import { controlPlaneServerName, type Logger } from '@weft/model';
import { decodeMessage, encodeMessage, type Secret__Output } from '@weft/xds';
import type { CertificateManager, CsrSigner, WorkloadSecret } from '@weft/citadel';
import type { XdsChannel } from '../xds/client.ts';

/** Istio's SDS resource names. */

const secretType = 'envoy.extensions.transport_sockets.tls.v3.Secret';

export interface WorkloadIdentityOptions {
  /** The CA's address, `host:port` (Istio: CA_ADDR, istiod:15012). */
  caAddress: string;
  /** PEM trust bundle: verifies the CA's serving certificate and becomes `ROOTCA`. */
  rootCertPem: string;
  /** TLS name of the CA when the host of `caAddress` is not among its SANs. */
  caServerName?: string;
  /** Bootstrap credential for the first certificate: a token, or a file read at each use (Istio's istio-token). */
  token?: string;
  tokenFile?: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  /** Requested certificate lifetime in seconds (Istio's SECRET_TTL); 0 lets the CA choose (24 h). */
  ttlSeconds?: number;
  /** Rotate when this fraction of the lifetime remains (Istio's SECRET_GRACE_PERIOD_RATIO, 0.5). */
  gracePeriodRatio?: number;
  /** Backoff while the CA is unreachable. */
  retry?: { initialMs?: number; maxMs?: number };
  logger?: Logger;
  /** Signs CSRs instead of the gRPC CA (tests, in-process CAs). */
  signer?: CsrSigner;
}

/** The current certificate as the admin page and logs show it. */
export interface IdentityStatus {
  spiffeId: string;
  serialNumber: string | undefined;
  notBefore: string | undefined;
  notAfter: string | undefined;
  nextRotation: string | undefined;
  rotations: number;
}

function secret(name: string, value: Record<string, unknown>): Secret__Output {
  return decodeMessage(secretType, encodeMessage(secretType, { name, ...value }));
}

/** `default` and `ROOTCA` as SDS would send them for one workload secret. */
export function sdsSecrets(s: Pick<WorkloadSecret, 'certChainPem' | 'privateKeyPem' | 'rootCertPem'>): Map<string, Secret__Output> {
  return new Map([
    [
      WorkloadCertSecret,
      secret(WorkloadCertSecret, {
        tls_certificate: { certificate_chain: { inline_bytes: Buffer.from(s.certChainPem) }, private_key: { inline_bytes: Buffer.from(s.privateKeyPem) } },
      }),
    ],
    [RootCertSecret, secret(RootCertSecret, { validation_context: { trusted_ca: { inline_bytes: Buffer.from(s.rootCertPem) } } })],
  ]);
}

/** Checks the options before anything starts; throws with a message a user can act on. */
export function checkIdentityOptions(o: WorkloadIdentityOptions): void {
  if (!o.signer && !/^[^\s:]+:\d+$|^\[[^\]]+\]:\d+$/.test(o.caAddress)) throw new Error(`CA address ${JSON.stringify(o.caAddress)} is not host:port`);
  if (!o.rootCertPem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('the CA root certificate is not a PEM certificate');
  if (!o.serviceAccount) throw new Error('a workload identity needs a service account');
  if (o.token === undefined && o.tokenFile === undefined && !o.signer) throw new Error('a workload identity needs a bootstrap token (--ca-token-file) for its first certificate');
}

/** The workload certificate and root, kept current; `secret(name)` is the SDS lookup listeners and clusters use. */
export class WorkloadIdentity {
  readonly spiffeId: string;
  readonly #o: WorkloadIdentityOptions;
  #manager: CertificateManager | undefined;
  #secrets: ReadonlyMap<string, Secret__Output> = new Map();
  #current: WorkloadSecret | undefined;
  #rotations = 0;
  readonly #listeners = new Set<() => void>();
  #stopped = false;

  constructor(o: WorkloadIdentityOptions) {
    checkIdentityOptions(o);
    this.#o = o;
    this.spiffeId = spiffeId(o.trustDomain, o.namespace, o.serviceAccount);
  }

  /** Requests the first certificate (retrying while the CA is unreachable) and keeps it current. */
  async start(): Promise<void> {
    const o = this.#o;
    const { CertificateManager } = await import('@weft/citadel');
    if (this.#stopped) throw new Error('workload identity stopped');
    const tokenFile = o.tokenFile;
    const bootstrapToken = o.token ?? (tokenFile ? () => readFileSync(tokenFile, 'utf8').trim() : undefined);
    const manager = new CertificateManager({
      identity: this.spiffeId,
      rootCertPem: o.rootCertPem,
      ...(o.signer ? { signer: o.signer } : { caAddress: o.caAddress }),
      ...(o.caServerName ? { caServerName: o.caServerName } : {}),
      ...(bootstrapToken !== undefined ? { bootstrapToken } : {}),
      ...(o.ttlSeconds !== undefined ? { ttlSeconds: o.ttlSeconds } : {}),
      ...(o.gracePeriodRatio !== undefined ? { gracePeriodRatio: o.gracePeriodRatio } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
      ...(o.logger ? { logger: o.logger } : {}),
    });
    this.#manager = manager;
    manager.subscribe((s) => this.#apply(s));
    await manager.start();
  }

  #apply(s: WorkloadSecret): void {
    if (this.#current) this.#rotations++;
    this.#current = s;
    this.#secrets = sdsSecrets(s);
    for (const l of this.#listeners) l();
  }

  /** The SDS secret `default` or `ROOTCA` (undefined before the first certificate, and for other names). */
  secret(name: string): Secret__Output | undefined {
    return this.#secrets.get(name);
  }

  get current(): WorkloadSecret | undefined {
    return this.#current;
  }

  /**
   * Credentials for an xDS stream to the control plane's TLS port: the server is verified against
   * the trust bundle (and `caServerName`, the control plane's TLS name); the proxy authenticates
   * with its current certificate, or with `authorization: Bearer <bootstrap token>` while it has
   * none (or only an expired one). Throws when it has neither.
   */
  xdsChannel(): XdsChannel {
    const o = this.#o;
    const root = Buffer.from(o.rootCertPem);
    const serverName = controlPlaneServerName(o.caAddress, o.caServerName);
    const options = serverName ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName } : {};
    const c = this.#current;
    if (c && c.notAfter.getTime() > Date.now()) {
      return { key: `certificate ${c.serialNumber}`, credentials: credentials.createSsl(root, Buffer.from(c.privateKeyPem), Buffer.from(c.certChainPem)), options };
    }
    let token: string | undefined;
    try {
      token = o.token ?? (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined);
    } catch (err) {
      throw new Error(`no workload certificate yet, and the bootstrap token cannot be read: ${(err as Error).message}`);
    }
    if (!token) throw new Error('no workload certificate yet, and no bootstrap token');
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    return { key: 'bootstrap token', credentials: credentials.createSsl(root), metadata, options };
  }

  /** Called after every new certificate (or trust bundle). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  status(): IdentityStatus {
    const c = this.#current;
    return {
      spiffeId: this.spiffeId,
      serialNumber: c?.serialNumber,
      notBefore: c?.notBefore.toISOString(),
      notAfter: c?.notAfter.toISOString(),
      nextRotation: this.#manager?.nextRotation?.toISOString(),
      rotations: this.#rotations,
    };
  }

  stop(): void {
    this.#stopped = true;
    this.#manager?.stop();
  }
}

/** How a proxy reaches the mesh CA (flags --ca-address, --ca-root-cert, --ca-token-file...). */
export interface ProxyCaOptions {
  /** host:port of the CA (weftd's TLS port, 15012). */
  address: string;
  /** File with the PEM trust bundle (weftd's root-cert.pem). */
  rootCertFile: string;
  /** File with a bootstrap token (`weftctl bootstrap-token`; Istio's istio-token). */
  tokenFile?: string;
  /** The CA's TLS name when the host of `address` is not among its SANs. */
  serverName?: string;
  /** SPIFFE trust domain (default cluster.local). */
  trustDomain?: string;
  /** Requested certificate lifetime in seconds (default: the CA's, 24 h). */
  ttlSeconds?: number;
}

/** The identity of a proxy in `namespace` running as `serviceAccount`, from the CA options. */
export function proxyIdentity(ca: ProxyCaOptions, namespace: string, serviceAccount: string | undefined, logger: Logger): WorkloadIdentity {
  let rootCertPem: string;
  try {
    rootCertPem = readFileSync(ca.rootCertFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the CA root certificate ${ca.rootCertFile}: ${(err as Error).message}`);
  }
  return new WorkloadIdentity({
    caAddress: ca.address,
    rootCertPem,
    ...(ca.serverName ? { caServerName: ca.serverName } : {}),
    ...(ca.tokenFile ? { tokenFile: ca.tokenFile } : {}),
    trustDomain: ca.trustDomain ?? 'cluster.local',
    namespace,
    // Kubernetes runs a pod without a service account as `default`.
    serviceAccount: serviceAccount ?? 'default',
    ...(ca.ttlSeconds !== undefined ? { ttlSeconds: ca.ttlSeconds } : {}),
    logger,
  });
}
