// The HTTP/1.1 client codec against a raw TCP server that writes exactly the bytes each case needs.
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { H1Client, type H1DispatchOptions } from './h1-client.ts';

let server: Server;
let port: number;
/** What the server got, per connection, and how many connections it saw. */
const received: string[] = [];
/** The bytes the server answers each request line with (by path). */
const answers: Record<string, string> = {
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\nSet-Cookie: a=1\r\n\r\nhello',
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\ngrpc-status: 0\r\n\r\n',
  '/eof': 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end',
  '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
  '/continue': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
  '/short-keepalive': 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=1\r\n\r\n',
  '/garbage': 'HTTP/1.1 2x0 NOPE\r\n\r\n',
  '/smuggle': 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  '/early': 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n',
};
let connections = 0;

beforeAll(async () => {
  server = createServer((s: Socket) => {
    connections++;
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      received.push(c.toString('latin1'));
      // One answer per complete request head (bodies are short and end with the head's read here, or come chunked).
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const path = head.split(' ')[1] ?? '';
        if (path === '/hangup') {
          s.destroy();
          return;
        }
        if (path === '/early') {
          // Answers at once, before the streamed body (which it never reads to its end).
          s.write(answers['/early']!);
          continue;
        }
        if (/transfer-encoding: chunked/i.test(head)) {
          const last = buf.indexOf('0\r\n\r\n');
          if (last < 0) {
            buf = `${head}\r\n\r\n${buf}`;
            return;
          }
          buf = buf.slice(last + 5);
        } else {
          const cl = /content-length: (\d+)/i.exec(head);
          if (cl) buf = buf.slice(Number(cl[1]));
        }
        const a = answers[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';
        s.write(a);
        if (path === '/eof') s.end();
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  server.close();
});

function client(keepAliveTimeoutMs = 4000): H1Client {
  return new H1Client({
    connect: (cb) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => cb(null, s));
      s.once('error', (e) => cb(e, null));
    },
    keepAliveTimeoutMs,
    keepAliveMaxTimeoutMs: 60_000,
    keepAliveTimeoutThresholdMs: 500,
  });
}

interface Result {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body: string;
  trailers?: Record<string, string | string[] | undefined>;
  error?: Error & { code?: string };
}

function send(c: H1Client, path: string, extra: Partial<H1DispatchOptions> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const r: Result = { body: '' };
    c.dispatch(
      { path, method: 'GET', headers: ['host', 'svc:80'], body: null, ...extra },
      {
        onResponseStart: (_c, status, headers) => {
          r.status = status;
          r.headers = headers;
        },
        onResponseData: (_c, chunk) => {
          r.body += chunk.toString();
        },
        onResponseEnd: (_c, trailers) => {
          r.trailers = trailers;
          resolve(r);
        },
        onResponseError: (_c, err) => {
          r.error = err;
          resolve(r);
        },
      },
    );
  });
}

describe('H1Client', () => {
  it('sends a request, reads the response, and carries the next one on the same connection', async () => {
    const before = connections;
    const c = client();
    const a = await send(c, '/ok');
    expect(a).toMatchObject({ status: 200, body: 'hello', headers: { 'x-a': ['1', '2'], 'set-cookie': 'a=1', 'content-length': '5' } });
    const b = await send(c, '/ok');
    expect(b.body).toBe('hello');
    expect(connections - before).toBe(1);
    expect(received.at(-1)).toMatch(/^GET \/ok HTTP\/1\.1\r\nhost: svc:80\r\nconnection: keep-alive\r\n\r\n$/);
    await c.destroy();
  });

  it('decodes a chunked response and hands over its trailers', async () => {
    const c = client();
    expect(await send(c, '/chunked')).toMatchObject({ status: 200, body: 'abcde', trailers: { 'grpc-status': '0' } });
    await c.destroy();
  });

  it('ends a response delimited by the close of the connection, and the client is gone after', async () => {
    const c = client();
    let disconnected = false;
    c.on('disconnect', () => {
      disconnected = true;
    });
    expect(await send(c, '/eof')).toMatchObject({ status: 200, body: 'until the end' });
    await new Promise((r) => setTimeout(r, 50));
    expect(disconnected).toBe(true);
  });

  it('expects no body after HEAD, and skips informational responses', async () => {
    const c = client();
    expect(await send(c, '/head', { method: 'HEAD' })).toMatchObject({ status: 200, body: '' });
    expect(await send(c, '/continue', { method: 'POST', body: 'hi' })).toMatchObject({ status: 201, body: 'ok' });
    await c.destroy();
  });

  it('frames bodies: a Buffer with its length, a stream without one as chunked', async () => {
    const c = client();
    await send(c, '/ok', { method: 'POST', body: Buffer.from('abc') });
    expect(received.at(-1)).toContain('content-length: 3\r\n');
    expect(received.at(-1)).toMatch(/\r\n\r\nabc$/);
    await send(c, '/ok', { method: 'PUT', body: Readable.from([Buffer.from('ab'), Buffer.from('cd')]) });
    const wire = received.slice(-3).join('');
    expect(wire).toContain('transfer-encoding: chunked\r\n');
    expect(wire).toContain('2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n');
    await send(c, '/ok', { method: 'POST' });
    expect(received.at(-1)).toContain('content-length: 0\r\n');
    await c.destroy();
  });

  it("closes an idle connection after the server's Keep-Alive timeout less the threshold", async () => {
    const c = client();
    let gone = 0;
    c.on('disconnect', () => {
      gone = performance.now();
    });
    await send(c, '/short-keepalive');
    const t = performance.now();
    await new Promise((r) => setTimeout(r, 900));
    expect(gone).toBeGreaterThan(0);
    expect(gone - t).toBeLessThan(800);
  });

  it('re-arms the idle timer each time the connection goes idle again: it closes the idle time after the last response, not the first', async () => {
    const before = connections;
    const c = client();
    let gone = 0;
    c.on('disconnect', () => {
      gone = performance.now();
    });
    await send(c, '/short-keepalive');
    // 300 ms of the 500 ms idle time pass; the next request reuses the connection.
    await new Promise((r) => setTimeout(r, 300));
    expect(gone).toBe(0);
    await send(c, '/short-keepalive');
    const second = performance.now();
    expect(connections - before).toBe(1);
    await new Promise((r) => setTimeout(r, 900));
    expect(gone).toBeGreaterThan(0);
    expect(gone - second).toBeGreaterThan(400);
    expect(gone - second).toBeLessThan(800);
  });

  it('fails the request with a socket error when the server hangs up, with a parser error on a broken response, and refuses a response with both framings', async () => {
    expect((await send(client(), '/hangup')).error?.code).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
    const garbage = await send(client(), '/garbage');
    expect(garbage.error?.name).toBe('HTTPParserError');
    const smuggle = await send(client(), '/smuggle');
    expect(smuggle.error?.name).toBe('HTTPParserError');
    expect(smuggle.status).toBeUndefined();
  });

  it('does not reuse a connection whose streamed request body was still going when the answer came', async () => {
    const c = client();
    let gone = false;
    c.on('disconnect', () => {
      gone = true;
    });
    const body = new Readable({ read() {} });
    body.push(Buffer.from('first part'));
    const r = await send(c, '/early', { method: 'PUT', body });
    expect(r.status).toBe(401);
    await new Promise((res) => setTimeout(res, 20));
    expect(gone).toBe(true);
    // The rest of the body never reaches a connection that carries another request.
    body.push(Buffer.from('late part'));
    body.push(null);
    expect((await send(c, '/ok')).error?.code).toMatch(/UND_ERR_(CLOSED|DESTROYED)/);
  });

  it('never puts CR or LF on the wire: such a header is dropped, such a request line refused', async () => {
    const c = client();
    await send(c, '/ok', { headers: ['host', 'svc:80', 'x-evil', 'a\r\nx-injected: 1', 'x-ok', 'fine'] });
    expect(received.at(-1)).toContain('x-ok: fine\r\n');
    expect(received.at(-1)).not.toContain('x-injected');
    const bad = await send(c, '/ok HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /smuggled');
    expect(bad.error?.code).toBe('UND_ERR_INVALID_ARG');
    expect(received.join('')).not.toContain('smuggled');
    await c.destroy();
  });

  it('fails with the connect error when the endpoint does not answer', async () => {
    const c = new H1Client({
      connect: (cb) => {
        const s = connect(1, '127.0.0.1');
        s.once('error', (e) => cb(e, null));
      },
      keepAliveTimeoutMs: 4000,
      keepAliveMaxTimeoutMs: 60_000,
      keepAliveTimeoutThresholdMs: 500,
    });
    expect((await send(c, '/ok')).error?.code).toBe('ECONNREFUSED');
  });
});
