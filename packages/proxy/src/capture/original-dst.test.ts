import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { getOriginalDst } from './original-dst.ts';

// The redirected case needs capture rules, so it runs in netns.test.ts (the capture proxy there
// reads SO_ORIGINAL_DST for every connection); here: connections nobody redirected.
async function acceptOne(host: string, connectTo: string): Promise<{ original: ReturnType<typeof getOriginalDst>; local: string }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      try {
        resolve({ original: getOriginalDst(socket), local: `${socket.localAddress}` });
      } catch (e) {
        reject(e);
      }
      socket.destroy();
      server.close();
    });
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      net.connect(port, connectTo).on('error', () => {});
    });
  });
}

describe('getOriginalDst', () => {
  it('is undefined for an IPv4 connection that was not redirected', async () => {
    const r = await acceptOne('127.0.0.1', '127.0.0.1');
    expect(r.local).toBe('127.0.0.1');
    expect(r.original).toBeUndefined();
  });

  it('is undefined for an IPv6 connection that was not redirected', async () => {
    const r = await acceptOne('::1', '::1');
    expect(r.original).toBeUndefined();
  });

  it('is undefined for an IPv4 connection on a dual-stack listener', async () => {
    const r = await acceptOne('::', '127.0.0.1');
    expect(r.local).toBe('::ffff:127.0.0.1');
    expect(r.original).toBeUndefined();
  });

  it('is undefined for a socket without a descriptor', () => {
    expect(getOriginalDst(new net.Socket())).toBeUndefined();
  });
});
