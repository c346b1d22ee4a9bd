// The workload's certificate manager (Istio's agent secret cache): keeps one workload certificate
// current. It generates a key and CSR, obtains the certificate (bootstrap token first, then its own
// certificate for renewals), rotates at half the lifetime (with jitter), retries with exponential
// backoff while the CA is unreachable, and tells subscribers about every new certificate.
import { defaultTrustDomain } from '@weft/mesh';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { CertificateAuthority } from './ca.ts';
import { type CaCallerCredential, requestCertificate } from './ca-client.ts';
import { createLogger, type Logger } from '@weft/model';
import { createCsr, defaultRsaKeyBits, generateRsaKeyPair, joinPem, splitPemCertificates } from './pki.ts';
import { checkedSpiffeId, spiffeIdOf, type WorkloadIdentity } from './spiffe.ts';

/** A workload's current credentials, as SDS serves them. */
export interface WorkloadSecret {
  spiffeId: string;
  /** Leaf first, then intermediates; the root is not included. */
  certChainPem: string;
  privateKeyPem: string;
  /** The trust bundle peers are verified against (the SDS ROOTCA resource). */
  rootCertPem: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Changes with every new certificate or trust bundle; SDS uses it as version_info. */
  version: string;
}

/** Anything that holds a current WorkloadSecret and announces new ones (the manager; fixed secrets in tests). */
export interface SecretSource {
  readonly current: WorkloadSecret | undefined;
  subscribe(listener: (secret: WorkloadSecret) => void): () => void;
}

/** Signs a CSR for the manager: the gRPC CA by default, or anything else (an in-process CA, a fake). */
export type CsrSigner = (csrPem: string, ttlSeconds: number, credential: CaCallerCredential) => Promise<string[]>;

export interface CertificateManagerOptions {
  /** The workload's identity (a SPIFFE ID, or its parts). */
  identity: string | (Omit<WorkloadIdentity, 'trustDomain'> & { trustDomain?: string });
  /** The trust bundle: verifies the CA's serving certificate and becomes the ROOTCA secret. */
  rootCertPem: string;
  /** host:port of the CA; required unless `signer` is given. */
  caAddress?: string;
  /** TLS name of the CA when `caAddress` is not among its SANs. */
  caServerName?: string;
  /** The credential for the first request (and whenever the current certificate cannot be used). */
  bootstrapToken?: string | (() => string | Promise<string>);
  /** Requested certificate TTL in seconds; 0 (the default) lets the CA choose. */
  ttlSeconds?: number;
  /** Rotate when this fraction of the lifetime remains (Istio's SECRET_GRACE_PERIOD_RATIO, 0.5). */
  gracePeriodRatio?: number;
  /** Random spread added to the ratio, ± (Istio's SECRET_GRACE_PERIOD_RATIO_JITTER, 0.01). */
  gracePeriodJitter?: number;
  /** Backoff between failed attempts: starts at `initialMs`, doubles to `maxMs`, with ±20% jitter. */
  retry?: { initialMs?: number; maxMs?: number };
  requestTimeoutMs?: number;
  keyBits?: number;
  signer?: CsrSigner;
  logger?: Logger;
}

const maxTimer = 2 ** 31 - 1;

function isGrpcError(err: unknown): err is { code: number; details?: string } {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number';
}

export class CertificateManager implements SecretSource {
  readonly spiffeId: string;
  private readonly options: CertificateManagerOptions;
  private readonly logger: Logger;
  private readonly signer: CsrSigner;
  private secret: WorkloadSecret | undefined;
  private rootCertPem: string;
  private generation = 0;
  private readonly listeners = new Set<(secret: WorkloadSecret) => void>();
  private timer: NodeJS.Timeout | undefined;
  private rotateAt: Date | undefined;
  private stopped = false;
  private inflight: Promise<WorkloadSecret> | undefined;
  private wake: (() => void) | undefined;
  private tokenOnly = false;

  constructor(options: CertificateManagerOptions) {
    this.options = options;
    this.spiffeId =
      typeof options.identity === 'string' ? options.identity : checkedSpiffeId({ trustDomain: defaultTrustDomain, ...options.identity });
    this.rootCertPem = options.rootCertPem;
    this.logger = (options.logger ?? createLogger({ scope: 'citadel' })).with({ identity: this.spiffeId });
    if (!options.signer && !options.caAddress) throw new Error('CertificateManager needs caAddress or signer');
    this.signer =
      options.signer ??
      ((csrPem, ttlSeconds, credential) =>
        requestCertificate({
          address: options.caAddress!,
          rootCertPem: this.rootCertPem,
          ...(options.caServerName ? { serverName: options.caServerName } : {}),
          csrPem,
          ttlSeconds,
          credential,
          timeoutMs: options.requestTimeoutMs ?? 10_000,
        }));
  }

  get current(): WorkloadSecret | undefined {
    return this.secret;
  }

  /** When the next rotation is due. */
  get nextRotation(): Date | undefined {
    return this.rotateAt;
  }

  subscribe(listener: (secret: WorkloadSecret) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Obtains the first certificate (retrying until it succeeds or `stop()`), then keeps it current. */
  start(): Promise<WorkloadSecret> {
    this.stopped = false;
    return this.rotate();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.rotateAt = undefined;
    this.wake?.();
  }

  /** Gets a new certificate now (one rotation at a time: concurrent callers share it). */
  rotate(): Promise<WorkloadSecret> {
    this.inflight ??= this.obtainWithRetry().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Replaces the trust bundle (a root rotation): subscribers get a new version with the same certificate. */
  setRootCert(rootCertPem: string): void {
    this.rootCertPem = rootCertPem;
    if (this.secret) this.publish({ ...this.secret, rootCertPem, version: String(++this.generation) });
  }

  private async obtainWithRetry(): Promise<WorkloadSecret> {
    const initial = this.options.retry?.initialMs ?? 1000;
    const max = this.options.retry?.maxMs ?? 30_000;
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new Error('certificate manager stopped');
      try {
        const secret = await this.obtainOnce();
        this.publish(secret);
        this.schedule(secret);
        return secret;
      } catch (err) {
        if (this.stopped) throw err;
        const delay = Math.min(max, initial * 2 ** attempt) * (0.8 + Math.random() * 0.4);
        this.logger.warn('certificate request failed; retrying', {
          attempt: attempt + 1,
          retryInMs: Math.round(delay),
          error: isGrpcError(err) ? { code: status[err.code], details: err.details } : err,
        });
        await this.sleep(delay);
      }
    }
  }

  private async obtainOnce(): Promise<WorkloadSecret> {
    const credential = await this.credential();
    const keys = await generateRsaKeyPair(this.options.keyBits ?? defaultRsaKeyBits);
    const csrPem = createCsr(this.spiffeId, keys);
    let chain: string[];
    try {
      chain = await this.signer(csrPem, this.options.ttlSeconds ?? 0, credential);
    } catch (err) {
      // A CA that no longer accepts our certificate (say, after a root change) may still take the token.
      if (credential.kind === 'certificate' && isGrpcError(err) && err.code === status.UNAUTHENTICATED && this.options.bootstrapToken) this.tokenOnly = true;
      throw err;
    }
    const pems = chain.flatMap((c) => splitPemCertificates(c));
    const leafPem = pems[0];
    if (!leafPem) throw new Error('CA returned no certificate');
    const leaf = new X509Certificate(leafPem);
    if (spiffeIdOf(leaf) !== this.spiffeId) throw new Error(`CA issued a certificate for ${spiffeIdOf(leaf) ?? 'no SPIFFE ID'}, not ${this.spiffeId}`);
    if (!leaf.checkPrivateKey(createPrivateKey(keys.privateKeyPem))) throw new Error('CA returned a certificate for another key');
    // Keep the leaf and intermediates; self-signed certificates (roots) are the trust bundle's business.
    const chainPems = pems.filter((p, i) => i === 0 || !isSelfSigned(p));
    const trusted = new Set(splitPemCertificates(this.rootCertPem).map((p) => new X509Certificate(p).fingerprint256));
    const last = pems[pems.length - 1]!;
    if (pems.length > 1 && !trusted.has(new X509Certificate(last).fingerprint256)) {
      this.logger.warn('the CA chain ends in a root outside the configured trust bundle', { root: new X509Certificate(last).subject });
    }
    this.tokenOnly = false;
    return {
      spiffeId: this.spiffeId,
      certChainPem: joinPem(chainPems),
      privateKeyPem: keys.privateKeyPem,
      rootCertPem: this.rootCertPem,
      serialNumber: leaf.serialNumber,
      notBefore: new Date(Date.parse(leaf.validFrom)),
      notAfter: new Date(Date.parse(leaf.validTo)),
      version: String(this.generation + 1),
    };
  }

  private async credential(): Promise<CaCallerCredential> {
    const s = this.secret;
    if (s && !this.tokenOnly && s.notAfter.getTime() > Date.now() + 1000) {
      return { kind: 'certificate', certChainPem: s.certChainPem, privateKeyPem: s.privateKeyPem };
    }
    const t = this.options.bootstrapToken;
    if (t === undefined) throw new Error(s ? 'certificate expired and no bootstrap token is configured' : 'no bootstrap token configured for the first certificate');
    return { kind: 'token', token: typeof t === 'string' ? t : await t() };
  }

  private publish(secret: WorkloadSecret): void {
    this.generation = Number(secret.version);
    this.secret = secret;
    this.logger.info('workload certificate ready', { serial: secret.serialNumber, notAfter: secret.notAfter.toISOString(), version: secret.version });
    for (const l of this.listeners) {
      try {
        l(secret);
      } catch (err) {
        this.logger.error('certificate subscriber failed', { error: err });
      }
    }
  }

  private schedule(secret: WorkloadSecret): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const lifetime = secret.notAfter.getTime() - secret.notBefore.getTime();
    const jitter = this.options.gracePeriodJitter ?? 0.01;
    const ratio = Math.min(0.95, Math.max(0.05, (this.options.gracePeriodRatio ?? 0.5) + (Math.random() * 2 - 1) * jitter));
    const at = secret.notAfter.getTime() - lifetime * ratio;
    this.rotateAt = new Date(at);
    this.logger.debug('rotation scheduled', { at: this.rotateAt.toISOString() });
    const arm = () => {
      const wait = at - Date.now();
      if (wait > maxTimer) {
        this.timer = setTimeout(arm, maxTimer);
      } else {
        this.timer = setTimeout(
          () => {
            this.rotate().catch((err: unknown) => this.logger.error('rotation failed', { error: err }));
          },
          Math.max(0, wait),
        );
      }
      this.timer.unref();
    };
    arm();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

function isSelfSigned(pem: string): boolean {
  const x = new X509Certificate(pem);
  return x.checkIssued(x) && x.verify(x.publicKey);
}

/**
 * A workload secret signed directly by an in-process CA, without the gRPC service: for the
 * control plane's own workloads, local mode, and tests.
 */
export async function issueWorkloadSecret(
  ca: CertificateAuthority,
  identity: Omit<WorkloadIdentity, 'trustDomain'>,
  options: { ttlSeconds?: number; keyBits?: number; version?: string } = {},
): Promise<WorkloadSecret> {
  const id = checkedSpiffeId({ trustDomain: ca.trustDomain, ...identity });
  const keys = await generateRsaKeyPair(options.keyBits ?? defaultRsaKeyBits);
  const issued = ca.sign(createCsr(id, keys), { identity: id, ttlSeconds: options.ttlSeconds ?? 0 });
  return {
    spiffeId: id,
    certChainPem: joinPem([issued.certificatePem, ...ca.intermediates]),
    privateKeyPem: keys.privateKeyPem,
    rootCertPem: ca.rootCertPem,
    serialNumber: issued.serialNumber,
    notBefore: issued.notBefore,
    notAfter: issued.notAfter,
    version: options.version ?? '1',
  };
}
