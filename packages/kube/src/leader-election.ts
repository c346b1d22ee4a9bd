// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection (which istiod
// uses): every weftd replica serves (xDS, CSRs, webhooks), and only the one holding the Lease
// writes to the cluster (istio-ca-root-cert ConfigMaps, webhook caBundle patches, status), so
// replicas never fight over an object. The holder renews the Lease every retry period; a replica
// takes it over once the holder has not renewed for the lease duration, as measured on its own
// clock from when it last saw the record change (clocks of replicas need not agree). A holder that
// cannot renew within the renew deadline stops leading before anyone else may start; one that
// stops releases the Lease, so another replica takes over within a retry period.
//
// Anything that must run on the leader only registers with whileLeading(); it starts when this
// replica becomes leader and its AbortSignal fires when it stops being leader.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { createLogger, type Logger } from '@weft/model';
import { apiStatusOf } from './client.ts';
import { describeError } from './informer.ts';

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  /** Namespace of the Lease (weftd's own). */
  namespace: string;
  /** Name of the Lease; replicas that share it elect one leader. */
  name: string;
  /** This replica's identity in the Lease; default `<POD_NAME or hostname>_<random>`. */
  identity?: string;
  /** A holder that has not renewed for this long may be replaced; default 15 s (client-go's). */
  leaseDurationMs?: number;
  /** The leader stops leading when it could not renew for this long; default 10 s. Less than the lease duration. */
  renewDeadlineMs?: number;
  /** Between attempts to acquire or renew; default 2 s. */
  retryPeriodMs?: number;
  logger?: Logger;
}

/** Work that runs while this replica leads; `signal` aborts when it stops leading. */
export type LeaderWork = (signal: AbortSignal) => void | Promise<void>;

/** `<POD_NAME or hostname>_<8 random hex>`: unique per process, readable in `kubectl get lease -o yaml`. */
export function defaultLeaderIdentity(): string {
  return `${process.env.POD_NAME || hostname()}_${randomUUID().slice(0, 8)}`;
}

/** A Lease time as the API server parses it (microseconds); client-node may hand back a Date or the wire's text. */
function microTime(t: Date | string): V1MicroTime {
  return new V1MicroTime(t instanceof Date ? t.getTime() : Date.parse(t));
}

export class LeaderElection {
  readonly identity: string;
  readonly namespace: string;
  readonly name: string;
  readonly #api: CoordinationV1Api;
  readonly #leaseMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  readonly #log: Logger;
  readonly #work = new Set<LeaderWork>();
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #leading: AbortController | undefined;
  /** The Lease as this replica last wrote it (its resourceVersion makes a release conditional). */
  #mine: V1Lease | undefined;
  #lastRenewed = 0;
  #observedVersion: string | undefined;
  #observedAt = 0;
  #holder: string | undefined;
  #transitions = 0;

  constructor(options: LeaderElectionOptions) {
    this.identity = options.identity ?? defaultLeaderIdentity();
    this.namespace = options.namespace;
    this.name = options.name;
    this.#leaseMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryMs = options.retryPeriodMs ?? 2_000;
    if (!(this.#renewDeadlineMs < this.#leaseMs)) throw new Error('leader election: the renew deadline must be shorter than the lease duration');
    if (!(this.#retryMs < this.#renewDeadlineMs)) throw new Error('leader election: the retry period must be shorter than the renew deadline');
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.#log = (options.logger ?? createLogger({ scope: 'kube' })).with({ lease: `${this.namespace}/${this.name}` });
  }

  get isLeader(): boolean {
    return this.#leading !== undefined;
  }

  /** The holder this replica last saw in the Lease (itself while leading). */
  get leader(): string | undefined {
    return this.#holder;
  }

  /** For /debug: who leads, who this is, how often the Lease changed hands. */
  status(): { lease: string; identity: string; leader: string | null; isLeader: boolean; transitions: number } {
    return { lease: `${this.namespace}/${this.name}`, identity: this.identity, leader: this.#holder ?? null, isLeader: this.isLeader, transitions: this.#transitions };
  }

  /**
   * Runs `work` whenever this replica leads (now, if it already does); its signal aborts when
   * leadership ends. A replica campaigns only once it has work for a leader: the first call starts
   * the election. Returns a function that unregisters `work` (a running one keeps its signal).
   */
  whileLeading(work: LeaderWork): () => void {
    this.#work.add(work);
    this.start();
    const controller = this.#leading;
    if (controller) this.#run(work, controller.signal);
    return () => {
      this.#work.delete(work);
    };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#log.info('leader election started', { identity: this.identity, leaseDurationMs: this.#leaseMs, retryPeriodMs: this.#retryMs });
    this.#loop = this.#electLoop();
  }

  /** Stops campaigning; a leader stops its work and releases the Lease so another replica takes over at once. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    if (this.#leading) {
      this.#stopLeading('stopped');
      await this.#release();
    }
  }

  async #electLoop(): Promise<void> {
    while (this.#running) {
      let renewed = false;
      try {
        renewed = await this.#tryAcquireOrRenew();
      } catch (err) {
        this.#log.warn('cannot read or write the leader Lease', { error: describeError(err) });
      }
      if (!this.#running) break;
      const now = Date.now();
      if (renewed) {
        this.#lastRenewed = now;
        if (!this.#leading) this.#startLeading();
      } else if (this.#leading && now - this.#lastRenewed >= this.#renewDeadlineMs) {
        this.#stopLeading(`could not renew the Lease for ${now - this.#lastRenewed} ms`);
      }
      // Candidates spread their attempts (client-go's jitter), so they do not hit the Lease together.
      const delay = this.#leading ? this.#retryMs : this.#retryMs * (1 + Math.random() * 0.2);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** One round of client-go's tryAcquireOrRenew: true when this replica holds the Lease afterwards. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const spec = (holder: string | undefined, previous: V1Lease | undefined) => {
      const old = previous?.spec ?? {};
      const same = old.holderIdentity === this.identity;
      return {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.max(1, Math.ceil(this.#leaseMs / 1000)),
        acquireTime: same && old.acquireTime ? microTime(old.acquireTime) : new V1MicroTime(now.getTime()),
        renewTime: new V1MicroTime(now.getTime()),
        leaseTransitions: (old.leaseTransitions ?? 0) + (same || holder === undefined ? 0 : 1),
      };
    };
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (apiStatusOf(err) !== 404) throw err;
      try {
        this.#mine = await this.#api.createNamespacedLease({
          namespace: this.namespace,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace: this.namespace }, spec: spec(undefined, undefined) },
        });
      } catch (e) {
        if (apiStatusOf(e) === 409) return false; // another replica created it first
        throw e;
      }
      this.#observe(this.#mine);
      return true;
    }
    this.#observe(lease);
    const holder = lease.spec?.holderIdentity || undefined;
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(this.#leaseMs / 1000)) * 1000;
    if (holder && holder !== this.identity && this.#observedAt + durationMs > Date.now()) return false;
    try {
      this.#mine = await this.#api.replaceNamespacedLease({
        name: this.name,
        namespace: this.namespace,
        // metadata.resourceVersion makes this a compare-and-swap: a replica that raced us gets 409.
        body: { ...lease, spec: { ...lease.spec, ...spec(holder, lease) } },
      });
    } catch (err) {
      if (apiStatusOf(err) === 409) return false;
      throw err;
    }
    this.#observe(this.#mine);
    return true;
  }

  #observe(lease: V1Lease): void {
    const version = lease.metadata?.resourceVersion;
    if (version !== this.#observedVersion) {
      this.#observedVersion = version;
      this.#observedAt = Date.now();
    }
    this.#transitions = lease.spec?.leaseTransitions ?? 0;
    const holder = lease.spec?.holderIdentity || undefined;
    if (holder !== this.#holder) {
      this.#holder = holder;
      if (holder !== this.identity) this.#log.info(holder ? 'leader is another replica' : 'no leader', { leader: holder, identity: this.identity });
    }
  }

  #startLeading(): void {
    const controller = new AbortController();
    this.#leading = controller;
    this.#log.info('became leader', { identity: this.identity, transitions: this.#transitions });
    for (const work of this.#work) this.#run(work, controller.signal);
  }

  #stopLeading(why: string): void {
    const controller = this.#leading;
    if (!controller) return;
    this.#leading = undefined;
    this.#log.warn('stopped leading', { identity: this.identity, why });
    controller.abort(new Error(`no longer leader: ${why}`));
  }

  #run(work: LeaderWork, signal: AbortSignal): void {
    try {
      const r = work(signal);
      if (r instanceof Promise) r.catch((err: unknown) => this.#log.error('leader work failed', { error: describeError(err) }));
    } catch (err) {
      this.#log.error('leader work failed', { error: describeError(err) });
    }
  }

  async #release(): Promise<void> {
    const mine = this.#mine;
    if (!mine) return;
    try {
      // An empty holder lets any candidate take the Lease at once; the resourceVersion of our
      // last write keeps this from clearing a Lease someone else has taken since.
      await this.#api.replaceNamespacedLease({
        name: this.name,
        namespace: this.namespace,
        body: { ...mine, spec: { ...mine.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new V1MicroTime(Date.now()) } },
      });
      this.#holder = undefined;
      this.#log.info('released the leader Lease', { identity: this.identity });
    } catch (err) {
      this.#log.warn('could not release the leader Lease; another replica takes over when it expires', { error: describeError(err) });
    }
  }
}
