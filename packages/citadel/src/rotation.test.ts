// End to end: CA service over TLS -> certificate manager (bootstrap token, then mTLS renewal) ->
// SDS stream and a Node TLS server that follow every rotation.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { credentials } from '@grpc/grpc-js';
import { createSdsClient, decodeAny, type Secret__Output, TypeUrl } from '@weft/xds';
import { expect, it } from 'vitest';
import { CertificateAuthority } from './ca.ts';
import { CaServer } from './ca-server.ts';
import { CertificateManager, issueWorkloadSecret, type WorkloadSecret } from './cert-manager.ts';
import { silentLogger } from '@weft/model';
import { SdsServer } from './sds.ts';
import { captureLogger, sdsReader, tempDir } from './testing.ts';
import { followSecrets, mtlsClientOptions, mtlsServerOptions, verifySpiffePeer } from './tls.ts';

const reviews = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const productpage = 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage';
const node = { id: 'sidecar~10.1.0.9~reviews-v1-xyz.default~default.svc.cluster.local' };

function dial(port: number, secret: WorkloadSecret): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...mtlsClientOptions(secret, reviews) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function echo(socket: TLSSocket, text: string): Promise<string> {
  socket.write(text);
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString();
}

function workloadSecretOf(resources: { type_url: string; value: Buffer }[]): Secret__Output {
  const s = resources.map((a) => decodeAny(a, TypeUrl.Secret)).find((x) => x.name === 'default');
  if (!s) throw new Error('no default secret in the SDS response');
  return s;
}

it('rotates a 20 s certificate before it expires: SDS pushes it, the TLS server swaps its context, an open connection survives', async () => {
  const dir = tempDir();
  const log = captureLogger('citadel');
  const ca = await CertificateAuthority.open(join(dir.path, 'ca'), { logger: silentLogger });
  const caServer = await CaServer.start({ ca, port: 0, logger: log.logger });
  const manager = new CertificateManager({
    identity: { namespace: 'default', serviceAccount: 'bookinfo-reviews' },
    caAddress: caServer.address,
    rootCertPem: ca.rootCertPem,
    bootstrapToken: ca.issueBootstrapToken('default', 'bookinfo-reviews', 600),
    ttlSeconds: 20,
    logger: silentLogger,
  });
  const sds = await SdsServer.start({ source: manager, address: `unix:${join(dir.path, 'workload-spiffe-uds', 'socket')}`, logger: silentLogger });
  const sdsClient = createSdsClient(sds.address, credentials.createInsecure());
  const tlsServer = createServer(mtlsServerOptions(await manager.start()), (socket) => {
    if (!verifySpiffePeer(socket, productpage).ok) {
      socket.destroy();
      return;
    }
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => {});
  });
  const unfollow = followSecrets(tlsServer, manager);
  try {
    const first = manager.current!;
    expect(first.notAfter.getTime() - first.notBefore.getTime()).toBe(20_000);

    // The proxy's SDS stream: both resources, ACKed.
    const stream = sdsClient.StreamSecrets();
    const r = sdsReader(stream);
    stream.write({ node, resource_names: ['default', 'ROOTCA'], type_url: TypeUrl.Secret });
    const v1 = await r.next();
    expect(workloadSecretOf(v1.resources).tls_certificate?.certificate_chain?.inline_bytes?.toString()).toBe(first.certChainPem);
    stream.write({ node, version_info: v1.version_info, response_nonce: v1.nonce, resource_names: ['default', 'ROOTCA'], type_url: TypeUrl.Secret });

    // A long-lived mTLS connection, opened before the rotation.
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    const port = (tlsServer.address() as AddressInfo).port;
    const client = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'bookinfo-productpage' });
    const old = await dial(port, client);
    expect(old.getPeerX509Certificate()?.serialNumber).toBe(first.serialNumber);
    expect(await echo(old, 'before')).toBe('before');

    // The rotation arrives on the SDS stream (at about half of the 20 s lifetime), before expiry.
    const v2 = await r.next(20_000);
    const receivedAt = Date.now();
    expect(receivedAt).toBeLessThan(first.notAfter.getTime());
    expect(v2.version_info).not.toBe(v1.version_info);
    const rotatedPem = workloadSecretOf(v2.resources).tls_certificate!.certificate_chain!.inline_bytes!.toString();
    const rotated = new X509Certificate(rotatedPem);
    expect(rotated.serialNumber).not.toBe(first.serialNumber);
    expect(Date.parse(rotated.validTo)).toBeGreaterThan(first.notAfter.getTime());
    expect(rotated.serialNumber).toBe(manager.current!.serialNumber);

    // The open connection was not dropped; new connections get the new certificate.
    expect(await echo(old, 'after')).toBe('after');
    const fresh = await dial(port, client);
    expect(fresh.getPeerX509Certificate()?.serialNumber).toBe(rotated.serialNumber);
    expect(await echo(fresh, 'new')).toBe('new');
    fresh.destroy();
    old.destroy();

    // The renewal was authenticated with the certificate being replaced.
    const issued = log.lines.filter((l) => l.msg === 'issued certificate' && l.identity === reviews);
    expect(issued.map((l) => l.authn)).toEqual(['token', 'mtls']);
    stream.end();
  } finally {
    unfollow();
    manager.stop();
    tlsServer.close();
    sdsClient.close();
    await sds.close();
    await caServer.close();
    dir.remove();
  }
}, 40_000);
