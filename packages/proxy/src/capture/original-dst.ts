// The destination a connection had before iptables REDIRECTed it to the proxy, read from conntrack
// with getsockopt(SO_ORIGINAL_DST) through libc (koffi: Node has no binding for this option).
import { isIPv4 } from 'node:net';
import type { Socket } from 'node:net';
import koffi from 'koffi';

const SOL_IP = 0;
const SOL_IPV6 = 41;
// linux/netfilter_ipv4.h SO_ORIGINAL_DST and linux/netfilter_ipv6/ip6_tables.h IP6T_SO_ORIGINAL_DST.
const SO_ORIGINAL_DST = 80;
const IP6T_SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;
// Not redirected: conntrack has no NAT entry for the socket (ENOENT), or the kernel has no
// conntrack getsockopt registered for the family at all (ENOPROTOOPT).
const ENOENT = 2;
const ENOPROTOOPT = 92;

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: number[]) => number;

let getsockopt: GetSockOpt | undefined;

function libc(): GetSockOpt {
  if (getsockopt) return getsockopt;
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
  if (!lib) throw new Error(`getOriginalDst: cannot load libc: ${(lastError as Error).message}`);
  const fn = lib.func('int getsockopt(int fd, int level, int optname, void *optval, _Inout_ uint32_t *optlen)');
  getsockopt = (fd, level, name, value, length) => fn(fd, level, name, value, length) as number;
  return getsockopt;
}

/**
 * The file descriptor behind a connected Node socket. Node does not document this: it relies on
 * the internal `socket._handle` (a TCPWrap) exposing `fd` on Unix, as it has since Node 0.x.
 */
function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function decodeSockaddr(buf: Buffer): { address: string; port: number } | undefined {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === AF_INET) return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port };
  if (family === AF_INET6) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(8 + i * 2).toString(16));
    // Canonical (RFC 5952) form, the way Node prints addresses.
    const address = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
    return { address, port };
  }
  return undefined;
}

/**
 * Where a captured connection was going before iptables redirected it (SO_ORIGINAL_DST, or
 * IP6T_SO_ORIGINAL_DST for IPv6). Returns undefined when the connection was not redirected; the
 * caller then uses the socket's local address, which is also right for TPROXY.
 *
 * Linux only. Throws on unexpected getsockopt errors (for example EBADF on a closed descriptor).
 */
export function getOriginalDst(socket: Socket): { address: string; port: number } | undefined {
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  const local = socket.localAddress ?? '';
  // An IPv4 connection accepted on a dual-stack socket shows as ::ffff:a.b.c.d; conntrack knows it as IPv4.
  const ipv4 = isIPv4(local) || local.startsWith('::ffff:');
  const fn = libc();
  const buf = Buffer.alloc(ipv4 ? 16 : 28);
  const len = [buf.length];
  const rc = ipv4 ? fn(fd, SOL_IP, SO_ORIGINAL_DST, buf, len) : fn(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, buf, len);
  if (rc !== 0) {
    const errno = koffi.errno();
    if (errno === ENOENT || errno === ENOPROTOOPT) return undefined;
    const e = new Error(`getsockopt(${ipv4 ? 'SO_ORIGINAL_DST' : 'IP6T_SO_ORIGINAL_DST'}) failed with errno ${errno}`);
    throw Object.assign(e, { errno });
  }
  const original = decodeSockaddr(buf);
  // With conntrack loaded (any NAT rule on the host, kube-proxy's for one) an un-NATed connection
  // has an entry too, and the kernel answers with its own destination: not redirected either.
  if (original && original.port === socket.localPort && sameAddress(original.address, local)) return undefined;
  return original;
}

function sameAddress(a: string, b: string): boolean {
  const plain = (x: string) => (x.startsWith('::ffff:') ? x.slice(7) : x);
  return plain(a) === plain(b);
}
