import { Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js';
import { createLogger } from '@weft/model';
import { TypeUrl } from '@weft/xds';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { proxyFromNode } from '../proxy/node.ts';
import { checkProxyIdentity, type XdsAuthenticator } from './authentication.ts';
import { DiscoveryServer } from './discovery.ts';
import { newStore, SotwTestClient, TestRegistry, worldGenerators, worldPushContext } from './testing.ts';

const reviews = 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews';
const ratings = 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings';
const ingress = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';

function node(id: string, metadata: Record<string, string> = {}) {
  return proxyFromNode({ id, metadata });
}

const ratingsNode = 'sidecar~127.0.0.12~ratings-v1.default~default.svc.cluster.local';
const ingressNode = 'router~127.0.0.9~istio-ingressgateway-5d9f.istio-system~istio-system.svc.cluster.local';

describe('checkProxyIdentity (Istio checkConnectionIdentity)', () => {
  it('accepts an identity whose namespace and service account are the node’s', () => {
    expect(checkProxyIdentity(node(ratingsNode, { SERVICE_ACCOUNT: 'bookinfo-ratings' }), [ratings])).toEqual({ identity: ratings });
  });

  it('refuses another service account in the same namespace, naming both sides', () => {
    const r = checkProxyIdentity(node(ratingsNode, { SERVICE_ACCOUNT: 'bookinfo-ratings' }), [reviews]);
    expect(r.identity).toBeUndefined();
    expect(r).toEqual({ reason: `no authenticated identity (${reviews}) matches the node's namespace default, service account bookinfo-ratings` });
  });

  it('refuses another namespace, from the node id or from NAMESPACE metadata (the config namespace)', () => {
    expect(checkProxyIdentity(node('sidecar~127.0.0.12~ratings-v1.prod~prod.svc.cluster.local'), [ratings]).identity).toBeUndefined();
    expect(checkProxyIdentity(node(ratingsNode, { NAMESPACE: 'prod' }), [ratings]).identity).toBeUndefined();
    // The metadata namespace wins over the id's, so an identity in it is accepted.
    expect(checkProxyIdentity(node(ratingsNode, { NAMESPACE: 'prod' }), ['spiffe://cluster.local/ns/prod/sa/x'])).toEqual({ identity: 'spiffe://cluster.local/ns/prod/sa/x' });
  });

  it('without SERVICE_ACCOUNT metadata checks the namespace only', () => {
    expect(checkProxyIdentity(node(ratingsNode), [reviews])).toEqual({ identity: reviews });
    expect(checkProxyIdentity(node(ratingsNode), [ingress]).identity).toBeUndefined();
  });

  it('checks router proxies the same way: istio-ingressgateway in istio-system', () => {
    const gateway = node(ingressNode, { SERVICE_ACCOUNT: 'istio-ingressgateway-service-account' });
    expect(gateway.type).toBe('router');
    expect(checkProxyIdentity(gateway, [ingress])).toEqual({ identity: ingress });
    // A workload identity cannot pose as the gateway, nor the gateway as a workload.
    expect(checkProxyIdentity(gateway, [reviews]).identity).toBeUndefined();
    expect(checkProxyIdentity(node(ratingsNode, { SERVICE_ACCOUNT: 'bookinfo-ratings' }), [ingress]).identity).toBeUndefined();
  });

  it('takes the first matching identity and skips what is not a SPIFFE workload ID', () => {
    const p = node(ratingsNode, { SERVICE_ACCOUNT: 'bookinfo-ratings' });
    expect(checkProxyIdentity(p, ['spiffe://cluster.local/workload/x', 'https://example.com', reviews, ratings])).toEqual({ identity: ratings });
    expect(checkProxyIdentity(p, []).identity).toBeUndefined();
  });
});

describe('DiscoveryServer with an authenticator', () => {
  // The hook stands in for citadel's (weftd's tests use the real one over TLS): the identity is
  // whatever the `x-identity` header says, and no header means no credentials.
  const fromHeader: XdsAuthenticator = (call) => {
    const id = call.metadata.get('x-identity')[0];
    return typeof id === 'string' ? { identities: [id], via: 'test' } : { reason: 'no x-identity header' };
  };
  let server: DiscoveryServer;
  let target: string;
  const lines: Record<string, unknown>[] = [];
  const clients: SotwTestClient[] = [];

  function client(id: string, metadata: Record<string, string>, identity: string | undefined) {
    const md = new Metadata();
    if (identity) md.set('x-identity', identity);
    const c = new SotwTestClient(target, { id, metadata }, md);
    clients.push(c);
    return c;
  }

  async function ended(c: SotwTestClient): Promise<{ code: number; details: string }> {
    const end = Date.now() + 3000;
    while (!c.status) {
      if (Date.now() > end) throw new Error('the stream did not end');
      await new Promise((r) => setTimeout(r, 5));
    }
    return c.status;
  }

  beforeEach(async () => {
    lines.length = 0;
    server = new DiscoveryServer({
      store: newStore(),
      registry: new TestRegistry(),
      generators: worldGenerators,
      buildPushContext: worldPushContext({ clusters: { 'outbound|80||a.default.svc.cluster.local': ['10.0.0.1:80'] }, listeners: ['virtualInbound'], routes: {} }),
      proxyFromNode: (n) => proxyFromNode(n),
      logger: createLogger({ scope: 'pilot', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) }),
    });
    target = `127.0.0.1:${await server.listen({ port: 0, authenticate: fromHeader })}`;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server.stop();
  });

  it('refuses a node that claims another service account with PERMISSION_DENIED, logs it, counts it, and never lists it', async () => {
    const c = client(ratingsNode, { SERVICE_ACCOUNT: 'bookinfo-ratings' }, reviews);
    c.request(TypeUrl.Cluster);
    const s = await ended(c);
    expect(s.code).toBe(status.PERMISSION_DENIED);
    expect(s.details).toContain('bookinfo-ratings');
    expect(server.syncStatus()).toEqual([]);
    expect(server.connections).toHaveLength(0);
    const line = lines.find((l) => l.msg === 'xDS stream refused: node does not match the authenticated identity');
    expect(line).toMatchObject({ level: 'warn', code: 'PERMISSION_DENIED', node: ratingsNode, identities: [reviews], serviceAccount: 'bookinfo-ratings' });
    expect(line?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await server.metrics.refused.get()).values).toEqual([{ value: 1, labels: { reason: 'permission_denied' } }]);
  });

  it('refuses a stream without credentials with UNAUTHENTICATED, naming the node it claimed', async () => {
    const c = client(ratingsNode, {}, undefined);
    c.request(TypeUrl.Cluster);
    expect((await ended(c)).code).toBe(status.UNAUTHENTICATED);
    expect(server.syncStatus()).toEqual([]);
    expect(lines.find((l) => l.msg === 'xDS stream refused: client not authenticated')).toMatchObject({ code: 'UNAUTHENTICATED', node: ratingsNode, reason: 'no x-identity header' });
    expect((await server.metrics.refused.get()).values).toEqual([{ value: 1, labels: { reason: 'unauthenticated' } }]);
  });

  it('refuses a stream without credentials that sends nothing within a second', async () => {
    const c = client(ratingsNode, {}, undefined);
    const t0 = Date.now();
    expect((await ended(c)).code).toBe(status.UNAUTHENTICATED);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(lines.find((l) => l.msg === 'xDS stream refused: client not authenticated')?.node).toBeUndefined();
  });

  it('serves a node that matches its identity, and shows the identity in syncz', async () => {
    const c = client(ratingsNode, { SERVICE_ACCOUNT: 'bookinfo-ratings' }, ratings);
    c.request(TypeUrl.Cluster);
    const r = await c.next();
    c.ack(r);
    expect(r.resources.length).toBe(1);
    const [entry] = server.syncStatus();
    expect(entry).toMatchObject({ id: ratingsNode, authenticated: true, identity: ratings, authn: 'test' });
  });

  it('waits for an authenticator that answers later (a TokenReview): requests sent meanwhile are served, a rejection is UNAUTHENTICATED', async () => {
    const slow = new Server();
    let calls = 0;
    const later: XdsAuthenticator = (call) => {
      calls++;
      const id = call.metadata.get('x-identity')[0];
      return new Promise((resolve, reject) =>
        setTimeout(() => (id === 'boom' ? reject(new Error('API server unreachable')) : resolve(typeof id === 'string' ? { identities: [id], via: 'later' } : { reason: 'none' })), 200),
      );
    };
    slow.addService(server.serviceDefinition(), server.handlers({ authenticate: later }));
    const port = await new Promise<number>((resolve, reject) => slow.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    try {
      const md = new Metadata();
      md.set('x-identity', ratings);
      const c = new SotwTestClient(`127.0.0.1:${port}`, { id: ratingsNode, metadata: { SERVICE_ACCOUNT: 'bookinfo-ratings' } }, md);
      clients.push(c);
      c.request(TypeUrl.Cluster);
      const r = await c.next();
      expect(r.resources.length).toBe(1);
      expect(server.syncStatus()[0]).toMatchObject({ id: ratingsNode, identity: ratings, authn: 'later' });

      const boom = new Metadata();
      boom.set('x-identity', 'boom');
      const refused = new SotwTestClient(`127.0.0.1:${port}`, { id: ratingsNode }, boom);
      clients.push(refused);
      refused.request(TypeUrl.Cluster);
      expect((await ended(refused)).code).toBe(status.UNAUTHENTICATED);
      expect(lines.find((l) => l.msg === 'xDS stream refused: client not authenticated')).toMatchObject({ reason: 'authenticator failed: API server unreachable' });
      expect(calls).toBe(2);
    } finally {
      slow.forceShutdown();
    }
  });

  it('without an authenticator (the plaintext port) serves anyone, marked unauthenticated', async () => {
    const plain = new Server();
    plain.addService(server.serviceDefinition(), server.handlers());
    const port = await new Promise<number>((resolve, reject) => plain.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    try {
      const c = new SotwTestClient(`127.0.0.1:${port}`, { id: ratingsNode });
      clients.push(c);
      c.request(TypeUrl.Cluster);
      await c.next();
      const [entry] = server.syncStatus();
      expect(entry?.authenticated).toBe(false);
      expect(entry?.identity).toBeUndefined();
    } finally {
      plain.forceShutdown();
    }
  });
});
