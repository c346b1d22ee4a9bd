// HTTP/2 over a TLS connection this proxy terminated itself (mesh mTLS, gateway HTTPS): Node's
// http2 server stalls on a server TLSSocket made outside tls.Server (no request ever arrives),
// so the session gets a plain stream that carries the decrypted bytes instead, the way http2
// already runs over non-native streams. It answers the socket properties the proxy reads. On Bun
// the same bridge carries h2c (`h2cSocket`).
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export function h2OverTls(tls: TLSSocket): Socket {
  return h2Bridge(tls, true);
}

/**
 * HTTP/2 with prior knowledge (h2c) on Bun: Bun's http2 server reads a socket handed to it
 * ('connection') from the socket's native handle, so the connection preface that protocol
 * detection read and unshifted back is lost ("Received bad client magic byte string", GOAWAY
 * PROTOCOL_ERROR). The bridge replays the unshifted bytes through 'data' events as on TLS. Node's
 * http2 server takes the socket as it is (no copy), so it gets the socket unchanged there.
 */
export function h2cSocket(socket: Socket): Socket {
  return process.versions.bun !== undefined ? h2Bridge(socket, false) : socket;
}

/** A Duplex that carries `inner`'s bytes (and replays what was unshifted into it), answering as a socket. */
function h2Bridge(inner: Socket, encrypted: boolean): Socket {
  const d = new Duplex({
    read() {
      inner.resume();
    },
    write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void) {
      inner.write(chunk, encoding, cb);
    },
    final(cb: (err?: Error | null) => void) {
      inner.end();
      cb();
    },
    destroy(err: Error | null, cb: (err: Error | null) => void) {
      inner.destroy();
      cb(err);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) inner.pause();
  });
  inner.once('end', () => d.push(null));
  inner.once('close', () => d.destroy());
  inner.on('error', (err: Error) => d.destroy(err));
  const bridge = d as unknown as Socket & { alpnProtocol?: string | false; encrypted?: boolean };
  Object.defineProperties(bridge, {
    remoteAddress: { get: () => inner.remoteAddress },
    remotePort: { get: () => inner.remotePort },
    remoteFamily: { get: () => inner.remoteFamily },
    localAddress: { get: () => inner.localAddress },
    localPort: { get: () => inner.localPort },
    ...(encrypted ? { encrypted: { value: true }, alpnProtocol: { value: 'h2' } } : {}),
  });
  bridge.setTimeout = (ms: number, cb?: () => void) => {
    inner.setTimeout(ms, cb);
    return bridge;
  };
  bridge.setNoDelay = (noDelay?: boolean) => {
    inner.setNoDelay(noDelay);
    return bridge;
  };
  bridge.destroySoon = () => {
    d.end();
  };
  return bridge;
}
