// HTTP/2 over a TLS connection this proxy terminated itself (mesh mTLS, gateway HTTPS): Node's
// http2 server stalls on a server TLSSocket made outside tls.Server (no request ever arrives),
// so the session gets a plain stream that carries the decrypted bytes instead, the way http2
// already runs over non-native streams. It answers the socket properties the proxy reads.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export function h2OverTls(tls: TLSSocket): Socket {
  const d = new Duplex({
    read() {
      tls.resume();
    },
    write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void) {
      tls.write(chunk, encoding, cb);
    },
    final(cb: (err?: Error | null) => void) {
      tls.end();
      cb();
    },
    destroy(err: Error | null, cb: (err: Error | null) => void) {
      tls.destroy();
      cb(err);
    },
  });
  tls.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) tls.pause();
  });
  tls.once('end', () => d.push(null));
  tls.once('close', () => d.destroy());
  tls.on('error', (err: Error) => d.destroy(err));
  const bridge = d as unknown as Socket & { alpnProtocol?: string | false; encrypted?: boolean };
  Object.defineProperties(bridge, {
    remoteAddress: { get: () => tls.remoteAddress },
    remotePort: { get: () => tls.remotePort },
    remoteFamily: { get: () => tls.remoteFamily },
    localAddress: { get: () => tls.localAddress },
    localPort: { get: () => tls.localPort },
    encrypted: { value: true },
    alpnProtocol: { value: 'h2' },
  });
  bridge.setTimeout = (ms: number, cb?: () => void) => {
    tls.setTimeout(ms, cb);
    return bridge;
  };
  bridge.setNoDelay = (noDelay?: boolean) => {
    tls.setNoDelay(noDelay);
    return bridge;
  };
  bridge.destroySoon = () => {
    d.end();
  };
  return bridge;
}
