// The proxy's xDS stream over TLS to an authenticating port, wired as weftd wires 15012 (the CA's
// serving certificate, citadel's caller authentication as pilot's hook): first with the bootstrap
// token, then with the workload certificate, and after a rotation with the new certificate on the
// next reconnect. Real TLS and gRPC; the server is restarted on the same port to make the proxy reconnect.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server } from '@grpc/grpc-js';
import { CertificateAuthority, callerAuthenticator, caServiceDefinition, createCaServiceHandlers, ServingCertificateProvider } from '@weft/citadel';
import { MemoryConfigStore, silentLogger } from '@weft/model';
import { AggregateRegistry, buildPushContext, DiscoveryServer, envoyGenerators, proxyFromNode, ServiceEntryRegistry, type XdsAuthenticator } from '@weft/pilot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XdsClient } from '../xds/client.ts';
import { buildNode } from '../xds/node.ts';
import { WorkloadIdentity } from './identity.ts';

let ca: CertificateAuthority;
let serving: ServingCertificateProvider;
let discovery: DiscoveryServer;
let server: Server | undefined;
let port = 0;
let dir: string;
/** What the server saw of each stream: how it authenticated and the client certificate's serial. */
const seen: { via: string | undefined; serial: string | undefined }[] = [];

const authenticate = (): XdsAuthenticator => {
  const citadel = callerAuthenticator(ca);
  return (call) => {
    const r = citadel(call);
    // Without a platform authenticator the answer is synchronous.
    if (r instanceof Promise) throw new Error('unexpected asynchronous authentication');
    seen.push({ via: r.identities ? r.via : undefined, serial: call.getAuthContext().sslPeerCertificate?.serialNumber });
    return r;
  };
};

async function listen(): Promise<void> {
  const s = new Server();
  s.addService(caServiceDefinition(), createCaServiceHandlers({ ca, logger: silentLogger }));
  s.addService(discovery.serviceDefinition(), discovery.handlers({ authenticate: authenticate() }));
  port = await new Promise<number>((resolve, reject) => s.bindAsync(`127.0.0.1:${port}`, serving.credentials(), (err, p) => (err ? reject(err) : resolve(p))));
  server = s;
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  ca = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }), { logger: silentLogger });
  serving = new ServingCertificateProvider(ca, {}, silentLogger);
  await serving.start();
  const store = new MemoryConfigStore();
  const se = new ServiceEntryRegistry(store, {});
  discovery = new DiscoveryServer({
    store,
    registry: new AggregateRegistry([se]),
    generators: { envoy: envoyGenerators },
    buildPushContext,
    proxyFromNode: (n) => proxyFromNode(n),
    logger: silentLogger,
  });
  discovery.start();
  await listen();
  dir = mkdtempSync(join(tmpdir(), 'weft-xds-tls-'));
}, 30_000);

afterAll(async () => {
  server?.forceShutdown();
  await discovery?.stop();
  serving?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('xDS over TLS with the workload identity', () => {
  it('authenticates with the bootstrap token, then the certificate, then the rotated certificate on reconnect', async () => {
    const tokenFile = join(dir, 'ratings.token');
    writeFileSync(tokenFile, ca.issueBootstrapToken('default', 'bookinfo-ratings'));
    const identity = new WorkloadIdentity({
      caAddress: `127.0.0.1:${port}`,
      rootCertPem: ca.rootCertPem,
      caServerName: 'localhost',
      tokenFile,
      trustDomain: 'cluster.local',
      namespace: 'default',
      serviceAccount: 'bookinfo-ratings',
      ttlSeconds: 4,
      logger: silentLogger,
    });
    const node = { type: 'sidecar' as const, ip: '127.0.0.12', pod: 'ratings-v1', namespace: 'default', serviceAccount: 'bookinfo-ratings' };
    const xds = new XdsClient({ address: `127.0.0.1:${port}`, node: buildNode(node), channel: () => identity.xdsChannel(), initialBackoffMs: 50, maxBackoffMs: 200, logger: silentLogger });
    const synced = () => discovery.syncStatus().find((e) => e.id === buildNode(node).id && Object.values(e.types).some((t) => t.status === 'ACKED'));
    try {
      // No certificate yet: the token authenticates the stream.
      xds.start();
      await until(() => synced() !== undefined, 'the first stream to sync');
      expect(synced()).toMatchObject({ authenticated: true, identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings', authn: 'token' });

      await identity.start();
      const first = identity.current!.serialNumber;
      const restart = async () => {
        seen.length = 0;
        server!.forceShutdown();
        await listen();
        await until(() => synced() !== undefined && seen.some((s) => s.via !== undefined), 'the proxy to reconnect');
      };
      await restart();
      expect(synced()).toMatchObject({ authn: 'mtls', identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings' });
      expect(seen.at(-1)!.serial?.toUpperCase()).toBe(first.toUpperCase());

      await until(() => identity.current!.serialNumber !== first, 'a rotation', 10_000);
      const second = identity.current!.serialNumber;
      await restart();
      expect(seen.at(-1)).toEqual({ via: 'mtls', serial: expect.stringMatching(new RegExp(`^${second}$`, 'i')) });
    } finally {
      await xds.close();
      identity.stop();
    }
  }, 40_000);

  it('without a certificate or a readable token the client says why and keeps retrying', async () => {
    const identity = new WorkloadIdentity({
      caAddress: `127.0.0.1:${port}`,
      rootCertPem: ca.rootCertPem,
      tokenFile: join(dir, 'missing.token'),
      trustDomain: 'cluster.local',
      namespace: 'default',
      serviceAccount: 'x',
      logger: silentLogger,
    });
    const xds = new XdsClient({ address: `127.0.0.1:${port}`, node: buildNode({ type: 'sidecar', ip: '127.0.0.13', pod: 'x', namespace: 'default' }), channel: () => identity.xdsChannel(), initialBackoffMs: 20, maxBackoffMs: 50 });
    try {
      xds.start();
      await until(() => (xds.status().lastError ?? '').includes('bootstrap token cannot be read'), 'the error');
      expect(xds.status().connected).toBe(false);
    } finally {
      await xds.close();
    }
  });
});
