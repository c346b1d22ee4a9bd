import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from './ca.ts';
import { issueWorkloadSecret, type WorkloadSecret } from './cert-manager.ts';
import { silentLogger } from '@weft/model';
import { mtlsClientOptions, mtlsServerOptions, type SpiffeMatcher, type SpiffePeerResult, verifySpiffePeer } from './tls.ts';

const productpage = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
const reviews = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';

let ca: CertificateAuthority;
let client: WorkloadSecret;
let server: WorkloadSecret;
let stranger: WorkloadSecret;

beforeAll(async () => {
  ca = new CertificateAuthority(await CertificateAuthority.generateRoot(), { logger: silentLogger });
  const otherCa = new CertificateAuthority(await CertificateAuthority.generateRoot(), { logger: silentLogger });
  [client, server, stranger] = await Promise.all([
    issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'bookinfo-productpage' }),
    issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'bookinfo-reviews' }),
    // Same identity as the client, but from another root.
    issueWorkloadSecret(otherCa, { namespace: 'default', serviceAccount: 'bookinfo-productpage' }),
  ]);
});

/** An mTLS echo server that checks its clients' SPIFFE IDs and records what it decided. */
async function echoServer(secret: WorkloadSecret, allowed: SpiffeMatcher): Promise<{ server: Server; port: number; decisions: SpiffePeerResult[]; handshakeErrors: string[] }> {
  const decisions: SpiffePeerResult[] = [];
  const handshakeErrors: string[] = [];
  const srv = createServer(mtlsServerOptions(secret), (socket) => {
    const result = verifySpiffePeer(socket, allowed);
    decisions.push(result);
    if (!result.ok) {
      socket.destroy();
      return;
    }
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => {});
  });
  srv.on('tlsClientError', (err) => handshakeErrors.push(err.message));
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return { server: srv, port: (srv.address() as AddressInfo).port, decisions, handshakeErrors };
}

function dial(port: number, secret: WorkloadSecret, expected: SpiffeMatcher): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...mtlsClientOptions(secret, expected) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function echo(socket: TLSSocket, text: string): Promise<string> {
  socket.write(text);
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString();
}

describe('workload mTLS with Node tls', () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const s of servers) s.close();
  });

  it('two workloads with CA certificates complete mutual TLS, each verifying the other’s SPIFFE ID', async () => {
    const s = await echoServer(server, productpage);
    servers.push(s.server);
    const socket = await dial(s.port, client, reviews);
    expect(verifySpiffePeer(socket, reviews)).toMatchObject({ ok: true, spiffeId: reviews, identity: { namespace: 'default', serviceAccount: 'bookinfo-reviews' } });
    expect(await echo(socket, 'ping')).toBe('ping');
    expect(s.decisions).toEqual([{ ok: true, spiffeId: productpage, identity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-productpage' } }]);
    socket.destroy();
  });

  it('rejects a client certificate from another root during the handshake', async () => {
    const s = await echoServer(server, productpage);
    servers.push(s.server);
    // The client trusts our root (so the server is fine for it), but its own certificate is foreign.
    const foreign = { ...stranger, rootCertPem: ca.rootCertPem };
    const socket = connect({ host: '127.0.0.1', port: s.port, ...mtlsClientOptions(foreign, reviews) });
    const outcome = await new Promise<string>((resolve) => {
      // With TLS 1.3 the server's rejection of the client certificate arrives after the client's handshake completes.
      socket.on('secureConnect', () => socket.write('x'));
      socket.on('data', () => resolve('echoed'));
      socket.on('error', (e) => resolve(`error: ${e.message}`));
      socket.on('close', () => resolve('closed'));
    });
    socket.destroy();
    expect(outcome).not.toBe('echoed');
    // The server aborted the handshake (OpenSSL reports it as a hang-up under TLS 1.3) and never accepted the connection.
    expect(s.handshakeErrors).toHaveLength(1);
    expect(s.decisions).toEqual([]);
  });

  it('rejects a server whose certificate is from another root, or whose SPIFFE ID is not the expected one', async () => {
    const foreignServer = await echoServer({ ...stranger, rootCertPem: ca.rootCertPem }, productpage);
    servers.push(foreignServer.server);
    await expect(dial(foreignServer.port, client, productpage)).rejects.toThrow(/self[- ]signed|unable to verify|unable to get local issuer/i);
    const s = await echoServer(server, productpage);
    servers.push(s.server);
    await expect(dial(s.port, client, 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings')).rejects.toThrow(/peer identity .*bookinfo-reviews is not allowed/);
  });

  it('a server refuses a trusted client whose identity it does not allow', async () => {
    const s = await echoServer(server, { trustDomain: 'other.domain' });
    servers.push(s.server);
    const socket = await dial(s.port, client, reviews);
    await once(socket, 'close');
    expect(s.decisions).toEqual([{ ok: false, reason: `peer identity ${productpage} is not allowed` }]);
  });
});
