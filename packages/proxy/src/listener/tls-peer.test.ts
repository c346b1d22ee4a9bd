// Terminating mesh TLS on an accepted socket, as the listeners do: the client certificate is
// verified against the mesh root (OpenSSL alone does not refuse an untrusted one here), and
// HTTP/2 runs over the terminated connection through h2OverTls.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttp2Server, connect as http2Connect } from 'node:http2';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket } from 'node:tls';
import { CertificateAuthority, issueWorkloadSecret, type WorkloadSecret } from '@weft/citadel';
import { silentLogger } from '@weft/model';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DownstreamConnection } from '../core/filters.ts';
import { h2OverTls } from './h2-bridge.ts';
import { describeConnection } from './dispatch.ts';
import { serverTls, verifyClientCertificate } from './tls.ts';
import type { DownstreamTlsContext__Output } from '@weft/xds';

let server: WorkloadSecret;
let client: WorkloadSecret;
let forged: WorkloadSecret;

beforeAll(async () => {
  const ca = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }), { logger: silentLogger });
  const other = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }), { logger: silentLogger });
  server = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'server' }, { keyBits: 2048 });
  client = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'client' }, { keyBits: 2048 });
  forged = await issueWorkloadSecret(other, { namespace: 'default', serviceAccount: 'client' }, { keyBits: 2048 });
}, 30_000);

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** A listener that terminates TLS on each accepted socket as the proxy does, then hands it to `use`. */
async function listen(reject: boolean, use: (tls: TLSSocket | undefined, raw: Socket) => void): Promise<number> {
  const context = createSecureContext({ cert: server.certChainPem, key: server.privateKeyPem, ca: server.rootCertPem });
  const srv: Server = createServer((raw) => {
    raw.on('error', () => {});
    const tls = new TLSSocket(raw, { isServer: true, secureContext: context, requestCert: true, rejectUnauthorized: reject, ALPNProtocols: ['h2', 'http/1.1'] });
    tls.on('error', () => {});
    tls.once('secure', () => {
      if (!verifyClientCertificate(tls, reject)) {
        tls.destroy();
        use(undefined, raw);
        return;
      }
      use(tls, raw);
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  closers.push(() => srv.close());
  return (srv.address() as AddressInfo).port;
}

function dial(port: number, cert: WorkloadSecret | undefined): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(cert ? { cert: cert.certChainPem, key: cert.privateKeyPem } : {}) });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
    });
    s.on('error', () => resolve(`error:${got}`));
    s.on('close', () => resolve(got));
    s.on('secureConnect', () => s.write('hello'));
  });
}

describe('client certificates on terminated TLS', () => {
  it('accepts a certificate from the mesh root and tells who it is; refuses one from another root and none at all', async () => {
    const seen: (string | undefined)[] = [];
    const connections: DownstreamConnection[] = [];
    const port = await listen(true, (tls, raw) => {
      if (!tls) return void seen.push(undefined);
      connections.push(describeConnection(raw, tls, { address: '127.0.0.1', port: 9080 }, undefined));
      seen.push(tls.authorized ? (tls.getPeerCertificate().subjectaltname ?? '') : 'unauthorized');
      tls.once('data', () => tls.end('welcome'));
    });
    expect(await dial(port, client)).toBe('welcome');
    expect(seen.pop()).toBe('URI:spiffe://cluster.local/ns/default/sa/client');
    // What filters see (authorization's source.principal, metrics' connection_security_policy, XFCC).
    expect(connections[0]).toMatchObject({
      tls: true,
      peerPrincipal: 'spiffe://cluster.local/ns/default/sa/client',
      localPrincipal: 'spiffe://cluster.local/ns/default/sa/server',
      destinationPort: 9080,
    });
    expect(connections[0]?.peerCertificate?.equals(new X509Certificate(client.certChainPem).raw)).toBe(true);
    expect(await dial(port, forged)).not.toContain('welcome');
    expect(seen.pop()).toBeUndefined();
    expect(await dial(port, undefined)).not.toContain('welcome');
  });

  it('without rejectUnauthorized (optional client certificates) keeps the connection, unauthorized', async () => {
    const seen: boolean[] = [];
    const port = await listen(false, (tls) => {
      if (!tls) return;
      seen.push(tls.authorized);
      tls.once('data', () => tls.end('ok'));
    });
    expect(await dial(port, forged)).toBe('ok');
    expect(await dial(port, client)).toBe('ok');
    expect(seen).toEqual([false, true]);
  });
});

describe('h2OverTls', () => {
  it('serves HTTP/2 on a TLS connection terminated outside tls.Server', async () => {
    const h2 = createHttp2Server((req, res) => res.end(`${req.method} ${req.url} from ${req.socket.remoteAddress ?? '?'}`));
    const port = await listen(true, (tls) => {
      if (tls) h2.emit('connection', h2OverTls(tls));
    });
    const session = http2Connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, cert: client.certChainPem, key: client.privateKeyPem });
    closers.push(() => session.close());
    const body = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':path': '/hello' });
      let b = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        b += d;
      });
      req.on('end', () => resolve(b));
      req.on('error', reject);
    });
    expect(body).toMatch(/^GET \/hello from /);
  });
});

describe('TLS session resumption on a terminated mesh connection', () => {
  // A sidecar's upstream pool offers the last session's ticket when it dials the same endpoint
  // again (cluster/transport.ts); the inbound side must take it and still know who the peer is.
  it('resumes a session under the same client-certificate policy, with the peer identity kept', async () => {
    const ctx = {
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { specifier: 'inline_string', inline_string: server.certChainPem }, private_key: { specifier: 'inline_string', inline_string: server.privateKeyPem } }],
        validation_context: { trusted_ca: { specifier: 'inline_string', inline_string: server.rootCertPem } },
        alpn_protocols: ['istio-peer-exchange', 'istio'],
      },
      require_client_certificate: { value: true },
    } as unknown as DownstreamTlsContext__Output;
    const tls = serverTls(ctx, () => undefined);
    const seen: { reused: boolean; peer: string }[] = [];
    const srv: Server = createServer((raw) => {
      raw.on('error', () => {});
      const t = new TLSSocket(raw, { isServer: true, secureContext: tls.context, requestCert: tls.requestCert, rejectUnauthorized: tls.rejectUnauthorized, ALPNProtocols: tls.alpn });
      t.on('error', () => {});
      t.once('secure', () => {
        if (!verifyClientCertificate(t, tls.rejectUnauthorized)) return void t.destroy();
        seen.push({ reused: t.isSessionReused(), peer: t.getPeerCertificate().subjectaltname ?? '' });
        t.once('data', () => t.end('welcome'));
      });
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    closers.push(() => srv.close());
    const port = (srv.address() as AddressInfo).port;
    let ticket: Buffer | undefined;
    const connect = () =>
      new Promise<string>((resolve) => {
        const s = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['istio'], cert: client.certChainPem, key: client.privateKeyPem, ...(ticket ? { session: ticket } : {}) });
        let got = '';
        s.on('session', (t: Buffer) => {
          ticket = t;
        });
        s.on('data', (d: Buffer) => {
          got += d.toString();
        });
        s.on('error', (e) => resolve(`error:${e.message}`));
        s.on('close', () => resolve(got));
        s.on('secureConnect', () => s.write('hello'));
      });
    expect(await connect()).toBe('welcome');
    expect(ticket).toBeDefined();
    expect(await connect()).toBe('welcome');
    expect(await connect()).toBe('welcome');
    expect(seen).toEqual([
      { reused: false, peer: 'URI:spiffe://cluster.local/ns/default/sa/client' },
      { reused: true, peer: 'URI:spiffe://cluster.local/ns/default/sa/client' },
      { reused: true, peer: 'URI:spiffe://cluster.local/ns/default/sa/client' },
    ]);
  });
});
