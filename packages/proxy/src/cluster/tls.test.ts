// Upstream TLS: mesh mTLS with the SDS secrets `default` and `ROOTCA` (certificates from the mesh
// CA), SAN verification against the destination's SPIFFE identities, and the connect timeout
// covering the handshake.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { CertificateAuthority, issueWorkloadSecret, mtlsServerOptions, secretResources, type WorkloadSecret } from '@weft/citadel';
import { decodeAny, encodeAny, type Secret__Output, TypeUrl } from '@weft/xds';
import { afterEach, beforeAll, expect, test } from 'vitest';
import { checkCluster, createClusterManager, type WeftClusterManager } from './manager.ts';
import { checkSans } from './transport.ts';
import { cluster, get, pilotSnapshot, snapshot, text } from './test-support.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let server: WorkloadSecret;
let client: WorkloadSecret;
let secrets: Map<string, Secret__Output>;

beforeAll(async () => {
  const ca = new CertificateAuthority(await CertificateAuthority.generateRoot({ keyBits: 2048 }));
  server = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'svc' }, { keyBits: 2048 });
  client = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'client' }, { keyBits: 2048 });
  secrets = new Map(secretResources(client, ['default', 'ROOTCA']).map((a) => {
    const s = decodeAny(a, TypeUrl.Secret);
    return [s.name, s];
  }));
}, 30_000);

function manager(): WeftClusterManager {
  const cm = createClusterManager();
  cleanups.push(() => cm.close());
  return cm;
}

/** An mTLS backend as a sidecar's inbound listener is: it requires a mesh client certificate and (by default) answers with the client's SPIFFE ID. */
async function mtlsBackend(
  handle: (req: IncomingMessage, res: ServerResponse) => void = (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.end(peer.subjectaltname ?? '');
  },
): Promise<number> {
  const srv: Server = createHttpsServer({ ...mtlsServerOptions(server), ALPNProtocols: ['istio-peer-exchange', 'istio', 'h2', 'http/1.1'] }, handle);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanups.push(async () => {
    srv.closeAllConnections();
    srv.close();
    await once(srv, 'close');
  });
  return (srv.address() as AddressInfo).port;
}

function yaml(port: number, opts: { serviceAccount?: string; dr?: string; tlsMode?: boolean } = {}): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: default}
spec:
  hosts: [svc.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: web, protocol: HTTP}]
  workloadSelector: {labels: {app: svc}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: svc-1, namespace: default}
spec:
  address: 127.0.0.1
  ports: {web: ${port}}
  serviceAccount: ${opts.serviceAccount ?? 'svc'}
  labels: {app: svc${opts.tlsMode ? ', security.istio.io/tlsMode: istio' : ''}}
${
  opts.dr
    ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: default}
spec: {host: svc, trafficPolicy: {tls: ${opts.dr}}}
`
    : ''
}`;
}

const svc = 'outbound|80||svc.default.svc.cluster.local';

test('ISTIO_MUTUAL: the workload certificate is presented and the server identity verified', async () => {
  const port = await mtlsBackend();
  const cm = manager();
  cm.update(pilotSnapshot(yaml(port, { dr: '{mode: ISTIO_MUTUAL}' }), secrets));
  const r = await cm.get(svc)!.request(get(), {});
  expect(await text(r)).toBe('URI:spiffe://cluster.local/ns/default/sa/client');
});

test('auto mTLS toward a tlsMode=istio endpoint uses TLS once the secrets exist', async () => {
  const port = await mtlsBackend();
  const cm = manager();
  cm.update(pilotSnapshot(yaml(port, { tlsMode: true }), secrets));
  expect(await text(await cm.get(svc)!.request(get(), {}))).toBe('URI:spiffe://cluster.local/ns/default/sa/client');
});

test('a server whose identity is not the expected SAN is refused (UF)', async () => {
  const port = await mtlsBackend();
  const cm = manager();
  // The mesh says the endpoint runs as `other`; the certificate says `svc`.
  cm.update(pilotSnapshot(yaml(port, { dr: '{mode: ISTIO_MUTUAL}', serviceAccount: 'other' }), secrets));
  await expect(cm.get(svc)!.request(get(), {})).rejects.toMatchObject({ flag: 'UF', message: expect.stringContaining('match none of the configured subject alt names') });
});

test('ISTIO_MUTUAL without the SDS secrets fails with UF instead of falling back to plaintext', async () => {
  const port = await mtlsBackend();
  const cm = manager();
  cm.update(pilotSnapshot(yaml(port, { dr: '{mode: ISTIO_MUTUAL}' })));
  await expect(cm.get(svc)!.request(get(), {})).rejects.toMatchObject({ flag: 'UF', message: expect.stringContaining('TLS secret "default" is not available') });
});

test('the connect timeout covers the TLS handshake: a silent server fails with UF after connect_timeout', async () => {
  const silent = createNetServer(() => {});
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  cleanups.push(async () => {
    silent.close();
  });
  const port = (silent.address() as AddressInfo).port;
  const cm = manager();
  cm.update(
    snapshot([
      cluster({
        name: 'c',
        type: 'STATIC',
        connect_timeout: { nanos: 150_000_000 },
        load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
        transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { type_url: TypeUrl.UpstreamTlsContext, value: Buffer.alloc(0) } },
      }),
    ]),
  );
  const t0 = performance.now();
  await expect(cm.get('c')!.request(get(), {})).rejects.toMatchObject({ flag: 'UF', message: expect.stringContaining('connect timeout after 150 ms') });
  const took = performance.now() - t0;
  expect(took).toBeGreaterThanOrEqual(145);
  expect(took).toBeLessThan(1000);
  expect(cm.stats().get('c')!).toMatchObject({ upstream_cx_connect_fail: 1, upstream_cx_connect_timeout: 1 });
});

// The proxy used to split Node's subjectaltname text at every comma: a quoted URI SAN holding
// ", URI:spiffe://…/sa/admin" then matched a prefix matcher as if it were a second identity.
test('a quoted SAN is one name: a certificate cannot smuggle in a second identity', () => {
  const sans = [{ match_pattern: 'prefix' as const, prefix: 'spiffe://cluster.local/ns/default/', ignore_case: false }];
  const cert = (subjectaltname: string) => ({ subjectaltname }) as PeerCertificate;
  expect(checkSans(sans, cert('URI:"spiffe://evil.example/x, URI:spiffe://cluster.local/ns/default/sa/admin"'))).toBeInstanceOf(Error);
  expect(checkSans(sans, cert('URI:spiffe://cluster.local/ns/default/sa/reviews, DNS:reviews'))).toBeUndefined();
});

// Envoy matches a SAN regex with RE2, against the whole name; a regex RE2 refuses NACKs the cluster.
test('a SAN regex is RE2, matched against the whole name; one RE2 refuses is a cluster NACK', () => {
  const sans = [{ match_pattern: 'safe_regex' as const, safe_regex: { regex: 'spiffe://cluster\\.local/ns/default/sa/(reviews|ratings)' }, ignore_case: false }];
  const cert = (subjectaltname: string) => ({ subjectaltname }) as PeerCertificate;
  expect(checkSans(sans, cert('URI:spiffe://cluster.local/ns/default/sa/reviews'))).toBeUndefined();
  expect(checkSans(sans, cert('URI:spiffe://cluster.local/ns/default/sa/reviews-admin'))).toBeInstanceOf(Error);
  expect(checkSans(sans, cert('URI:spiffe://cluster.local/ns/default/sa/ratings'))).toBeUndefined();
  const withSanRegex = (regex: string) =>
    cluster({
      name: 'c',
      type: 'STATIC',
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: encodeAny(TypeUrl.UpstreamTlsContext, { common_tls_context: { validation_context: { match_subject_alt_names: [{ safe_regex: { regex } }] } } }),
      },
    });
  expect(checkCluster(withSanRegex('spiffe://.+/ns/default/sa/reviews'))).toBeUndefined();
  expect(checkCluster(withSanRegex('spiffe://(?!evil).+'))).toMatch(
    /^transport socket envoy\.transport_sockets\.tls: common_tls_context\.validation_context\.match_subject_alt_names\[0\]\.safe_regex: regex "spiffe:\/\/\(\?!evil\)\.\+": .*\(RE2 has no lookahead\)$/,
  );
});

// A full mTLS handshake costs both sides an RSA signature and a chain verification; after a pause
// the pool opens many connections at once, and those handshakes were the mesh hop's tail. A new
// connection to the same endpoint resumes the last session (TLS 1.3 ticket): the server sees the
// same client identity, and the SAN check still runs on the certificate kept in the session.
test('a new connection to the same endpoint resumes the TLS session, with the same identities on both sides', async () => {
  const seen: { reused: boolean; peer: string }[] = [];
  const port = await mtlsBackend((req, res) => {
    const socket = req.socket as TLSSocket;
    seen.push({ reused: socket.isSessionReused(), peer: socket.getPeerCertificate().subjectaltname ?? '' });
    // one request per connection: the next request dials again
    res.setHeader('connection', 'close');
    res.end('ok');
  });
  const cm = manager();
  cm.update(pilotSnapshot(yaml(port, { dr: '{mode: ISTIO_MUTUAL}' }), secrets));
  for (let i = 0; i < 3; i++) {
    expect(await text(await cm.get(svc)!.request(get(), {}))).toBe('ok');
    // the ticket arrives just after the handshake: let it land before the next dial
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(seen.map((s) => s.reused)).toEqual([false, true, true]);
  expect(new Set(seen.map((s) => s.peer))).toEqual(new Set(['URI:spiffe://cluster.local/ns/default/sa/client']));
  // A server that is not who the mesh says it is is still refused on a connection that would resume.
  cm.update(pilotSnapshot(yaml(port, { dr: '{mode: ISTIO_MUTUAL}', serviceAccount: 'other' }), secrets));
  await expect(cm.get(svc)!.request(get(), {})).rejects.toMatchObject({ flag: 'UF', message: expect.stringContaining('match none of the configured subject alt names') });
});
