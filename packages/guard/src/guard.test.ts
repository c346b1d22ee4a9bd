import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '@weft/model';
import { needs } from '@weft/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OwnerGuard } from './guard.ts';

const uid = process.getuid!();
const otherUidSkip = needs({ root: true, tools: ['setpriv', 'bash'] });
const hasOpenssl = needs({ tools: ['openssl'] }) === undefined;
const otherUid = 47_114;

let dir = '';
let key = '';
let cert = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-guard-'));
  if (!hasOpenssl) return;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  key = readFileSync(join(dir, 'key.pem'), 'utf8');
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const closers: (() => unknown)[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const close of closers.splice(0).reverse()) await close();
});

function logSink() {
  const lines: Record<string, unknown>[] = [];
  return { lines, logger: createLogger({ scope: 'guard-test', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }) };
}

/** A guard that sees every peer as `peer` (the consumer's view of a refusal without a second user). */
function guardSeeing(peer: number | undefined, logIntervalMs = 10_000) {
  const { lines, logger } = logSink();
  const refusedBy: string[] = [];
  const guard = new OwnerGuard({
    ownerUid: uid,
    logger,
    logIntervalMs,
    onRefused: (port) => refusedBy.push(port),
    lookup: () => (peer === undefined ? { uid: undefined, reason: 'no-such-socket' } : { uid: peer }),
  });
  return { guard, lines, refusedBy };
}

function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port)));
}

/** What a raw client sees: the bytes it got, and how the connection ended. */
function rawExchange(port: number, send: string): Promise<{ data: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let data = '';
    let error: string | undefined;
    c.on('connect', () => c.write(send));
    c.on('data', (b) => (data += b.toString()));
    c.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    c.on('close', () => resolve({ data, error }));
    setTimeout(() => c.destroy(), 3000);
  });
}

describe('OwnerGuard.protect', () => {
  it('serves the owner through node:http as if unguarded', async () => {
    const guard = new OwnerGuard({ ownerUid: uid });
    const server = guard.protect(http.createServer((_req, res) => res.end('hello')), 'admin');
    const port = await listen(server);
    closers.push(() => server.close());
    const r = await fetch(`http://127.0.0.1:${port}/`);
    expect(await r.text()).toBe('hello');
    expect(guard.refusedTotal).toBe(0);
  });

  it('resets another UID before any listener sees the socket, counts it and logs one structured line', async () => {
    const { guard, lines, refusedBy } = guardSeeing(otherUid);
    let connections = 0;
    let requests = 0;
    const server = guard.protect(http.createServer(() => requests++), 'admin');
    server.on('connection', () => connections++);
    const port = await listen(server);
    closers.push(() => server.close());
    const r = await rawExchange(port, 'POST /quitquitquit HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(r.data).toBe('');
    expect(r.error).toBe('ECONNRESET');
    expect(connections).toBe(0);
    expect(requests).toBe(0);
    expect(guard.refusedCounts().get('admin')).toBe(1);
    expect(refusedBy).toEqual(['admin']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'connection refused: the peer is not the mesh owner', port: 'admin', peerUid: otherUid, ownerUid: uid, local: `127.0.0.1:${port}`, refused: 1 });
    expect(lines[0]!.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('refuses when the kernel names nobody (fail closed), saying why', async () => {
    const { guard, lines } = guardSeeing(undefined);
    const server = guard.protect(net.createServer((s) => s.end('served')), 'stats');
    const port = await listen(server);
    closers.push(() => server.close());
    const r = await rawExchange(port, '');
    expect(r.data).toBe('');
    expect(lines[0]).toMatchObject({ port: 'stats', peerUid: null, reason: 'no-such-socket' });
  });

  it('logs at most one line per port per interval and reports how many it left out', async () => {
    const { guard, lines } = guardSeeing(otherUid, 1500);
    const server = guard.protect(net.createServer((s) => s.end()), 'outbound');
    const port = await listen(server);
    closers.push(() => server.close());
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) await rawExchange(port, '');
    expect(guard.refusedCounts().get('outbound')).toBe(20);
    if (Date.now() - t0 >= 1400) {
      // A machine too loaded to make 20 connections within the interval: still far fewer lines than refusals.
      expect(lines.length).toBeLessThan(5);
      return;
    }
    expect(lines).toHaveLength(1);
    for (let i = 0; i < 40 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ refused: 20, notLogged: 18 });
  });

  it('refuses a second guard on the same server (one check per accept)', () => {
    const guard = new OwnerGuard({ ownerUid: uid });
    const server = guard.protect(net.createServer(), 'x');
    expect(() => guard.protect(server, 'x')).toThrow(/already guarded/);
  });

  it('refuses an owner UID that is not one', () => {
    expect(() => new OwnerGuard({ ownerUid: -1 })).toThrow(/owner UID/);
    expect(() => new OwnerGuard({ ownerUid: 1.5 })).toThrow(/owner UID/);
  });

  describe.skipIf(!hasOpenssl)('TLS servers (openssl makes the test certificate)', () => {
    it('https: the owner gets the page; a refused peer gets a reset before the handshake', async () => {
      const guard = new OwnerGuard({ ownerUid: uid });
      const server = guard.protect(https.createServer({ key, cert }, (_req, res) => res.end('secure')), 'https');
      const port = await listen(server);
      closers.push(() => server.close());
      const body = await new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, ca: cert, agent: false }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      expect(body).toBe('secure');

      const refused = guardSeeing(otherUid).guard;
      const other = refused.protect(tls.createServer({ key, cert }, (s) => s.end('no')), 'tls');
      const otherPort = await listen(other);
      closers.push(() => other.close());
      const err = await new Promise<string>((resolve) => {
        const c = tls.connect({ host: '127.0.0.1', port: otherPort, ca: cert }, () => resolve('handshake completed'));
        c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      expect(err).toBe('ECONNRESET');
    });

    it('http2 (secure): the owner is served', async () => {
      const guard = new OwnerGuard({ ownerUid: uid });
      const server = guard.protect(http2.createSecureServer({ key, cert }, (_req, res) => res.end('h2')), 'h2');
      const port = await listen(server);
      closers.push(() => server.close());
      const client = http2.connect(`https://127.0.0.1:${port}`, { ca: cert });
      closers.push(() => client.close());
      const body = await new Promise<string>((resolve, reject) => {
        const req = client.request({ ':path': '/' });
        let b = '';
        req.on('data', (c) => (b += c));
        req.on('end', () => resolve(b));
        req.on('error', reject);
      });
      expect(body).toBe('h2');
    });
  });

  it('http2 (cleartext): a refused peer never reaches a session', async () => {
    const { guard } = guardSeeing(otherUid);
    let sessions = 0;
    const server = guard.protect(http2.createServer(), 'h2c');
    server.on('session', () => sessions++);
    const port = await listen(server);
    closers.push(() => server.close());
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const outcome = await new Promise<string>((resolve) => {
      client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      client.on('close', () => resolve('closed'));
      client.request({ ':path': '/' }).on('error', () => {});
    });
    client.destroy();
    expect(outcome).toMatch(/ECONNRESET|closed|ERR_HTTP2/);
    expect(sessions).toBe(0);
  });
});

/** grpc-js's health-like echo: one unary method, no proto files. */
const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: '/weft.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: Buffer) => v,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (v: Buffer) => v,
    responseDeserialize: (b: Buffer) => b,
  },
};

function echoServer(): grpc.Server {
  const server = new grpc.Server();
  server.addService(echoService, { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) });
  return server;
}

function echo(port: number, credentials: grpc.ChannelCredentials): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
  const client = new Client(`127.0.0.1:${port}`, credentials);
  return new Promise((resolve) => {
    client.makeUnaryRequest('/weft.test.Echo/Echo', (v: Buffer) => v, (b: Buffer) => b, Buffer.from('ping'), { deadline: Date.now() + 3000 }, (err, v) => {
      client.close();
      resolve(err ? `error ${grpc.status[err.code]}` : String(v));
    });
  });
}

describe('OwnerGuard.listenGrpc (grpc-js connection injector)', () => {
  it('serves the owner over plaintext, and a refused peer gets UNAVAILABLE', async () => {
    const guard = new OwnerGuard({ ownerUid: uid });
    const server = echoServer();
    const bound = await guard.listenGrpc(server, grpc.ServerCredentials.createInsecure(), { host: '127.0.0.1', port: 0, name: 'xds' });
    closers.push(() => server.forceShutdown(), () => bound.close());
    expect(await echo(bound.port, grpc.credentials.createInsecure())).toBe('ping');

    const refused = guardSeeing(otherUid);
    const other = echoServer();
    const otherBound = await refused.guard.listenGrpc(other, grpc.ServerCredentials.createInsecure(), { host: '127.0.0.1', port: 0, name: 'xds' });
    closers.push(() => other.forceShutdown(), () => otherBound.close());
    expect(await echo(otherBound.port, grpc.credentials.createInsecure())).toBe('error UNAVAILABLE');
    expect(refused.guard.refusedCounts().get('xds')).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(!hasOpenssl)('serves the owner over TLS (the handshake happens in grpc-js, after the check)', async () => {
    const guard = new OwnerGuard({ ownerUid: uid });
    const server = echoServer();
    const bound = await guard.listenGrpc(server, grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(key), cert_chain: Buffer.from(cert) }]), { host: '127.0.0.1', port: 0, name: 'xds-tls' });
    closers.push(() => server.forceShutdown(), () => bound.close());
    expect(await echo(bound.port, grpc.credentials.createSsl(Buffer.from(cert)))).toBe('ping');
  });

  it('close stops accepting', async () => {
    const guard = new OwnerGuard({ ownerUid: uid });
    const server = echoServer();
    const bound = await guard.listenGrpc(server, grpc.ServerCredentials.createInsecure(), { host: '127.0.0.1', port: 0, name: 'xds' });
    await bound.close();
    server.forceShutdown();
    const r = await rawExchange(bound.port, '');
    expect(r.error).toBe('ECONNREFUSED');
  });
});

describe.skipIf(otherUidSkip !== undefined)(`a real second UID (${otherUid}, through setpriv)`, () => {
  /** Runs bash as the other UID; resolves to its exit status and output. */
  function asOther(script: string): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve) => {
      const c = spawn('setpriv', [`--reuid=${otherUid}`, `--regid=${otherUid}`, '--clear-groups', '--', 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(c);
      let out = '';
      c.stdout!.on('data', (b) => (out += b));
      c.stderr!.on('data', (b) => (out += b));
      c.on('exit', (code) => resolve({ code, out }));
    });
  }

  it('is refused by an owner-only HTTP server that serves root', async () => {
    const { lines, logger } = logSink();
    const guard = new OwnerGuard({ ownerUid: uid, logger });
    let requests = 0;
    const server = guard.protect(
      http.createServer((_req, res) => {
        requests++;
        res.end('ok');
      }),
      'admin',
    );
    const port = await listen(server);
    closers.push(() => server.close());
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('ok');
    // Bytes or not, nothing comes back: the connection is reset (a refused write may also end bash with SIGPIPE).
    const r = await asOther(`trap '' PIPE; exec 3<>/dev/tcp/127.0.0.1/${port}; printf 'GET / HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n' >&3 2>/dev/null; n=$(cat <&3 | wc -c); echo "got $n bytes"`);
    expect(r.out).toContain('got 0 bytes');
    expect(requests).toBe(1);
    expect(lines[0]).toMatchObject({ port: 'admin', peerUid: otherUid, ownerUid: uid });
  });

  it('is refused by an owner-only gRPC port', async () => {
    const guard = new OwnerGuard({ ownerUid: uid });
    const server = echoServer();
    const bound = await guard.listenGrpc(server, grpc.ServerCredentials.createInsecure(), { host: '127.0.0.1', port: 0, name: 'xds' });
    closers.push(() => server.forceShutdown(), () => bound.close());
    // The HTTP/2 preface as the other UID: no SETTINGS frame comes back, only a reset.
    const r = await asOther(`trap '' PIPE; exec 3<>/dev/tcp/127.0.0.1/${bound.port}; printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n' >&3 2>/dev/null; n=$(head -c 9 <&3 | wc -c); echo "got $n bytes"`);
    expect(r.out).toContain('got 0 bytes');
    expect(guard.refusedCounts().get('xds')).toBe(1);
    expect(await echo(bound.port, grpc.credentials.createInsecure())).toBe('ping');
  });
});
