// Istio's CA metrics (security/pkg/server/ca/monitoring.go), plus one labelled counter of refusals.
import { Counter, Gauge, Registry } from 'prom-client';

export type RefusalReason = 'unauthenticated' | 'permission_denied' | 'csr_parse' | 'id_extraction' | 'ttl' | 'internal';

export interface CaExpiry {
  rootCertExpiry: Date;
  /** Expiry of the signing certificate (the root itself for a self-signed CA). */
  caCertExpiry: Date;
}

export class CitadelMetrics {
  readonly registry: Registry;
  /** CSRs received. */
  readonly csrCount: Counter;
  /** Certificates issued. */
  readonly successCount: Counter;
  readonly authnErrorCount: Counter;
  readonly csrParsingErrorCount: Counter;
  readonly idExtractionErrorCount: Counter;
  /** Signing failures by Istio's error type (TTL_ERROR, CERT_GEN_ERROR, CA_NOT_READY). */
  readonly csrSignErrorCount: Counter<'error'>;
  /** Every refused request, by reason (Weft's addition: one place to see why requests fail). */
  readonly refusedCount: Counter<'reason'>;
  readonly rootCertExpiryTimestamp: Gauge;
  readonly certChainExpiryTimestamp: Gauge;
  private expiry: CaExpiry | undefined;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    this.csrCount = counter('citadel_server_csr_count', 'The number of CSRs received by Citadel server.');
    this.successCount = counter('citadel_server_success_cert_issuance_count', 'The number of certificates issuances that have succeeded.');
    this.authnErrorCount = counter('citadel_server_authentication_failure_count', 'The number of authentication failures.');
    this.csrParsingErrorCount = counter('citadel_server_csr_parsing_err_count', 'The number of errors occurred when parsing the CSR.');
    this.idExtractionErrorCount = counter('citadel_server_id_extraction_err_count', 'The number of errors occurred when extracting the ID from CSR.');
    this.csrSignErrorCount = new Counter({ name: 'citadel_server_csr_sign_err_count', help: 'The number of errors occurred when signing the CSR.', labelNames: ['error'], registers });
    this.refusedCount = new Counter({ name: 'citadel_server_csr_refused_count', help: 'CSRs refused, by reason.', labelNames: ['reason'], registers });
    this.rootCertExpiryTimestamp = new Gauge({ name: 'citadel_server_root_cert_expiry_timestamp', help: 'The unix timestamp, in seconds, when the root cert will expire.', registers });
    this.certChainExpiryTimestamp = new Gauge({ name: 'citadel_server_cert_chain_expiry_timestamp', help: 'The unix timestamp, in seconds, when the CA cert chain will expire.', registers });
    const self = this;
    new Gauge({
      name: 'citadel_server_root_cert_expiry_seconds',
      help: 'The time remaining, in seconds, before the root cert will expire.',
      registers,
      collect() {
        if (self.expiry) this.set((self.expiry.rootCertExpiry.getTime() - Date.now()) / 1000);
      },
    });
    new Gauge({
      name: 'citadel_server_cert_chain_expiry_seconds',
      help: 'The time remaining, in seconds, before the CA cert chain will expire.',
      registers,
      collect() {
        if (self.expiry) this.set((self.expiry.caCertExpiry.getTime() - Date.now()) / 1000);
      },
    });
  }

  /** Records the CA's expiry times; call again whenever the CA's certificates change. */
  recordCaExpiry(expiry: CaExpiry): void {
    this.expiry = expiry;
    this.rootCertExpiryTimestamp.set(Math.floor(expiry.rootCertExpiry.getTime() / 1000));
    this.certChainExpiryTimestamp.set(Math.floor(expiry.caCertExpiry.getTime() / 1000));
  }

  refused(reason: RefusalReason): void {
    this.refusedCount.inc({ reason });
  }
}
