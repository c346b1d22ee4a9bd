// The listener's TLS termination and h2c hand-off on Bun (WEFT_DATA_PLANE_RUNTIME runs weft-proxy
// there): Bun's node:tls and node:http2 differ from Node's where the proxy wraps an accepted socket
// after peeking at its first bytes. A child Bun process runs the proxy's own functions on real
// sockets and reports what a client got; e2e/proxy covers the whole proxy on Bun.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority, issueWorkloadSecret, type WorkloadSecret } from '@weft/citadel';
import { silentLogger } from '@weft/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const bun = [process.env.BUN, join(root, 'node_modules/.bin/bun')].find((p): p is string => !!p && existsSync(p));

// Runs in Bun. Server side as dispatch.ts does it: detect-style peek (pause + unshift), then a
// server TLSSocket on the accepted socket, verifyClientCertificate; h2c: the preface peeked and
// unshifted, the socket handed to an http2 server through h2cSocket.
const script = (tlsUrl: string, bridgeUrl: string) => `
import net from 'node:net';
import tls from 'node:tls';
import http2 from 'node:http2';
const { verifyClientCertificate } = await import(${JSON.stringify(tlsUrl)});
const { h2cSocket } = await import(${JSON.stringify(bridgeUrl)});
const pems = JSON.parse(process.env.PEMS);
const peeked = (sock, go) => sock.once('data', (d) => { sock.pause(); sock.unshift(d); Promise.resolve().then(go); });
function listen(onSocket) {
  const srv = net.createServer(onSocket);
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r(srv)));
}
async function mtls(who, reject) {
  const context = tls.createSecureContext({ cert: pems.server.cert, key: pems.server.key, ca: pems.root });
  let seen = 'no handshake';
  const srv = await listen((sock) => peeked(sock, () => {
    const t = new tls.TLSSocket(sock, { isServer: true, secureContext: context, requestCert: true, rejectUnauthorized: reject });
    t.on('error', () => {});
    sock.resume();
    t.once('secure', () => {
      if (!verifyClientCertificate(t, reject)) { seen = 'refused'; t.destroy(); return; }
      seen = t.authorized ? 'authorized ' + t.getPeerCertificate().subjectaltname : 'unauthorized';
      t.once('data', () => t.end('welcome'));
    });
  }));
  const got = await new Promise((resolve) => {
    const c = tls.connect({ host: '127.0.0.1', port: srv.address().port, rejectUnauthorized: false, ALPNProtocols: ['istio-peer-exchange', 'istio'], ...(pems[who] ? { cert: pems[who].cert, key: pems[who].key } : {}) });
    let body = '';
    c.on('data', (d) => (body += d));
    c.on('error', () => {});
    c.on('close', () => resolve(body));
    c.on('secureConnect', () => c.write('hello'));
  });
  srv.close();
  return { got, seen };
}
async function h2c() {
  const h2 = http2.createServer();
  h2.on('stream', (s, h) => { s.respond({ ':status': 200 }); s.end('h2c ' + h[':path']); });
  const srv = await listen((sock) => peeked(sock, () => h2.emit('connection', h2cSocket(sock))));
  const got = await new Promise((resolve) => {
    const session = http2.connect('http://127.0.0.1:' + srv.address().port);
    session.on('error', (e) => resolve('error ' + e.message));
    const req = session.request({ ':path': '/prior-knowledge' });
    let body = '';
    req.on('response', (h) => (body += h[':status'] + ' '));
    req.on('data', (d) => (body += d));
    req.on('end', () => { session.close(); resolve(body); });
    req.on('error', (e) => resolve('error ' + e.message));
    req.end();
  });
  srv.close();
  h2.close();
  return got;
}
const out = {
  runtime: process.versions.bun ? 'bun' : 'node',
  client: await mtls('client', true),
  forged: await mtls('forged', true),
  forgedPermissive: await mtls('forged', false),
  none: await mtls('none', false),
  h2c: await h2c(),
};
console.log(JSON.stringify(out));
process.exit(0);
`;

let pems: Record<string, unknown>;
let dir: string;

beforeAll(async () => {
  if (!bun) return;
  const ca = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }), { logger: silentLogger });
  const other = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }), { logger: silentLogger });
  const pair = (s: WorkloadSecret) => ({ cert: s.certChainPem, key: s.privateKeyPem });
  const server = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'server' }, { keyBits: 2048 });
  const client = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'client' }, { keyBits: 2048 });
  const forged = await issueWorkloadSecret(other, { namespace: 'default', serviceAccount: 'client' }, { keyBits: 2048 });
  pems = { root: server.rootCertPem, server: pair(server), client: pair(client), forged: pair(forged) };
  dir = mkdtempSync(join(tmpdir(), 'weft-bun-runtime-'));
}, 30_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!bun)('the listener on Bun (needs the bun package: npm ci installs it for bench)', () => {
  it('verifies mesh client certificates on a socket wrapped after a peek, and serves h2c whose preface was peeked', async () => {
    const file = join(dir, 'run.mjs');
    writeFileSync(file, script(new URL('./tls.ts', import.meta.url).href, new URL('./h2-bridge.ts', import.meta.url).href));
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(bun!, [file], { env: { ...process.env, PEMS: JSON.stringify(pems) }, timeout: 20_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out))),
    );
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.runtime).toBe('bun');
    expect(out.client).toEqual({ got: 'welcome', seen: 'authorized URI:spiffe://cluster.local/ns/default/sa/client' });
    // Another root: refused in the handshake (STRICT), or let through without an identity (PERMISSIVE).
    expect(out.forged.got).toBe('');
    expect(out.forged.seen).not.toMatch(/^authorized/);
    expect(out.forgedPermissive).toEqual({ got: 'welcome', seen: 'unauthorized' });
    expect(out.none).toEqual({ got: 'welcome', seen: 'unauthorized' });
    expect(out.h2c).toBe('200 h2c /prior-knowledge');
  }, 30_000);
});
