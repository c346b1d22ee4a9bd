// The UID that owns the other end of a loopback TCP connection, asked of the kernel with one
// NETLINK_SOCK_DIAG exact-socket query (sock_diag(7), inet_diag_req_v2 without NLM_F_DUMP): the
// peer's socket is the one whose local end is our remote end and whose remote end is our local end.
//
// Written by hand over libc (koffi, as packages/proxy's SO_ORIGINAL_DST): Node has no binding for
// netlink, and the npm packages that speak netlink (`netlink`: rtnetlink, genl, nl80211) have no
// sock_diag and build a native addon. The query is 72 bytes; the answer's fixed part is all we read.
import { isIPv4, isIPv6 } from 'node:net';
import koffi from 'koffi';

const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const IPPROTO_TCP = 6;
const MSG_DONTWAIT = 0x40;
const EINTR = 4;
const TCP_TIME_WAIT = 6;

// struct nlmsghdr (16) + struct inet_diag_req_v2 (8 + struct inet_diag_sockid (48)).
const requestLength = 16 + 56;
// struct inet_diag_msg after the nlmsghdr: family, state, timer, retrans (4), id (48), expires,
// rqueue, wqueue (12), uid, inode.
const stateOffset = 16 + 1;
const uidOffset = 16 + 4 + 48 + 12;
const inodeOffset = uidOffset + 4;
const minimumAnswer = inodeOffset + 4;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  close(fd: number): number;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  let lib: ReturnType<typeof koffi.load> | undefined;
  let lastError: unknown;
  for (const name of ['libc.so.6', 'libc.so']) {
    try {
      lib = koffi.load(name);
      break;
    } catch (e) {
      lastError = e;
    }
  }
  if (!lib) throw new Error(`sock_diag: cannot load libc: ${(lastError as Error).message}`);
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const send = lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)');
  const recv = lib.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)');
  const close = lib.func('int close(int fd)');
  libc = {
    socket: (d, t, p) => socket(d, t, p) as number,
    send: (fd, b, l, f) => Number(send(fd, b, l, f)),
    recv: (fd, b, l, f) => Number(recv(fd, b, l, f)),
    close: (fd) => close(fd) as number,
  };
  return libc;
}

export interface Endpoint {
  address: string;
  port: number;
}

/** Why a lookup found no UID (for log lines). */
export type LookupFailure = 'no-such-socket' | 'orphaned' | 'unsupported-address' | 'netlink-error';

export type PeerLookup = { uid: number } | { uid: undefined; reason: LookupFailure; errno?: number };

/** An IPv4 address, possibly written as an IPv4-mapped IPv6 address, as 4 bytes; else undefined. */
function ipv4Bytes(address: string): Buffer | undefined {
  const text = address.toLowerCase().startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (!isIPv4(text)) return undefined;
  return Buffer.from(text.split('.').map(Number));
}

/** An IPv6 address as 16 bytes (expanding `::` and a trailing dotted quad); else undefined. */
function ipv6Bytes(address: string): Buffer | undefined {
  const text = address.replace(/%.*$/, '');
  if (!isIPv6(text)) return undefined;
  let groups: string[];
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const expandQuad = (parts: string[]) => {
    const last = parts[parts.length - 1];
    if (last === undefined || !last.includes('.')) return parts;
    const b = last.split('.').map(Number);
    return [...parts.slice(0, -1), ((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
  };
  if (tail === undefined) groups = expandQuad(parse(head));
  else {
    const h = parse(head);
    const t = expandQuad(parse(tail));
    groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  }
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

/**
 * One netlink socket per process, opened on first use. Queries are synchronous (the kernel answers
 * inside send(), so the answer is queued when send returns and recv never waits); JavaScript runs
 * one at a time, so a query never sees another's answer except a stale one, skipped by sequence.
 */
class DiagSocket {
  #fd = -1;
  #seq = 0;
  readonly #request = Buffer.alloc(requestLength);
  readonly #answer = Buffer.alloc(8192);

  #open(): number {
    if (this.#fd >= 0) return this.#fd;
    const c = loadLibc();
    const fd = c.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) throw Object.assign(new Error(`sock_diag: socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed with errno ${koffi.errno()}`), { errno: koffi.errno() });
    this.#fd = fd;
    return fd;
  }

  close(): void {
    if (this.#fd >= 0) loadLibc().close(this.#fd);
    this.#fd = -1;
  }

  query(family: number, src: Buffer, sport: number, dst: Buffer, dport: number): PeerLookup {
    const fd = this.#open();
    const c = loadLibc();
    this.#seq = (this.#seq + 1) >>> 0;
    const seq = this.#seq;
    const q = this.#request;
    q.fill(0);
    // nlmsghdr
    q.writeUInt32LE(requestLength, 0);
    q.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    q.writeUInt16LE(NLM_F_REQUEST, 6);
    q.writeUInt32LE(seq, 8);
    // inet_diag_req_v2: family, protocol, ext (none), pad, states (all)
    q.writeUInt8(family, 16);
    q.writeUInt8(IPPROTO_TCP, 17);
    q.writeUInt32LE(0xffffffff, 20);
    // inet_diag_sockid: ports and addresses in network order, interface 0, cookie INET_DIAG_NOCOOKIE
    q.writeUInt16BE(sport, 24);
    q.writeUInt16BE(dport, 26);
    src.copy(q, 28);
    dst.copy(q, 44);
    q.writeUInt32LE(0xffffffff, 64);
    q.writeUInt32LE(0xffffffff, 68);
    let sent: number;
    do sent = c.send(fd, q, requestLength, 0);
    while (sent < 0 && koffi.errno() === EINTR);
    if (sent !== requestLength) {
      const errno = koffi.errno();
      this.close();
      return { uid: undefined, reason: 'netlink-error', errno };
    }
    const a = this.#answer;
    for (;;) {
      const n = c.recv(fd, a, a.length, MSG_DONTWAIT);
      if (n < 0) {
        const errno = koffi.errno();
        if (errno === EINTR) continue;
        return { uid: undefined, reason: 'netlink-error', errno };
      }
      if (n < 16) return { uid: undefined, reason: 'netlink-error' };
      // One answer per datagram for an exact query; an older query's late answer is skipped.
      if (a.readUInt32LE(8) !== seq) continue;
      const type = a.readUInt16LE(4);
      if (type === NLMSG_ERROR) {
        const errno = -a.readInt32LE(16);
        // ENOENT: no socket with that 4-tuple in this network namespace (a remote peer, or gone).
        return errno === 2 ? { uid: undefined, reason: 'no-such-socket' } : { uid: undefined, reason: 'netlink-error', errno };
      }
      if (type !== SOCK_DIAG_BY_FAMILY || n < minimumAnswer) return { uid: undefined, reason: 'netlink-error' };
      // A TIME_WAIT entry (also an orphaned FIN_WAIT2 one) reports UID 0 and inode 0: it is no
      // process's socket any more, so it proves nothing about who connected.
      if (a.readUInt8(stateOffset) === TCP_TIME_WAIT || a.readUInt32LE(inodeOffset) === 0) return { uid: undefined, reason: 'orphaned' };
      return { uid: a.readUInt32LE(uidOffset) };
    }
  }
}

const diag = new DiagSocket();

/**
 * The UID owning the socket at the other end of the accepted TCP connection `local` <- `remote`,
 * both on this host and in this network namespace; `{ uid: undefined, reason }` when the kernel
 * names none (the peer is remote, closed, or in TIME_WAIT). Linux only; synchronous (one send and
 * one recv on a netlink socket, a few microseconds).
 */
export function lookupPeerUid(local: Endpoint, remote: Endpoint): PeerLookup {
  const src4 = ipv4Bytes(remote.address);
  const dst4 = ipv4Bytes(local.address);
  // An IPv4 peer accepted on a dual-stack socket shows as ::ffff:a.b.c.d; its socket is IPv4 (or
  // an IPv6 one connected to a mapped address, which the kernel hashes as IPv4 too).
  if (src4 && dst4) return diag.query(AF_INET, src4, remote.port, dst4, local.port);
  const src6 = ipv6Bytes(remote.address);
  const dst6 = ipv6Bytes(local.address);
  if (src6 && dst6) return diag.query(AF_INET6, src6, remote.port, dst6, local.port);
  return { uid: undefined, reason: 'unsupported-address' };
}

/** The peer UID of an accepted connection (see lookupPeerUid); undefined when the kernel names none. */
export function peerUid(socket: { localAddress?: string | undefined; localPort?: number | undefined; remoteAddress?: string | undefined; remotePort?: number | undefined }): number | undefined {
  const r = peerLookup(socket);
  return r.uid;
}

/** As peerUid, with the reason when there is no UID. */
export function peerLookup(socket: { localAddress?: string | undefined; localPort?: number | undefined; remoteAddress?: string | undefined; remotePort?: number | undefined }): PeerLookup {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (!localAddress || !remoteAddress || localPort === undefined || remotePort === undefined) return { uid: undefined, reason: 'no-such-socket' };
  return lookupPeerUid({ address: localAddress, port: localPort }, { address: remoteAddress, port: remotePort });
}
