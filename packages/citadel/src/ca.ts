// The mesh CA: signs workload certificates from CSRs. Its signing certificate and key come from a
// directory in Istio's `cacerts` layout (a plug-in CA, possibly an intermediate), or are a
// self-signed root generated on first start and written to that directory in the same layout.
import { defaultTrustDomain, parseSpiffeId } from '@weft/mesh';
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { WeftError, type WeftErrorCode } from '@weft/model';
import { createLogger, type Logger } from '@weft/model';
import type { CaExpiry } from './metrics.ts';
import {
  CertificateSigner,
  CsrError,
  createSelfSignedCertificate,
  defaultRsaKeyBits,
  generateRsaKeyPair,
  joinPem,
  parseCsr,
  splitPemCertificates,
} from './pki.ts';
import { checkedSpiffeId } from './spiffe.ts';
import { signBootstrapToken, verifyBootstrapToken } from './token.ts';

/** File names of Istio's cacerts layout. */
export const caFileNames = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  certChain: 'cert-chain.pem',
  rootCert: 'root-cert.pem',
} as const;

export const defaultCertTtlSeconds = 24 * 3600;
export const defaultMaxCertTtlSeconds = 90 * 24 * 3600;
/** Istio's self-signed root lifetime: 3650 days. */
export const defaultRootTtlSeconds = 3650 * 24 * 3600;

/**
 * Istio's CA error types (security/pkg/pki/error), plus the identity checks Weft adds. Each maps to
 * the gRPC status Istio returns for it.
 */
export type CaErrorType = 'CA_NOT_READY' | 'CSR_ERROR' | 'ID_ERROR' | 'IDENTITY_MISMATCH' | 'TTL_ERROR' | 'CERT_GEN_ERROR';

const caErrorCodes: Record<CaErrorType, WeftErrorCode> = {
  CA_NOT_READY: 'INTERNAL',
  CSR_ERROR: 'INVALID_ARGUMENT',
  ID_ERROR: 'INVALID_ARGUMENT',
  IDENTITY_MISMATCH: 'PERMISSION_DENIED',
  TTL_ERROR: 'INVALID_ARGUMENT',
  CERT_GEN_ERROR: 'INTERNAL',
};

export class CaError extends WeftError {
  readonly type: CaErrorType;
  constructor(type: CaErrorType, message: string, options?: { cause?: unknown }) {
    super(caErrorCodes[type], message, options);
    this.name = 'CaError';
    this.type = type;
  }
}

export interface CertificateAuthorityOptions {
  trustDomain?: string;
  /** TTL of a workload certificate when the request names none (or 0); default 24 h. */
  defaultCertTtlSeconds?: number;
  /** Requests for a longer TTL are refused (TTL_ERROR), as Istio does; default 90 days. */
  maxCertTtlSeconds?: number;
  logger?: Logger;
  /** Clock (ms since the epoch); tests move it. */
  now?: () => number;
}

export interface SelfSignedRootOptions {
  rootTtlSeconds?: number;
  /** Subject organization of the root; defaults to the trust domain, as Istio does. */
  organization?: string;
  keyBits?: number;
}

/** The contents of a cacerts directory. */
export interface CaMaterial {
  caCertPem: string;
  caKeyPem: string;
  /** The signing certificate's chain up to the root (cert-chain.pem); optional for a self-signed CA. */
  certChainPem?: string;
  /** One or more trusted roots (root-cert.pem). */
  rootCertPem: string;
}

export interface IssuedCertificate {
  /** The leaf certificate (PEM). */
  certificatePem: string;
  /** One PEM certificate per element: the leaf first, then intermediates, the root(s) last. */
  chain: string[];
  spiffeId: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
}

export interface SignOptions {
  /** The authenticated caller's SPIFFE ID. When given, the CSR must ask for exactly it (else IDENTITY_MISMATCH). */
  identity?: string;
  /** Requested TTL in seconds; 0 or absent means the default TTL. */
  ttlSeconds?: number;
}

export interface ServingCertificateOptions {
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  uris?: readonly string[];
  ttlSeconds?: number;
}

export interface ServingCertificate {
  /** Leaf and intermediates (not the root), PEM. */
  certChainPem: string;
  privateKeyPem: string;
  notAfter: Date;
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly defaultCertTtlSeconds: number;
  readonly maxCertTtlSeconds: number;
  /** `self-signed` when the signing certificate is itself a trusted root. */
  readonly kind: 'self-signed' | 'plugged';
  /** The trusted roots, one PEM per element (root-cert.pem may hold several during a root rotation). */
  readonly roots: readonly string[];
  /** Certificates between the signing certificate (first, when it is not a root) and the roots. */
  readonly intermediates: readonly string[];
  private readonly signer: CertificateSigner;
  private readonly publicKey: KeyObject;
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(material: CaMaterial, options: CertificateAuthorityOptions = {}) {
    this.trustDomain = options.trustDomain ?? defaultTrustDomain;
    this.defaultCertTtlSeconds = options.defaultCertTtlSeconds ?? defaultCertTtlSeconds;
    this.maxCertTtlSeconds = options.maxCertTtlSeconds ?? defaultMaxCertTtlSeconds;
    this.logger = options.logger ?? createLogger({ scope: 'citadel' });
    this.now = options.now ?? Date.now;
    if (this.defaultCertTtlSeconds > this.maxCertTtlSeconds) throw new CaError('CA_NOT_READY', 'the default certificate TTL exceeds the maximum TTL');

    try {
      this.signer = new CertificateSigner(material.caCertPem, material.caKeyPem);
    } catch (err) {
      throw new CaError('CA_NOT_READY', `cannot use ca-cert.pem/ca-key.pem: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.publicKey = createPublicKey(this.signer.privateKey);
    const signing = this.signer.certificate;
    if (!signing.ca) throw new CaError('CA_NOT_READY', 'ca-cert.pem is not a CA certificate (basicConstraints CA:FALSE)');
    if (Date.parse(signing.validTo) <= this.now()) throw new CaError('CA_NOT_READY', `ca-cert.pem expired at ${signing.validTo}`);

    const roots = splitPemCertificates(material.rootCertPem);
    if (roots.length === 0) throw new CaError('CA_NOT_READY', 'root-cert.pem holds no certificate');
    const rootPrints = new Set(roots.map(fingerprint));
    const seen = new Set<string>();
    const intermediates: string[] = [];
    for (const pem of [material.caCertPem, ...splitPemCertificates(material.certChainPem ?? '')]) {
      const fp = fingerprint(pem);
      if (rootPrints.has(fp) || seen.has(fp)) continue;
      seen.add(fp);
      intermediates.push(splitPemCertificates(pem)[0]!);
    }
    this.roots = roots;
    this.intermediates = intermediates;
    this.kind = rootPrints.has(signing.fingerprint256) ? 'self-signed' : 'plugged';
    this.checkChain();
  }

  /** Loads the CA from `dir` (Istio's cacerts layout); if the directory holds no CA, generates a self-signed root there. */
  static async open(dir: string, options: CertificateAuthorityOptions & SelfSignedRootOptions = {}): Promise<CertificateAuthority> {
    const read = (name: string) => readFile(join(dir, name), 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    const [caCertPem, caKeyPem, certChainPem, rootCertPem] = await Promise.all([
      read(caFileNames.caCert),
      read(caFileNames.caKey),
      read(caFileNames.certChain),
      read(caFileNames.rootCert),
    ]);
    const logger = options.logger ?? createLogger({ scope: 'citadel' });
    if (caCertPem !== undefined && caKeyPem !== undefined) {
      const material: CaMaterial = { caCertPem, caKeyPem, rootCertPem: rootCertPem ?? caCertPem, ...(certChainPem !== undefined ? { certChainPem } : {}) };
      if (rootCertPem === undefined && !new X509Certificate(caCertPem).checkIssued(new X509Certificate(caCertPem))) {
        throw new CaError('CA_NOT_READY', `${join(dir, caFileNames.rootCert)} is missing and ca-cert.pem is not self-signed`);
      }
      const ca = new CertificateAuthority(material, { ...options, logger });
      logger.info('loaded CA', { dir, kind: ca.kind, trustDomain: ca.trustDomain, caCertExpiry: ca.expiry.caCertExpiry.toISOString(), rootCertExpiry: ca.expiry.rootCertExpiry.toISOString() });
      return ca;
    }
    if (caCertPem !== undefined || caKeyPem !== undefined) {
      throw new CaError('CA_NOT_READY', `${dir} holds only one of ${caFileNames.caCert} and ${caFileNames.caKey}`);
    }
    const material = await CertificateAuthority.generateRoot({ ...options, now: options.now ?? Date.now });
    await writeCaDirectory(dir, material);
    const ca = new CertificateAuthority(material, { ...options, logger });
    logger.info('generated self-signed root CA', { dir, trustDomain: ca.trustDomain, rootCertExpiry: ca.expiry.rootCertExpiry.toISOString() });
    return ca;
  }

  /** A new self-signed root (key and certificate) as cacerts material; nothing is written. */
  static async generateRoot(options: Pick<CertificateAuthorityOptions, 'trustDomain' | 'now'> & SelfSignedRootOptions = {}): Promise<CaMaterial> {
    const keys = await generateRsaKeyPair(options.keyBits ?? defaultRsaKeyBits);
    const now = new Date((options.now ?? Date.now)());
    const rootPem = createSelfSignedCertificate(
      {
        subject: { organization: options.organization ?? options.trustDomain ?? defaultTrustDomain },
        notBefore: now,
        notAfter: new Date(now.getTime() + (options.rootTtlSeconds ?? defaultRootTtlSeconds) * 1000),
        ca: {},
      },
      keys.privateKeyPem,
    );
    return { caCertPem: rootPem, caKeyPem: keys.privateKeyPem, certChainPem: rootPem, rootCertPem: rootPem };
  }

  /** The trusted roots as one PEM bundle (what root-cert.pem and the ROOTCA secret hold). */
  get rootCertPem(): string {
    return joinPem(this.roots);
  }

  /** The signing certificate (PEM). */
  get caCertPem(): string {
    return this.signer.certificatePem;
  }

  /** The signing certificate's chain to the root, as cert-chain.pem holds it. */
  get certChainPem(): string {
    return joinPem([...this.intermediates, ...this.roots.slice(0, 1)]);
  }

  get expiry(): CaExpiry {
    const rootExpiry = Math.min(...this.roots.map((r) => Date.parse(new X509Certificate(r).validTo)));
    return { rootCertExpiry: new Date(rootExpiry), caCertExpiry: new Date(Date.parse(this.signer.certificate.validTo)) };
  }

  /** Signs a workload CSR. Throws CaError (CSR_ERROR, ID_ERROR, IDENTITY_MISMATCH, TTL_ERROR, CERT_GEN_ERROR). */
  sign(csrPem: string, options: SignOptions = {}): IssuedCertificate {
    let csr: ReturnType<typeof parseCsr>;
    try {
      csr = parseCsr(csrPem);
    } catch (err) {
      if (err instanceof CsrError) throw new CaError('CSR_ERROR', err.message);
      throw new CaError('CSR_ERROR', `CSR cannot be parsed: ${String(err)}`, { cause: err });
    }
    if (csr.uris.length !== 1) throw new CaError('ID_ERROR', `CSR must have exactly one URI SAN, it has ${csr.uris.length}`);
    const requested = csr.uris[0]!;
    const identity = parseSpiffeId(requested);
    if (!identity) throw new CaError('ID_ERROR', `CSR URI SAN ${JSON.stringify(requested)} is not a SPIFFE ID of the form spiffe://<trust-domain>/ns/<ns>/sa/<sa>`);
    if (identity.trustDomain !== this.trustDomain) throw new CaError('ID_ERROR', `CSR identity ${requested} is outside trust domain ${this.trustDomain}`);
    if (options.identity !== undefined && options.identity !== requested) {
      throw new CaError('IDENTITY_MISMATCH', `caller ${options.identity} may not request a certificate for ${requested}`);
    }
    const ttl = this.ttlFor(options.ttlSeconds);
    const notBefore = new Date(this.now());
    const notAfter = new Date(notBefore.getTime() + ttl * 1000);
    let certificatePem: string;
    try {
      certificatePem = this.signer.issue({ publicKey: csr.publicKey, notBefore, notAfter, uris: [requested] });
    } catch (err) {
      throw new CaError('CERT_GEN_ERROR', `certificate generation failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const leaf = new X509Certificate(certificatePem);
    return {
      certificatePem,
      chain: [certificatePem, ...this.intermediates, ...this.roots],
      spiffeId: requested,
      serialNumber: leaf.serialNumber,
      notBefore: new Date(Date.parse(leaf.validFrom)),
      notAfter: new Date(Date.parse(leaf.validTo)),
    };
  }

  private ttlFor(requested: number | undefined): number {
    const r = requested ?? 0;
    if (!Number.isFinite(r)) throw new CaError('TTL_ERROR', `requested TTL ${r} is not a number of seconds`);
    if (r > this.maxCertTtlSeconds) throw new CaError('TTL_ERROR', `requested TTL ${r}s is greater than the max allowed TTL ${this.maxCertTtlSeconds}s`);
    return r > 0 ? Math.ceil(r) : this.defaultCertTtlSeconds;
  }

  /** A bootstrap credential for a workload's first CSR: a token naming its SPIFFE ID, signed by the CA key. */
  issueBootstrapToken(namespace: string, serviceAccount: string, ttlSeconds = 3600): string {
    return signBootstrapToken(checkedSpiffeId({ trustDomain: this.trustDomain, namespace, serviceAccount }), ttlSeconds, this.signer.privateKey, this.now());
  }

  /** The SPIFFE ID a bootstrap token vouches for; throws TokenError when it is invalid or expired. */
  verifyBootstrapToken(token: string): string {
    return verifyBootstrapToken(token, this.publicKey, this.now()).sub;
  }

  /** A TLS serving certificate for the CA's own endpoints (and the control plane's), with a fresh key. */
  async issueServingCertificate(options: ServingCertificateOptions): Promise<ServingCertificate> {
    const keys = await generateRsaKeyPair();
    const notBefore = new Date(this.now());
    const notAfter = new Date(notBefore.getTime() + (options.ttlSeconds ?? this.defaultCertTtlSeconds) * 1000);
    const leaf = this.signer.issue({
      publicKey: keys.publicKeyPem,
      notBefore,
      notAfter,
      dnsNames: options.dnsNames ?? [],
      ipAddresses: options.ipAddresses ?? [],
      uris: options.uris ?? [],
    });
    return { certChainPem: joinPem([leaf, ...this.intermediates]), privateKeyPem: keys.privateKeyPem, notAfter: truncated(notAfter) };
  }

  /** Trust distribution: writes the root bundle to `path` (atomically), where workloads and proxies read it. */
  async writeRootCert(path: string): Promise<void> {
    await writeFileAtomic(path, this.rootCertPem, 0o644);
    this.logger.info('wrote root certificate', { path, roots: this.roots.length });
  }

  private checkChain(): void {
    const roots = this.roots.map((r) => new X509Certificate(r));
    const pool = this.intermediates.map((p) => new X509Certificate(p));
    let current = this.signer.certificate;
    for (let depth = 0; depth <= pool.length; depth++) {
      if (roots.some((r) => current.checkIssued(r) && current.verify(r.publicKey))) return;
      const parent = pool.find((p) => p !== current && p.fingerprint256 !== current.fingerprint256 && current.checkIssued(p) && current.verify(p.publicKey));
      if (!parent) break;
      current = parent;
    }
    throw new CaError('CA_NOT_READY', 'ca-cert.pem does not chain to root-cert.pem through cert-chain.pem');
  }
}

function truncated(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

async function writeFileAtomic(path: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}

/** Writes cacerts material to `dir`; ca-cert.pem goes last, so a reader never sees a certificate without its key. */
export async function writeCaDirectory(dir: string, material: CaMaterial): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, caFileNames.rootCert), material.rootCertPem, 0o644);
  await writeFileAtomic(join(dir, caFileNames.certChain), material.certChainPem ?? material.caCertPem, 0o644);
  await writeFileAtomic(join(dir, caFileNames.caKey), material.caKeyPem, 0o600);
  await writeFileAtomic(join(dir, caFileNames.caCert), material.caCertPem, 0o644);
}
