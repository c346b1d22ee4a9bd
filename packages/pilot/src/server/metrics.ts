// Istio's pilot metric names (pilot/pkg/xds/monitoring.go), so existing dashboards and alerts apply.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { shortTypeName } from './types.ts';

export class PilotMetrics {
  readonly registry: Registry;
  /** Responses sent, by short type (`cds`, `eds`, `lds`, `rds`, ...). */
  readonly pushes: Counter<'type'>;
  /** Connected xDS clients. */
  readonly connected: Gauge;
  /** Change (first event of a debounced batch) to the proxy's ACK of everything it was sent for it. */
  readonly convergence: Histogram;
  /** Generating, encoding and sending one type to one proxy. */
  readonly pushTime: Histogram<'type'>;
  /** NACKs received, by short type. */
  readonly rejects: Counter<'type'>;
  /** Debounced batches, by what triggered them (`config`, `service`, `endpoint`). */
  readonly pushTriggers: Counter<'type'>;
  /** Requests carrying a nonce older than the last one sent (ignored, as the protocol says). */
  readonly expiredNonce: Counter<'type'>;
  /** Push context builds that failed (the previous push context stays in force). */
  readonly contextErrors: Counter;
  /** Generator failures, by short type. */
  readonly generateErrors: Counter<'type'>;
  /** The push context version in force. */
  readonly pushVersion: Gauge;
  /** Streams refused before serving anything, by reason (`unauthenticated`, `permission_denied`). */
  readonly refused: Counter<'reason'>;

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.pushes = new Counter({ name: 'pilot_xds_pushes', help: 'Pilot build and send errors for lds, rds, cds and eds.', labelNames: ['type'], registers });
    this.connected = new Gauge({ name: 'pilot_xds_connected', help: 'Number of endpoints connected to this pilot using XDS.', registers });
    this.convergence = new Histogram({
      name: 'pilot_proxy_convergence_time',
      help: 'Delay in seconds between config change and a proxy receiving (acknowledging) all required configuration.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5, 10, 20, 30],
      registers,
    });
    this.pushTime = new Histogram({
      name: 'pilot_xds_push_time',
      help: 'Total time in seconds Pilot takes to push lds, rds, cds and eds.',
      labelNames: ['type'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 3, 5, 10],
      registers,
    });
    this.rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Total number of XDS responses from pilot rejected by proxy.', labelNames: ['type'], registers });
    this.pushTriggers = new Counter({ name: 'pilot_push_triggers', help: 'Total number of times a push was triggered, labeled by reason for the push.', labelNames: ['type'], registers });
    this.expiredNonce = new Counter({ name: 'pilot_xds_expired_nonce', help: 'Total number of XDS requests with an expired nonce.', labelNames: ['type'], registers });
    this.contextErrors = new Counter({ name: 'pilot_push_context_errors', help: 'Push context builds that failed; the previous context stays in force.', registers });
    this.generateErrors = new Counter({ name: 'pilot_xds_generate_errors', help: 'Generator failures, by xDS type.', labelNames: ['type'], registers });
    this.pushVersion = new Gauge({ name: 'pilot_push_context_version', help: 'Version of the push context in force.', registers });
    this.refused = new Counter({
      name: 'pilot_xds_refused_streams',
      help: 'xDS streams refused before any config was served: unauthenticated (no or invalid credentials) or permission_denied (node does not match the identity).',
      labelNames: ['reason'],
      registers,
    });
    // Every proxy type's series exists from the start at 0: a series born at its first push with its
    // count already 1 shows no rate() for that push, and a fresh mesh's first change went unseen.
    for (const type of ['cds', 'eds', 'lds', 'rds']) {
      this.pushes.inc({ type }, 0);
      this.pushTime.zero({ type });
      this.rejects.inc({ type }, 0);
    }
  }

  push(typeUrl: string): void {
    this.pushes.inc({ type: shortTypeName(typeUrl) });
  }

  reject(typeUrl: string): void {
    this.rejects.inc({ type: shortTypeName(typeUrl) });
  }
}
