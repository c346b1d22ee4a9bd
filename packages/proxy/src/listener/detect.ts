// Listener filters, done by peeking at the first bytes a client sends (Envoy's tls_inspector and
// http_inspector): TLS or plaintext, the SNI and ALPN of a TLS ClientHello, and for plaintext
// whether it is HTTP/1.x or HTTP/2 with prior knowledge (the `PRI * HTTP/2.0` preface). The bytes
// are put back on the socket, so whatever handles the connection next reads them again.
import type { Socket } from 'node:net';

export interface Detected {
  transport: 'tls' | 'raw_buffer';
  /** TLS: the server name the client asked for. */
  sni?: string;
  /** TLS: the ALPN protocols the client offers. Plaintext: `http/1.1`, `http/1.0` or `h2c` when it speaks HTTP, else none. */
  alpn: string[];
}

export const h2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const maxPeek = 16 * 1024 + 5;
const methodChar = (b: number) => (b >= 0x41 && b <= 0x5a) || b === 0x2d || b === 0x5f;

type Verdict = Detected | 'more';

/** Classifies the bytes a client sent first; `more` when they do not tell yet. */
export function classify(buf: Buffer): Verdict {
  if (buf.length === 0) return 'more';
  if (buf[0] === 0x16) return classifyTls(buf);
  // HTTP/2 prior knowledge: the whole preface must be there (it starts like an HTTP/1 `PRI` request).
  const n = Math.min(buf.length, h2Preface.length);
  if (buf.subarray(0, n).equals(h2Preface.subarray(0, n))) {
    return buf.length >= h2Preface.length ? { transport: 'raw_buffer', alpn: ['h2c'] } : 'more';
  }
  return classifyHttp1(buf);
}

function classifyHttp1(buf: Buffer): Verdict {
  let i = 0;
  while (i < buf.length && i < 24 && methodChar(buf[i]!)) i++;
  if (i === buf.length) return buf.length < 24 ? 'more' : { transport: 'raw_buffer', alpn: [] };
  if (i === 0 || buf[i] !== 0x20) return { transport: 'raw_buffer', alpn: [] };
  const eol = buf.indexOf('\r\n', i, 'latin1');
  if (eol < 0) {
    if (buf.length >= 8192) return { transport: 'raw_buffer', alpn: [] };
    // The request line is not complete yet; its version decides.
    return 'more';
  }
  const line = buf.toString('latin1', 0, eol);
  const m = / HTTP\/1\.([01])$/.exec(line);
  if (!m) return { transport: 'raw_buffer', alpn: [] };
  return { transport: 'raw_buffer', alpn: [m[1] === '1' ? 'http/1.1' : 'http/1.0'] };
}

function classifyTls(buf: Buffer): Verdict {
  if (buf.length < 5) return 'more';
  if (buf[1] !== 0x03) return { transport: 'raw_buffer', alpn: [] };
  const recordLen = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLen) return buf.length >= maxPeek ? { transport: 'tls', alpn: [] } : 'more';
  const out: Detected = { transport: 'tls', alpn: [] };
  try {
    parseClientHello(buf.subarray(5, 5 + recordLen), out);
  } catch {
    // A ClientHello split over several records, or not one at all: TLS without SNI/ALPN.
  }
  return out;
}

function parseClientHello(h: Buffer, out: Detected): void {
  if (h[0] !== 0x01) return;
  let p = 4; // type(1) + length(3)
  p += 2 + 32; // version, random
  p += 1 + h[p]!; // session id
  p += 2 + h.readUInt16BE(p); // cipher suites
  p += 1 + h[p]!; // compression methods
  if (p + 2 > h.length) return;
  const end = p + 2 + h.readUInt16BE(p);
  p += 2;
  while (p + 4 <= end && p + 4 <= h.length) {
    const type = h.readUInt16BE(p);
    const len = h.readUInt16BE(p + 2);
    const body = h.subarray(p + 4, p + 4 + len);
    p += 4 + len;
    if (type === 0x0000) {
      // server_name: list length(2), then entries: type(1) len(2) name
      let q = 2;
      while (q + 3 <= body.length) {
        const nameType = body[q]!;
        const nameLen = body.readUInt16BE(q + 1);
        if (nameType === 0) {
          out.sni = body.toString('latin1', q + 3, q + 3 + nameLen).toLowerCase();
          break;
        }
        q += 3 + nameLen;
      }
    } else if (type === 0x0010) {
      let q = 2;
      while (q < body.length) {
        const l = body[q]!;
        out.alpn.push(body.toString('latin1', q + 1, q + 1 + l));
        q += 1 + l;
      }
    }
  }
}

/**
 * Reads until the first bytes classify the connection (or `timeoutMs` passes, or the client
 * ends), then puts the bytes back. Resolves `undefined` when the socket closed first.
 */
export function detect(socket: Socket, timeoutMs: number): Promise<Detected | undefined> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (d: Detected | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.pause();
      if (buf.length > 0) socket.unshift(buf);
      resolve(d);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const v = classify(buf);
      if (v !== 'more') finish(v);
    };
    // A client that sends nothing first (a server-first protocol) or ends early is plain TCP.
    const onEnd = () => finish(settle(buf));
    const onClose = () => finish(undefined);
    const timer = setTimeout(() => finish(settle(buf)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onClose);
  });
}

function settle(buf: Buffer): Detected {
  if (buf.length > 0 && buf[0] === 0x16) return { transport: 'tls', alpn: [] };
  return { transport: 'raw_buffer', alpn: [] };
}
