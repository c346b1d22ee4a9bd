// The owner-only check of local mode: a connection to a mesh port is served only when the kernel
// says the process at the other end runs as the UID that owns the mesh. The check runs when the
// server would announce the connection ('connection'), before any listener of the server sees
// the socket and before JavaScript reads a byte of it; a refused socket is reset.
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type Logger, silentLogger } from '@weft/model';
import { type PeerLookup, peerLookup } from './sock-diag.ts';

export interface OwnerGuardOptions {
  /** The UID whose processes may connect (the mesh owner's). */
  ownerUid: number;
  /** Where refusals are logged (warn), at most one line per port per `logIntervalMs`. */
  logger?: Logger;
  /** Default 10000. Refusals within the interval are counted and reported by the next line. */
  logIntervalMs?: number;
  /** Told about every refusal (metrics). */
  onRefused?: (port: string, peerUid: number | undefined) => void;
  /** The peer lookup; default the kernel's (sock_diag). Tests of consumers replace it. */
  lookup?: (socket: Socket) => PeerLookup;
}

/** A server that can take connections accepted elsewhere: grpc-js's `Server` (createConnectionInjector). */
export interface ConnectionInjectingServer<Credentials> {
  createConnectionInjector(credentials: Credentials): { injectConnection(connection: Duplex): void; destroy(): void };
}

export interface OwnerOnlyPort {
  readonly port: number;
  /** Stops accepting and drops the injected connections (the gRPC server's own shutdown also ends them). */
  close(): Promise<void>;
}

interface PortLog {
  lastAt: number;
  suppressed: number;
  timer: NodeJS.Timeout | undefined;
  last: Record<string, unknown> | undefined;
}

const guarded = new WeakSet<Server>();

export class OwnerGuard {
  readonly ownerUid: number;
  readonly #log: Logger;
  readonly #interval: number;
  readonly #lookup: (socket: Socket) => PeerLookup;
  readonly #onRefused: OwnerGuardOptions['onRefused'];
  readonly #refused = new Map<string, number>();
  readonly #logs = new Map<string, PortLog>();

  constructor(o: OwnerGuardOptions) {
    if (!Number.isInteger(o.ownerUid) || o.ownerUid < 0 || o.ownerUid > 0xfffffffe) throw new RangeError(`owner UID must be an integer from 0 to 4294967294, not ${o.ownerUid}`);
    this.ownerUid = o.ownerUid;
    this.#log = o.logger ?? silentLogger;
    this.#interval = o.logIntervalMs ?? 10_000;
    this.#lookup = o.lookup ?? peerLookup;
    this.#onRefused = o.onRefused;
  }

  /** Whether the peer of `socket` runs as the owner; a refusal is counted and logged (it does not close the socket). */
  allows(socket: Socket, port: string): boolean {
    let r: PeerLookup;
    try {
      r = this.#lookup(socket);
    } catch (err) {
      r = { uid: undefined, reason: 'netlink-error' };
      this.#log.error('peer UID lookup failed; refusing the connection', { port, error: err });
    }
    if (r.uid === this.ownerUid) return true;
    this.#refuse(socket, port, r);
    return false;
  }

  /** Refused connections by port name, since start. */
  refusedCounts(): ReadonlyMap<string, number> {
    return this.#refused;
  }

  get refusedTotal(): number {
    let n = 0;
    for (const v of this.#refused.values()) n += v;
    return n;
  }

  /**
   * Makes `server` (node:net, http, https, tls, http2: every one announces accepted sockets with
   * `emit('connection')` from net's accept callback) serve only the owner: the check runs inside
   * that emit, so no 'connection' listener, the server's own included, sees a refused socket.
   * Call before `listen`. Returns the same server.
   */
  protect<S extends Server>(server: S, port: string): S {
    if (guarded.has(server)) throw new Error(`server for ${port} is already guarded`);
    guarded.add(server);
    const emit = server.emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
    const guard = this;
    server.emit = function (this: S, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'connection') {
        const socket = args[0] as Socket;
        if (!guard.allows(socket, port)) {
          reset(socket);
          return false;
        }
      }
      return emit.call(this, event, ...args);
    } as S['emit'];
    return server;
  }

  /**
   * Serves a gRPC server (grpc-js 1.14+) on `host:port` through an owner-only net.Server: accepted
   * and checked here, then handed to the gRPC server with its credentials (TLS is terminated there,
   * after the check). Use instead of `bindAsync` for that port.
   */
  async listenGrpc<C>(server: ConnectionInjectingServer<C>, credentials: C, o: { host: string; port: number; name: string }): Promise<OwnerOnlyPort> {
    const injector = server.createConnectionInjector(credentials);
    const front = this.protect(createServer({ noDelay: true }), o.name);
    front.on('connection', (socket: Socket) => injector.injectConnection(socket));
    let port: number;
    try {
      port = await new Promise<number>((resolve, reject) => {
        front.once('error', reject);
        front.listen({ host: o.host, port: o.port }, () => {
          front.off('error', reject);
          resolve((front.address() as { port: number }).port);
        });
      });
    } catch (err) {
      injector.destroy();
      throw err;
    }
    let closed: Promise<void> | undefined;
    return {
      port,
      close: () => {
        closed ??= new Promise<void>((resolve) => {
          front.close(() => resolve());
          injector.destroy();
        });
        return closed;
      },
    };
  }

  #refuse(socket: Socket, port: string, r: PeerLookup): void {
    const count = (this.#refused.get(port) ?? 0) + 1;
    this.#refused.set(port, count);
    try {
      this.#onRefused?.(port, r.uid);
    } catch {
      // A metrics callback must not decide whether a socket is refused.
    }
    const fields: Record<string, unknown> = {
      port,
      local: endpoint(socket.localAddress, socket.localPort),
      peer: endpoint(socket.remoteAddress, socket.remotePort),
      peerUid: r.uid ?? null,
      ownerUid: this.ownerUid,
      ...(r.uid === undefined ? { reason: r.reason, ...(r.errno !== undefined ? { errno: r.errno } : {}) } : {}),
      refused: count,
    };
    let l = this.#logs.get(port);
    if (!l) {
      l = { lastAt: Number.NEGATIVE_INFINITY, suppressed: 0, timer: undefined, last: undefined };
      this.#logs.set(port, l);
    }
    const now = Date.now();
    if (now - l.lastAt >= this.#interval) {
      if (l.timer) clearTimeout(l.timer);
      l.timer = undefined;
      this.#write(l, fields, now, l.suppressed);
      return;
    }
    l.suppressed++;
    l.last = fields;
    // The interval's last refusal is reported when it ends, with how many were not logged.
    const entry = l;
    entry.timer ??= setTimeout(() => {
      entry.timer = undefined;
      if (entry.suppressed > 0 && entry.last) this.#write(entry, entry.last, Date.now(), entry.suppressed - 1);
    }, entry.lastAt + this.#interval - now).unref();
  }

  #write(l: PortLog, fields: Record<string, unknown>, now: number, notLogged: number): void {
    l.lastAt = now;
    l.suppressed = 0;
    l.last = undefined;
    this.#log.warn('connection refused: the peer is not the mesh owner', notLogged > 0 ? { ...fields, notLogged } : fields);
  }
}

function endpoint(address: string | undefined, port: number | undefined): string | null {
  if (!address) return null;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Closes with a reset (RST), so the client sees the refusal as such rather than an empty answer. */
function reset(socket: Socket): void {
  socket.on('error', () => {});
  // A Duplex that is not a TCP socket (emitted by hand) has no reset to send.
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}
