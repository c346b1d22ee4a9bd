// The signing service: istio.v1.auth.IstioCertificateService/CreateCertificate over TLS.
// Callers authenticate with their current workload certificate (mTLS renewal) or, for their first
// certificate, with a bearer token in `authorization: Bearer <token>` (a bootstrap token, or the
// platform's service-account token when a PlatformTokenAuthenticator is given). A CSR is signed
// only for the caller's own identity.
import { experimental, Metadata, Server, type ServerCredentials, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { conversionOptions } from '@weft/xds';
import { CaError, type CertificateAuthority, type ServingCertificate, type ServingCertificateOptions } from './ca.ts';
import { caProtoFile, protoDir } from './codegen.ts';
import type { IstioCertificateServiceDefinition, IstioCertificateServiceHandlers } from './generated/istio/v1/auth/IstioCertificateService.ts';
import { controlPlaneTlsName, createLogger, type Logger } from '@weft/model';
import { CitadelMetrics } from './metrics.ts';
import { authenticateCaller, type CallerAuthentication, type PlatformTokenAuthenticator } from './caller-auth.ts';

export const caServiceName = 'istio.v1.auth.IstioCertificateService';

let definition: IstioCertificateServiceDefinition | undefined;

/** The CreateCertificate service definition, loaded from proto/istio/v1/auth/ca.proto. */
export function caServiceDefinition(): IstioCertificateServiceDefinition {
  definition ??= loadSync(caProtoFile, { includeDirs: [protoDir], ...conversionOptions })[caServiceName] as unknown as IstioCertificateServiceDefinition;
  return definition;
}

export interface CaServiceOptions {
  ca: CertificateAuthority;
  /** Also accept the platform's service-account tokens (Kubernetes: TokenReview, from @weft/kube). */
  platformTokens?: PlatformTokenAuthenticator;
  metrics?: CitadelMetrics;
  logger?: Logger;
}

/** Handlers for `server.addService(caServiceDefinition(), ...)`. */
export function createCaServiceHandlers(options: CaServiceOptions): IstioCertificateServiceHandlers {
  const { ca } = options;
  const metrics = options.metrics ?? new CitadelMetrics();
  const logger = options.logger ?? createLogger({ scope: 'citadel' });
  metrics.recordCaExpiry(ca.expiry);
  return {
    CreateCertificate(call, callback) {
      metrics.csrCount.inc();
      const peer = call.getPeer();
      const authenticated = authenticateCaller(call, ca, options.platformTokens);
      if (authenticated instanceof Promise) void authenticated.then(respond);
      else respond(authenticated);

      function respond(caller: CallerAuthentication): void {
        if (caller.identities === undefined) {
          metrics.authnErrorCount.inc();
          metrics.refused('unauthenticated');
          logger.warn('CSR refused: caller not authenticated', { peer, reason: caller.reason, code: 'UNAUTHENTICATED' });
          callback({ code: status.UNAUTHENTICATED, details: 'request authenticate failure' });
          return;
        }
        const ttlSeconds = Number(call.request.validity_duration);
        try {
          const issued = ca.sign(call.request.csr, { identity: caller.identities[0]!, ttlSeconds });
          metrics.successCount.inc();
          logger.info('issued certificate', {
            peer,
            identity: issued.spiffeId,
            authn: caller.via,
            serial: issued.serialNumber,
            notAfter: issued.notAfter.toISOString(),
          });
          callback(null, { cert_chain: issued.chain });
        } catch (err) {
          const e = err instanceof CaError ? err : new CaError('CERT_GEN_ERROR', String(err), { cause: err });
          switch (e.type) {
            case 'CSR_ERROR':
              metrics.csrParsingErrorCount.inc();
              metrics.refused('csr_parse');
              break;
            case 'ID_ERROR':
              metrics.idExtractionErrorCount.inc();
              metrics.refused('id_extraction');
              break;
            case 'IDENTITY_MISMATCH':
              // Istio counts a refused impersonation as an authentication failure.
              metrics.authnErrorCount.inc();
              metrics.refused('permission_denied');
              break;
            case 'TTL_ERROR':
              metrics.csrSignErrorCount.inc({ error: e.type });
              metrics.refused('ttl');
              break;
            default:
              metrics.csrSignErrorCount.inc({ error: e.type });
              metrics.refused('internal');
          }
          const fields = { peer, caller: caller.identities[0], authn: caller.via, error: e.type, reason: e.message, code: e.code };
          if (e.type === 'IDENTITY_MISMATCH') logger.warn('CSR refused: identity differs from the caller', fields);
          else if (e.code === 'INTERNAL') logger.error('CSR signing failed', fields);
          else logger.warn('CSR refused', fields);
          callback({ code: e.grpcStatus, details: `CSR signing error (${e.message})` });
        }
      }
    },
  };
}

/** Default SANs of the CA's serving certificate (the names Istio's agents dial, and local ones). */
export const defaultServingNames: Required<Pick<ServingCertificateOptions, 'dnsNames' | 'ipAddresses'>> = {
  dnsNames: [controlPlaneTlsName, 'weftd', 'localhost'],
  ipAddresses: ['127.0.0.1'],
};

/**
 * The CA's own TLS identity for gRPC: a serving certificate it issues itself and renews at half its
 * lifetime, and the roots that client certificates must chain to. Implements grpc-js's
 * CertificateProvider for both roles, so renewals reach the server without a restart.
 */
export class ServingCertificateProvider implements experimental.CertificateProvider {
  private readonly ca: CertificateAuthority;
  private readonly options: ServingCertificateOptions;
  private readonly logger: Logger;
  private identity: ServingCertificate | undefined;
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  private timer: NodeJS.Timeout | undefined;

  constructor(ca: CertificateAuthority, options: ServingCertificateOptions = {}, logger?: Logger) {
    this.ca = ca;
    this.options = { ...defaultServingNames, ...options };
    this.logger = logger ?? createLogger({ scope: 'citadel' });
  }

  /** Issues the first serving certificate and schedules renewals. */
  async start(): Promise<ServingCertificate> {
    await this.renew();
    return this.identity!;
  }

  get current(): ServingCertificate | undefined {
    return this.identity;
  }

  /** Server credentials that request (but do not require) a client certificate. */
  credentials(): ServerCredentials {
    // grpc-js 1.14's createCertificateProviderServerCredentials passes its two providers to the
    // constructor in swapped order; one object serving both roles makes that harmless.
    return experimental.createCertificateProviderServerCredentials(this, this, false);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  async renew(): Promise<void> {
    clearTimeout(this.timer);
    const issued = await this.ca.issueServingCertificate(this.options);
    this.identity = issued;
    const update = { certificate: Buffer.from(issued.certChainPem), privateKey: Buffer.from(issued.privateKeyPem) };
    for (const l of this.identityListeners) l(update);
    this.logger.info('issued CA serving certificate', { dnsNames: this.options.dnsNames, ipAddresses: this.options.ipAddresses, notAfter: issued.notAfter.toISOString() });
    const halfLife = (issued.notAfter.getTime() - Date.now()) / 2;
    this.timer = setTimeout(
      () => {
        this.renew().catch((err: unknown) => this.logger.error('serving certificate renewal failed', { error: err }));
      },
      Math.min(Math.max(halfLife, 1000), 2 ** 31 - 1),
    );
    this.timer.unref();
  }

  // The first update is delivered on a later microtask: grpc-js registers its own watcher only
  // after adding these listeners, so a synchronous update would be lost and the server would drop
  // every connection as having "unloaded credentials".
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: Buffer.from(this.ca.rootCertPem) });
    });
  }
  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      const id = this.identity;
      if (id && this.identityListeners.has(listener)) listener({ certificate: Buffer.from(id.certChainPem), privateKey: Buffer.from(id.privateKeyPem) });
    });
  }
  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
}

export interface CaServerOptions extends CaServiceOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Default 15012 (Istio's xDS-and-CA TLS port); 0 picks a free port. */
  port?: number;
  serving?: ServingCertificateOptions;
}

/** A standalone gRPC server for the signing service (weftd shares one server with xDS instead). */
export class CaServer {
  readonly port: number;
  readonly host: string;
  readonly metrics: CitadelMetrics;
  readonly serving: ServingCertificateProvider;
  private readonly server: Server;

  private constructor(server: Server, serving: ServingCertificateProvider, host: string, port: number, metrics: CitadelMetrics) {
    this.server = server;
    this.serving = serving;
    this.host = host;
    this.port = port;
    this.metrics = metrics;
  }

  static async start(options: CaServerOptions): Promise<CaServer> {
    const logger = options.logger ?? createLogger({ scope: 'citadel' });
    const metrics = options.metrics ?? new CitadelMetrics();
    const serving = new ServingCertificateProvider(options.ca, options.serving, logger);
    await serving.start();
    const server = new Server();
    server.addService(caServiceDefinition(), createCaServiceHandlers({ ca: options.ca, metrics, logger, ...(options.platformTokens ? { platformTokens: options.platformTokens } : {}) }));
    const host = options.host ?? '127.0.0.1';
    const target = host.includes(':') ? `[${host}]:${options.port ?? 15012}` : `${host}:${options.port ?? 15012}`;
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(target, serving.credentials(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    logger.info('CA service listening', { address: `${host}:${port}`, service: caServiceName, trustDomain: options.ca.trustDomain, kind: options.ca.kind });
    return new CaServer(server, serving, host, port, metrics);
  }

  /** `host:port` for clients. */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  async close(): Promise<void> {
    this.serving.stop();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Metadata carrying a bootstrap token, as the CA expects it. */
export function bearerMetadata(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}
