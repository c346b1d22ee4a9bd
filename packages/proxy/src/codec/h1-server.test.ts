// The HTTP/1.1 server codec against raw bytes on real sockets: what a client sees on the wire.
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { H1Connection, type H1Request, type H1Response } from './h1-server.ts';

let server: Server;
let port: number;
const seen: { method: string; url: string; headers: Record<string, unknown>; body: string }[] = [];
const tunnels: { url: string; rest: string }[] = [];
let maxBuffered = 0;
let resetClosed = false;

/** The handler: echoes what it got; `/stream` answers in pieces with a trailer; `/early` answers before reading the body. */
function handle(req: H1Request, res: H1Response): void {
  if (req.url === '/slow-reader') {
    // Reads 64 KiB at a time with a pause between: the connection must not buffer the whole upload.
    let total = 0;
    req.pause();
    const step = () => {
      for (let c = req.read(65536) as Buffer | null; c !== null; c = req.read(65536) as Buffer | null) total += c.length;
      if (req.readableEnded) return;
      maxBuffered = Math.max(maxBuffered, req.readableLength);
      setTimeout(step, 5);
    };
    req.on('end', () => {
      res.writeHead(200);
      res.end(String(total));
    });
    step();
    return;
  }
  if (req.url === '/reset') {
    res.writeHead(200, { 'content-length': '100' });
    res.write(Buffer.from('partial'));
    res.on('close', () => {
      resetClosed = !res.writableFinished;
    });
    setTimeout(() => res.destroy(), 20);
    return;
  }
  if (req.url === '/split') {
    res.writeHead(200, { 'x-ok': 'fine', 'x-evil': 'a\r\nx-injected: 1', 'set-cookie': ['a=1', 'b=2\r\nx-injected: 2'] });
    res.end('ok');
    return;
  }
  if (req.url === '/early') {
    res.writeHead(413, { 'content-type': 'text/plain' });
    res.end('too big');
    return;
  }
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const body = Buffer.concat(parts).toString();
    seen.push({ method: req.method, url: req.url, headers: { ...req.headers }, body });
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(Buffer.from('one,'));
      res.write(Buffer.from('two'));
      res.addTrailers({ 'grpc-status': '0' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-url': req.url });
    res.end(`${req.method} ${req.url} ${body}`);
  });
}

beforeAll(async () => {
  server = createServer((socket) => {
    new H1Connection(socket, {
      onRequest: handle,
      onUpgrade: (req, s, rest) => {
        tunnels.push({ url: req.url, rest: rest.toString() });
        s.end('HTTP/1.1 200 Connection established\r\n\r\n');
      },
      maxHeaderSize: 4096,
      headersTimeoutMs: 300,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  server.close();
});

/** Sends `bytes` (all at once, or in the given pieces with a pause between) and collects what comes back until close or `ms`. */
function exchange(bytes: string | string[], ms = 1000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, ms);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on('error', () => {});
    const pieces = Array.isArray(bytes) ? bytes : [bytes];
    let i = 0;
    const next = () => {
      socket.write(pieces[i++]!, 'latin1');
      if (i < pieces.length) setTimeout(next, 20);
    };
    next();
  });
}

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

describe('H1Connection', () => {
  it('answers a GET with a length-delimited body and keeps the connection for the next request', async () => {
    const { text, closed } = await exchange(['GET /a HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(statuses(text)).toEqual([200, 200]);
    expect(text).toContain('content-length: 7\r\n');
    expect(text).toContain('GET /a ');
    expect(text).toMatch(/date: .+ GMT\r\n/);
    expect(closed).toBe(false);
  });

  it('serves pipelined requests one at a time, in order', async () => {
    const { text } = await exchange('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(statuses(text)).toEqual([200, 200, 200]);
    expect([...text.matchAll(/x-url: (\S+)/g)].map((m) => m[1])).toEqual(['/1', '/2', '/3']);
    expect(text).toContain('POST /2 abc');
  });

  it('reads a chunked request body split across reads, and joins repeated headers as Envoy does (a comma; cookie with a semicolon)', async () => {
    seen.length = 0;
    await exchange(['POST /up HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nCookie: a=1\r\nX-A: 2\r\nCookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', 'lo\r\n6\r\n world\r\n0\r\n\r\n']);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/up', body: 'hello world', headers: { 'x-a': '1,2', cookie: 'a=1; b=2' } });
  });

  it('streams a response with chunked encoding and trailers', async () => {
    const { text } = await exchange('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(text).toContain('transfer-encoding: chunked\r\n');
    expect(text).toContain('\r\n4\r\none,\r\n3\r\ntwo\r\n0\r\ngrpc-status: 0\r\n\r\n');
  });

  it('sends no body for HEAD', async () => {
    const { text } = await exchange('HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(statuses(text)).toEqual([200, 200]);
    expect(text).not.toContain('HEAD /h');
    expect(text).toContain('GET /after');
  });

  it('closes after the response for HTTP/1.0 without keep-alive and for Connection: close', async () => {
    for (const req of ['GET /old HTTP/1.0\r\n\r\n', 'GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']) {
      const { text, closed } = await exchange(req);
      expect(statuses(text)).toEqual([200]);
      expect(text).toContain('connection: close\r\n');
      expect(closed).toBe(true);
    }
  });

  it('answers Expect: 100-continue before the body', async () => {
    const { text } = await exchange(['PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n', 'ok']);
    expect(statuses(text)).toEqual([100, 200]);
    expect(text).toContain('PUT /e ok');
  });

  it('goes on with the next request when the response ended before the request body', async () => {
    const { text } = await exchange(['POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n', '0123456789GET /next HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(statuses(text)).toEqual([413, 200]);
    expect(text).toContain('GET /next');
  });

  it('applies backpressure to a large upload read slowly: every byte arrives, little is buffered', async () => {
    const size = 8 * 1024 * 1024;
    const body = Buffer.alloc(size, 'a');
    const result = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.endsWith(String(size))) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.write(`POST /slow-reader HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      socket.write(body);
    });
    expect(statuses(result)).toEqual([200]);
    expect(result.endsWith(`\r\n\r\n${size}`)).toBe(true);
    // The request stream's own buffer stays near its high-water mark plus one socket read, not the upload.
    expect(maxBuffered).toBeLessThan(1024 * 1024);
  }, 30_000);

  it('a response destroyed half-way closes the connection and still tells the pipeline it is over (close without finish)', async () => {
    resetClosed = false;
    const { text, closed } = await exchange('GET /reset HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(closed).toBe(true);
    expect(text).toContain('partial');
    await new Promise((r) => setTimeout(r, 20));
    expect(resetClosed).toBe(true);
  });

  it('drops a header whose value would split the response (CR/LF), keeps the rest', async () => {
    const { text } = await exchange('GET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statuses(text)).toEqual([200]);
    expect(text).toContain('x-ok: fine\r\n');
    expect(text).toContain('set-cookie: a=1\r\n');
    expect(text).not.toContain('x-injected');
    expect(text).not.toContain('x-evil');
  });

  it('hands CONNECT to onUpgrade with the bytes after the head', async () => {
    tunnels.length = 0;
    const { text } = await exchange('CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nhello');
    expect(statuses(text)).toEqual([200]);
    expect(tunnels).toEqual([{ url: 'db:5432', rest: 'hello' }]);
  });

  it('answers 408 to a head trickled in slower than headersTimeoutMs', async () => {
    const pieces = ['GET /slow HTTP/1.1\r\n', ...Array.from({ length: 8 }, (_, i) => `X-${i}: y\r\n`), '\r\n'];
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    socket.on('error', () => {});
    for (const p of pieces) {
      if (socket.destroyed) break;
      socket.write(p);
      await new Promise((r) => setTimeout(r, 60));
    }
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    expect(statuses(text)).toEqual([408]);
  });

  it('closes a keep-alive connection idle past keepAliveTimeoutMs, but never under a response that takes longer', async () => {
    const idle = createServer((socket) => {
      new H1Connection(socket, {
        keepAliveTimeoutMs: 200,
        onRequest: (req, res) => {
          // /slow answers after twice the idle time.
          setTimeout(() => res.end('late'), req.url === '/slow' ? 400 : 0);
        },
      });
    });
    await new Promise<void>((resolve) => idle.listen(0, '127.0.0.1', resolve));
    try {
      const socket = connect((idle.address() as AddressInfo).port, '127.0.0.1');
      let text = '';
      let closedAt = 0;
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
      });
      socket.on('close', () => {
        closedAt = performance.now();
      });
      socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => setTimeout(r, 500));
      expect(statuses(text)).toEqual([200]);
      expect(closedAt).toBe(0);
      const answered = performance.now();
      // Idle now: closed about 200 ms after the response, not before.
      await new Promise((r) => setTimeout(r, 600));
      expect(closedAt).toBeGreaterThan(0);
      expect(closedAt - answered).toBeLessThan(500);
      socket.destroy();
    } finally {
      idle.close();
    }
  });

  const hidden = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  const refused: [string, string, number][] = [
    ['Content-Length with Transfer-Encoding', `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`, 400],
    ['two Content-Lengths', `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`, 400],
    ['obs-fold', `GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${hidden}`, 400],
    ['bare LF', `GET / HTTP/1.1\nHost: x\n\n${hidden}`, 400],
    ['Transfer-Encoding not ending in chunked', `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${hidden}`, 400],
    ['whitespace before a colon', `POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello${hidden}`, 400],
    ['a head over maxHeaderSize', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`, 431],
  ];
  for (const [name, bytes, status] of refused) {
    it(`refuses ${name} with ${status} and closes; the handler never sees a hidden request`, async () => {
      seen.length = 0;
      const { text, closed } = await exchange(bytes);
      expect(statuses(text)).toEqual([status]);
      expect(closed).toBe(true);
      expect(seen.map((s) => s.url)).not.toContain('/smuggled');
    });
  }
});
