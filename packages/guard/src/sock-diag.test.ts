import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { needs } from '@weft/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { lookupPeerUid, type PeerLookup, peerLookup } from './sock-diag.ts';

const uid = process.getuid!();
const otherUidSkip = needs({ root: true, tools: ['setpriv', 'bash'] });
/** A UID no account uses: the kernel needs no user for it. */
const otherUid = 47_113;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** Accepts one connection on `host` and reports the lookup for it, the client started by `connect(port)`. */
function lookupOfOne(host: string, connect: (port: number) => void, before?: (socket: net.Socket) => Promise<void>): Promise<{ lookup: PeerLookup; socket: { remote: string; local: string } }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(async (socket) => {
      try {
        await before?.(socket);
        resolve({ lookup: peerLookup(socket), socket: { remote: `${socket.remoteAddress}`, local: `${socket.localAddress}` } });
      } catch (e) {
        reject(e);
      } finally {
        socket.destroy();
        server.close();
      }
    });
    server.listen(0, host, () => connect((server.address() as net.AddressInfo).port));
  });
}

const nodeClient = (to: string) => (port: number) => void net.connect(port, to).on('error', () => {});

describe('lookupPeerUid (sock_diag)', () => {
  it('names this process UID for a loopback IPv4 connection', async () => {
    const r = await lookupOfOne('127.0.0.1', nodeClient('127.0.0.1'));
    expect(r.lookup).toEqual({ uid });
  });

  it('names it on any 127.x address (local mode puts every workload on its own)', async () => {
    const r = await lookupOfOne('127.0.33.7', (port) => void net.connect({ port, host: '127.0.33.7', localAddress: '127.0.33.8' }).on('error', () => {}));
    expect(r.socket.remote).toBe('127.0.33.8');
    expect(r.lookup).toEqual({ uid });
  });

  it('names it for IPv6 and for IPv4 accepted on a dual-stack socket (::ffff:)', async () => {
    expect((await lookupOfOne('::1', nodeClient('::1'))).lookup).toEqual({ uid });
    const mapped = await lookupOfOne('::', nodeClient('127.0.0.1'));
    expect(mapped.socket.remote).toBe('::ffff:127.0.0.1');
    expect(mapped.lookup).toEqual({ uid });
  });

  it('finds no socket for a 4-tuple nobody has (fail closed: no UID)', () => {
    const r = lookupPeerUid({ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 2 });
    expect(r).toEqual({ uid: undefined, reason: 'no-such-socket' });
    expect(lookupPeerUid({ address: '::1', port: 1 }, { address: '::1', port: 2 }).uid).toBeUndefined();
    expect(lookupPeerUid({ address: 'localhost', port: 1 }, { address: '127.0.0.1', port: 2 })).toEqual({ uid: undefined, reason: 'unsupported-address' });
  });

  it('gives no UID for a peer that closed before the check (its TIME_WAIT entry reports UID 0 for anyone)', async () => {
    const r = await lookupOfOne(
      '127.0.0.1',
      (port) => {
        const c = net.connect(port, '127.0.0.1');
        c.on('error', () => {});
        c.on('connect', () => c.destroy());
      },
      // The client's socket is closed and orphaned once the server side has seen its FIN.
      (socket) => new Promise((resolve) => socket.once('end', () => resolve())),
    );
    expect(r.lookup).toMatchObject({ uid: undefined, reason: 'orphaned' });
  });

  it.skipIf(otherUidSkip !== undefined)(`names another UID as that UID (a client run as ${otherUid} with setpriv)`, async () => {
    const r = await lookupOfOne('127.0.0.1', (port) => {
      const c = spawn('setpriv', [`--reuid=${otherUid}`, `--regid=${otherUid}`, '--clear-groups', '--', 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}; sleep 5`], { stdio: 'ignore' });
      children.push(c);
    });
    expect(r.lookup).toEqual({ uid: otherUid });
  });
});
