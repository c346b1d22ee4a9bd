// Per-stream state: the proxy, what it watches, and what it was sent, acknowledged and rejected.
import type { Proxy as MeshProxy } from '../core/types.ts';
import type { Generated } from './generation.ts';

export type XdsMode = 'sotw' | 'delta';

/** A resource version meaning "the client was told this name does not exist" (delta). */
export const absentVersion = '';

/** One watched type on one stream. */
export class WatchedType {
  readonly typeUrl: string;
  /** Everything of this type (LDS/CDS with no names or `*`), rather than `names`. */
  wildcard = false;
  /**
   * The client has named resources of this type on this stream (SotW): from then on an empty list
   * unsubscribes from everything, even for LDS/CDS (the xDS spec's legacy wildcard is only an empty
   * first request, or empty ones since).
   */
  named = false;
  readonly names = new Set<string>();
  /** The encoded names of the last SotW request, to spot an unchanged subscription cheaply. */
  namesKey: string | undefined;
  /** What the client was last sent, by resource name: the resource's version (hash of its bytes). */
  readonly known = new Map<string, string>();
  /**
   * Delta, wildcard: the client holds exactly this generated set, and `known` is empty. A thousand
   * proxies holding the same set then share one comparison with the next (delta.ts) and no
   * thousand maps of a thousand names.
   */
  knownSet: Generated | undefined;
  nonceSent = '';
  versionSent = '';
  sentAt: Date | undefined;
  /** Resources in the last response (for syncz). */
  resourcesSent = 0;
  nonceAcked = '';
  versionAcked = '';
  ackedAt: Date | undefined;
  nonceNacked = '';
  versionNacked = '';
  nackReason = '';
  nackedAt: Date | undefined;
  /** Respond to the next request even if it looks like a plain ACK (EDS after a CDS (re)subscription: Envoy warms clusters on it). */
  alwaysRespond = false;

  constructor(typeUrl: string) {
    this.typeUrl = typeUrl;
  }

  /** The names to generate for a full response: undefined for wildcard. */
  subscription(): string[] | undefined {
    return this.wildcard ? undefined : [...this.names].sort();
  }

  /** Nothing is subscribed (a named type whose last name was removed). */
  get idle(): boolean {
    return !this.wildcard && this.names.size === 0;
  }
}

/** A push whose acknowledgement is outstanding, for convergence time. */
export interface PendingConvergence {
  /** When the first change behind it happened (monotonic ms). */
  start: number;
  version: string;
  /** Types sent for it and not yet ACKed or NACKed. */
  awaiting: Set<string>;
  rejected: boolean;
}

export class Connection {
  readonly id: string;
  readonly proxy: MeshProxy;
  readonly mode: XdsMode;
  readonly peer: string;
  /** The SPIFFE ID the stream authenticated as and the node was checked against; undefined on an unauthenticated (plaintext) port. */
  readonly identity: string | undefined;
  /** How it authenticated (`mtls`, `token`), as the authenticator said. */
  readonly authn: string | undefined;
  readonly connectedAt = new Date();
  readonly watched = new Map<string, WatchedType>();
  pending: PendingConvergence | undefined;
  /** Change-to-ACK time of the last push this proxy fully acknowledged, ms. */
  lastConvergenceMs: number | undefined;
  /** Version of the push context the connection's last generated config came from. */
  pushVersion = '';
  closed = false;
  /** Bytes written to the stream and not yet taken by the transport. */
  pendingBytes = 0;
  /** Writes an encoded response; `done` runs once the transport has taken it. */
  readonly write: (message: Buffer, done: () => void) => void;

  constructor(init: { id: string; proxy: MeshProxy; mode: XdsMode; peer: string; identity?: string; authn?: string; write: (message: Buffer, done: () => void) => void }) {
    this.id = init.id;
    this.proxy = init.proxy;
    this.mode = init.mode;
    this.peer = init.peer;
    this.identity = init.identity;
    this.authn = init.authn;
    this.write = init.write;
  }
}
