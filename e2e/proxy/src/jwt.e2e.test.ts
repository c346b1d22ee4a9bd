// RequestAuthentication end to end, as real processes and as Istio's security tasks run it
// ("Authentication Policy" end-user authentication, "Authorization with JWT", JWT at the ingress
// gateway, claim-based routing): weftd fetches the issuer's JWKS from a real key server on
// 127.0.0.1 (keys made with jose) and inlines it, weft-proxy sidecars and weft-ingress verify
// tokens, AuthorizationPolicies decide on the principal and claims. Requests go from an app through
// its sidecar to another sidecar, or to the ingress gateway; assertions are status codes, Envoy's
// bodies and what the backend saw. The key server rotates its key mid-suite: pilot's refresh (1 s
// here, --jwks-refresh-interval) carries the new key to every proxy without a restart.
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry, subsets } from './config.ts';
import { App, type Backend, freePort, type ProxyProcess, type Reply, startBackend, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const ip = {
  client: '127.10.16.1',
  httpbinV1: '127.10.16.11',
  httpbinV2: '127.10.16.12',
  secure: '127.10.16.21',
  ingress: '127.10.16.100',
};
const issuer = 'testing@secure.istio.io';
const issuer2 = 'https://accounts.example.com';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const keys: { k1?: Key; k2?: Key; k3?: Key; impostor?: Key } = {};
let served: { keys: JWK[] };
/** What the key server serves after the rotation (key k2 only). */
let rotated: { keys: JWK[] };
let jwksServer: Server;
let jwksUri: string;
let jwksHits = 0;

let dir: string;
let weftd: Weftd;
const backends: Backend[] = [];
const proxies: ProxyProcess[] = [];
let app: App;
let gatewayPort: number;

async function token(claims: JWTPayload, o: { key?: Key; kid?: string; iss?: string; exp?: number | string } = {}): Promise<string> {
  return new SignJWT({ iss: o.iss ?? issuer, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: o.kid ?? 'k1' })
    .setIssuedAt()
    .setExpirationTime(o.exp ?? '1h')
    .sign(o.key ?? keys.k1!);
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** A client outside the mesh calling the ingress gateway. */
async function viaGateway(path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const r = await request(`http://${ip.ingress}:${gatewayPort}${path}`, { headers: { host: 'httpbin.example.com', ...headers } });
  const text = await r.body.text();
  let echo: Reply['echo'];
  if (r.headers['x-echo-name']) echo = JSON.parse(text) as Reply['echo'];
  return { status: r.statusCode, headers: r.headers, text, echo, ms: 0 };
}

/** Polls until `ok` holds for the reply (keys reach proxies a push after pilot fetched them). */
async function until(what: string, call: () => Promise<Reply>, ok: (r: Reply) => boolean, ms = 20_000): Promise<{ reply: Reply; elapsed: number }> {
  const t0 = performance.now();
  let last: Reply | undefined;
  while (performance.now() - t0 < ms) {
    last = await call();
    if (ok(last)) return { reply: last, elapsed: performance.now() - t0 };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms; last answer ${last?.status} ${last?.text.slice(0, 200)}`);
}

/** All of them, or (one failed) the error once those that started are kept in `cleanup` for afterAll to stop. */
async function settled<T>(starting: Promise<T>[], cleanup: T[]): Promise<T[]> {
  const results = await Promise.allSettled(starting);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<T>).value);
  for (const r of results) if (r.status === 'fulfilled') cleanup.push(r.value);
  throw failed.reason;
}

function workloadEntry(name: string, app: string, version: string, address: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec:
  address: ${address}
  labels: {app: ${app}, version: ${version}}
  ports: {http: 9080}
`;
}

function doc(kind: string, name: string, spec: string, apiVersion = 'security.istio.io/v1'): string {
  return `apiVersion: ${apiVersion}
kind: ${kind}
metadata: {name: ${name}, namespace: default}
spec:
${spec.replace(/^/gm, '  ')}
`;
}

beforeAll(async () => {
  const [k1, k2, k3, impostor] = await Promise.all([generateKeyPair('RS256'), generateKeyPair('RS256'), generateKeyPair('RS256'), generateKeyPair('RS256')]);
  keys.k1 = k1.privateKey;
  keys.k2 = k2.privateKey;
  keys.k3 = k3.privateKey;
  keys.impostor = impostor.privateKey;
  served = { keys: [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  rotated = { keys: [{ ...(await exportJWK(k2.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' }] };
  const inline = { keys: [{ ...(await exportJWK(k3.publicKey)), kid: 'k3', alg: 'RS256' }] };
  // The issuer's key server: what it serves is `served`, swapped by the rotation test.
  jwksServer = createServer((req, res) => {
    jwksHits++;
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;

  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-jwt-'));
  const configDir = joinPath(dir, 'config');
  await mkdir(configDir);
  const started = await settled([startBackend('httpbin', 'v1', ip.httpbinV1), startBackend('httpbin', 'v2', ip.httpbinV2), startBackend('secure', 'v1', ip.secure)], backends);
  backends.push(...started);
  gatewayPort = await freePort(ip.ingress);
  const jwtRule = (extra = '') => `- issuer: ${issuer}\n  jwksUri: ${jwksUri}${extra}`;
  const yaml = join(
    serviceEntry('httpbin', 'httpbin'),
    serviceEntry('secure', 'secure'),
    workloadEntry('httpbin-v1', 'httpbin', 'v1', ip.httpbinV1),
    workloadEntry('httpbin-v2', 'httpbin', 'v2', ip.httpbinV2),
    workloadEntry('secure', 'secure', 'v1', ip.secure),
    subsets('httpbin', ['v1', 'v2']),
    // Istio's authn-policy task: a RequestAuthentication on httpbin (jwksUri, the payload handed to
    // the app), and a second one (inline keys, its own header and query parameter): both apply.
    doc('RequestAuthentication', 'jwt-example', `selector: {matchLabels: {app: httpbin}}\njwtRules:\n${jwtRule('\n  outputPayloadToHeader: x-jwt-payload')}`),
    doc(
      'RequestAuthentication',
      'jwt-inline',
      `selector: {matchLabels: {app: httpbin}}\njwtRules:\n- issuer: ${issuer2}\n  jwks: '${JSON.stringify(inline)}'\n  audiences: [httpbin]\n  fromHeaders: [{name: x-jwt-assertion}]\n  fromParams: [token]\n  forwardOriginalToken: true`,
    ),
    // secure: a principal required for /headers (require-jwt), group1 required for /group1 ("Authorization with JWT").
    doc('RequestAuthentication', 'secure-jwt', `selector: {matchLabels: {app: secure}}\njwtRules:\n${jwtRule()}`),
    doc(
      'AuthorizationPolicy',
      'require-jwt',
      `selector: {matchLabels: {app: secure}}\naction: ALLOW\nrules:\n- from:\n  - source: {requestPrincipals: ["${issuer}/*"]}\n  to:\n  - operation: {paths: [/headers]}\n- to:\n  - operation: {paths: [/group1]}\n  when:\n  - key: request.auth.claims[groups]\n    values: [group1]\n- to:\n  - operation: {paths: [/write]}\n  when:\n  - key: request.auth.claims[scope]\n    values: [write]`,
    ),
    // The ingress gateway: JWT required (Istio's DENY notRequestPrincipals), the `group` claim copied
    // to x-jwt-group, and admins routed to httpbin v2.
    doc('RequestAuthentication', 'ingress-jwt', `selector: {matchLabels: {istio: ingressgateway}}\njwtRules:\n${jwtRule('\n  outputClaimToHeaders: [{header: x-jwt-group, claim: group}]')}`),
    doc('AuthorizationPolicy', 'frontend-ingress', `selector: {matchLabels: {istio: ingressgateway}}\naction: DENY\nrules:\n- from:\n  - source: {notRequestPrincipals: ["*"]}`),
    doc('Gateway', 'gw', `selector: {istio: ingressgateway}\nservers:\n- port: {number: ${gatewayPort}, name: http, protocol: HTTP}\n  hosts: [httpbin.example.com]`, 'networking.istio.io/v1'),
    doc(
      'VirtualService',
      'httpbin-gw',
      `hosts: [httpbin.example.com]\ngateways: [gw]\nhttp:\n- match:\n  - uri: {prefix: /claims}\n    headers: {"@request.auth.claims.groups": {exact: group1}}\n  route:\n  - destination: {host: httpbin, port: {number: 9080}, subset: v2}\n- match:\n  - headers: {x-jwt-group: {exact: admins}}\n  route:\n  - destination: {host: httpbin, port: {number: 9080}, subset: v2}\n- route:\n  - destination: {host: httpbin, port: {number: 9080}, subset: v1}`,
      'networking.istio.io/v1',
    ),
  );
  await writeConfig(configDir, 'mesh.yaml', yaml);
  weftd = await startWeftd(configDir, 0, { extra: ['--jwks-refresh-interval', '1s'] });
  const sidecar = (name: string, version: string, address: string, appPort: number) =>
    startProxy({ xdsPort: weftd.xdsPort, ip: address, pod: `${name}-${version}-1`, labels: `app=${name},version=${version}`, extra: ['--app-address', address, '--app-ports', `9080=${appPort}`] });
  const [b1, b2, s] = started as [Backend, Backend, Backend];
  proxies.push(
    ...(await settled([
      startProxy({ xdsPort: weftd.xdsPort, ip: ip.client, pod: 'sleep-v1-1', labels: 'app=sleep,version=v1' }),
      sidecar('httpbin', 'v1', ip.httpbinV1, b1.port),
      sidecar('httpbin', 'v2', ip.httpbinV2, b2.port),
      sidecar('secure', 'v1', ip.secure, s.port),
      startProxy({ xdsPort: weftd.xdsPort, ip: ip.ingress, pod: 'istio-ingressgateway-1', labels: 'istio=ingressgateway', ingress: true }),
    ], proxies)),
  );
  app = new App(ip.client);
  // The keys arrive a push after pilot's first fetch: wait for a valid token to pass everywhere.
  const t = await token({ sub: 'alice', group: 'users' });
  await until('a valid token passing the sidecar', () => app.get('httpbin:9080', '/headers', bearer(t)), (r) => r.status === 200);
  await until('a valid token passing secure', () => app.get('secure:9080', '/headers', bearer(t)), (r) => r.status === 200);
  await until('a valid token passing the gateway', () => viaGateway('/headers', bearer(t)), (r) => r.status === 200);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await Promise.all(proxies.map((p) => p.proc.stop()));
  await Promise.all(backends.map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (jwksServer) {
    jwksServer.closeAllConnections();
    await new Promise((r) => jwksServer.close(r));
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('RequestAuthentication between sidecars (Istio: end-user authentication)', () => {
  it('a valid token passes; the app gets the payload header and no Authorization header (forwardOriginalToken false)', async () => {
    const r = await app.get('httpbin:9080', '/headers', bearer(await token({ sub: 'alice' })));
    expect(r.status).toBe(200);
    expect(r.echo?.name).toBe('httpbin');
    expect(r.echo?.headers.authorization).toBeUndefined();
    const payload = JSON.parse(Buffer.from(String(r.echo?.headers['x-jwt-payload']), 'base64url').toString()) as JWTPayload;
    expect(payload).toMatchObject({ iss: issuer, sub: 'alice' });
  });

  it('no token: allowed (no principal), and a forged payload header is removed', async () => {
    const r = await app.get('httpbin:9080', '/headers', { 'x-jwt-payload': Buffer.from('{"sub":"root"}').toString('base64url') });
    expect(r.status).toBe(200);
    expect(r.echo?.headers['x-jwt-payload']).toBeUndefined();
  });

  it("an invalid token gets 401 with Envoy's reason: expired, wrongly signed, unknown key, unknown issuer, malformed", async () => {
    const cases: [string, string][] = [
      [await token({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 3600 }), 'Jwt is expired'],
      [await token({ sub: 'alice' }, { key: keys.impostor }), 'Jwt verification fails'],
      [await token({ sub: 'alice' }, { key: keys.impostor, kid: 'nope' }), "Jwks doesn't have key to match kid or alg from Jwt"],
      [await token({ sub: 'alice' }, { iss: 'https://evil.example' }), 'Jwt issuer is not configured'],
      ['abc.def', 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
    ];
    for (const [t, body] of cases) {
      const r = await app.get('httpbin:9080', '/headers', bearer(t));
      expect({ status: r.status, text: r.text }, body).toEqual({ status: 401, text: body });
      expect(r.headers['www-authenticate']).toBe('Bearer realm="http://httpbin:9080/headers", error="invalid_token"');
      expect(r.echo).toBeUndefined();
    }
  });

  it('a second RequestAuthentication on the same workload combines: its issuer, inline keys, own header and query parameter, audiences', async () => {
    const t = await token({ sub: 'bob', aud: 'httpbin' }, { iss: issuer2, key: keys.k3, kid: 'k3' });
    const byHeader = await app.get('httpbin:9080', '/headers', { 'x-jwt-assertion': t });
    expect(byHeader.status).toBe(200);
    // forwardOriginalToken: true keeps it for the app.
    expect(byHeader.echo?.headers['x-jwt-assertion']).toBe(t);
    expect((await app.get('httpbin:9080', `/headers?token=${t}`)).status).toBe(200);
    const wrongAud = await app.get('httpbin:9080', '/headers', { 'x-jwt-assertion': await token({ sub: 'bob', aud: 'other' }, { iss: issuer2, key: keys.k3, kid: 'k3' }) });
    expect({ status: wrongAud.status, text: wrongAud.text }).toEqual({ status: 403, text: 'Audiences in Jwt are not allowed' });
    const forged = await app.get('httpbin:9080', '/headers', { 'x-jwt-assertion': await token({ sub: 'bob', aud: 'httpbin' }, { iss: issuer2, key: keys.impostor, kid: 'k3' }) });
    expect({ status: forged.status, text: forged.text }).toEqual({ status: 401, text: 'Jwt verification fails' });
  });

  it('requestPrincipals (require-jwt): no token gets 403 from RBAC, a valid token 200, an invalid one 401', async () => {
    const none = await app.get('secure:9080', '/headers');
    expect({ status: none.status, text: none.text }).toEqual({ status: 403, text: 'RBAC: access denied' });
    expect((await app.get('secure:9080', '/headers', bearer(await token({ sub: 'alice' })))).status).toBe(200);
    const expired = await app.get('secure:9080', '/headers', bearer(await token({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 3600 })));
    expect({ status: expired.status, text: expired.text }).toEqual({ status: 401, text: 'Jwt is expired' });
  });

  it('request.auth.claims[groups] (Authorization with JWT): group1 passes, other groups and no token get 403', async () => {
    expect((await app.get('secure:9080', '/group1', bearer(await token({ sub: 'alice', groups: ['group1', 'group2'] })))).status).toBe(200);
    const other = await app.get('secure:9080', '/group1', bearer(await token({ sub: 'bob', groups: ['group2'] })));
    expect({ status: other.status, text: other.text }).toEqual({ status: 403, text: 'RBAC: access denied' });
    expect((await app.get('secure:9080', '/group1')).status).toBe(403);
  });

  it('request.auth.claims[scope] matches one word of a space-delimited scope claim', async () => {
    expect((await app.get('secure:9080', '/write', bearer(await token({ sub: 'alice', scope: 'read write' })))).status).toBe(200);
    expect((await app.get('secure:9080', '/write', bearer(await token({ sub: 'alice', scope: 'read' })))).status).toBe(403);
  });
});

describe('JWT at the ingress gateway', () => {
  it('no token gets 403 (DENY notRequestPrincipals), an expired or wrongly signed one 401, a valid one 200', async () => {
    const none = await viaGateway('/headers');
    expect({ status: none.status, text: none.text }).toEqual({ status: 403, text: 'RBAC: access denied' });
    const expired = await viaGateway('/headers', bearer(await token({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 3600 })));
    expect({ status: expired.status, text: expired.text }).toEqual({ status: 401, text: 'Jwt is expired' });
    const forged = await viaGateway('/headers', bearer(await token({ sub: 'alice' }, { key: keys.impostor })));
    expect({ status: forged.status, text: forged.text }).toEqual({ status: 401, text: 'Jwt verification fails' });
    const ok = await viaGateway('/headers', bearer(await token({ sub: 'alice', group: 'users' })));
    expect(ok.status).toBe(200);
    // The gateway removed the token (forwardOriginalToken false), so httpbin's sidecar saw none.
    expect(ok.echo?.headers.authorization).toBeUndefined();
  });

  it("routes on a claim: outputClaimToHeaders' x-jwt-group sends admins to v2, others to v1; a client cannot set the header itself", async () => {
    const admin = await viaGateway('/headers', bearer(await token({ sub: 'root', group: 'admins' })));
    expect(admin.status).toBe(200);
    expect(admin.echo?.version).toBe('v2');
    expect(admin.echo?.headers['x-jwt-group']).toBe('admins');
    for (let i = 0; i < 5; i++) {
      const user = await viaGateway('/headers', { ...bearer(await token({ sub: 'alice', group: 'users' })), 'x-jwt-group': 'admins' });
      expect(user.status).toBe(200);
      expect(user.echo?.version).toBe('v1');
      expect(user.echo?.headers['x-jwt-group']).toBe('users');
    }
  });
});

describe('JWT claim based routing at the ingress gateway (Istio: @request.auth.claims in a VirtualService)', () => {
  it('routes on the verified groups claim: group1 to v2, others to v1; no token is denied before routing', async () => {
    const one = await viaGateway('/claims/headers', bearer(await token({ sub: 'alice', groups: ['group1', 'group2'] })));
    expect(one.status).toBe(200);
    expect(one.echo?.version).toBe('v2');
    for (let i = 0; i < 5; i++) {
      const two = await viaGateway('/claims/headers', bearer(await token({ sub: 'bob', groups: ['group2'] })));
      expect(two.status).toBe(200);
      expect(two.echo?.version).toBe('v1');
    }
    expect((await viaGateway('/claims/headers')).status).toBe(403);
  });
});

describe('JWKS rotation', () => {
  it('the issuer rotates its key: new tokens pass and old ones fail at the gateway and the sidecars, without restarting anything', async () => {
    const hitsBefore = jwksHits;
    const oldToken = await token({ sub: 'alice', group: 'users' });
    const newToken = await token({ sub: 'alice', group: 'users' }, { key: keys.k2, kid: 'k2' });
    expect((await viaGateway('/headers', bearer(newToken))).status).toBe(401);
    const pids = [weftd.proc.child.pid, ...proxies.map((p) => p.proc.child.pid)];
    served = rotated;
    const gw = await until('the rotated key at the gateway', () => viaGateway('/headers', bearer(newToken)), (r) => r.status === 200).catch((e) => {
      console.log(weftd.proc.lines.filter((l) => l.scope === 'jwks' || String(l.msg).includes('push')).slice(-30).map((l) => JSON.stringify(l)).join('\n'));
      throw e;
    });
    const sc = await until('the rotated key at secure', () => app.get('secure:9080', '/headers', bearer(newToken)), (r) => r.status === 200);
    console.log(`JWKS rotation picked up: gateway after ${Math.round(gw.elapsed)} ms, secure's sidecar ${Math.round(gw.elapsed + sc.elapsed)} ms (refresh interval 1 s); key server fetched ${jwksHits - hitsBefore} times meanwhile`);
    const old = await viaGateway('/headers', bearer(oldToken));
    expect({ status: old.status, text: old.text }).toEqual({ status: 401, text: "Jwks doesn't have key to match kid or alg from Jwt" });
    expect((await app.get('httpbin:9080', '/headers', bearer(oldToken))).status).toBe(401);
    expect([weftd.proc.child.pid, ...proxies.map((p) => p.proc.child.pid)]).toEqual(pids);
    expect(proxies.every((p) => p.proc.child.exitCode === null)).toBe(true);
  });
});
