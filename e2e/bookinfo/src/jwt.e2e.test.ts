// Istio's JWT security tasks on BookInfo in local mode (the mesh `weftctl up` runs; config through
// weftctl apply): end-user authentication at the ingress gateway (RequestAuthentication with a
// jwksUri, then an AuthorizationPolicy requiring a principal), "Authorization with JWT" on
// productpage's sidecar (request.auth.claims[groups]), and a key rotation at the issuer picked up
// without restarting anything. The issuer is a real JWKS server on 127.0.0.1 with keys made by jose;
// weftd fetches it (PILOT_JWT_PUB_KEY_REFRESH_INTERVAL=1s here, as Istio's variable).
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalDriver } from './local-driver.ts';

const issuer = 'testing@secure.istio.io';
type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let k1: Key;
let k2: Key;
let impostor: Key;
let served: { keys: JWK[] };
let rotated: { keys: JWK[] };
let jwksServer: Server;
let jwksUri: string;
let dir: string;
let driver: Awaited<ReturnType<typeof startLocalDriver>>;
const previousRefresh = process.env.PILOT_JWT_PUB_KEY_REFRESH_INTERVAL;

function token(claims: JWTPayload, o: { key?: Key; kid?: string; exp?: number | string } = {}): Promise<string> {
  return new SignJWT({ iss: issuer, sub: 'alice', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: o.kid ?? 'k1' })
    .setIssuedAt()
    .setExpirationTime(o.exp ?? '1h')
    .sign(o.key ?? k1);
}

async function page(jwt?: string): Promise<{ status: number; text: string }> {
  const r = await fetch(driver.productpageUrl, { headers: jwt ? { authorization: `Bearer ${jwt}` } : {}, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, text: await r.text() };
}

async function until(what: string, get: () => Promise<{ status: number; text: string }>, status: number, ms = 20_000): Promise<number> {
  const t0 = Date.now();
  let last: { status: number; text: string } | undefined;
  while (Date.now() - t0 < ms) {
    last = await get();
    if (last.status === status) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${what}: not ${status} within ${ms} ms; last ${last?.status} ${last?.text.slice(0, 120)}`);
}

async function applyYaml(name: string, yaml: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, yaml);
  await driver.apply([file]);
  return file;
}

beforeAll(async () => {
  const [a, b, c] = await Promise.all([generateKeyPair('RS256'), generateKeyPair('RS256'), generateKeyPair('RS256')]);
  k1 = a.privateKey;
  k2 = b.privateKey;
  impostor = c.privateKey;
  served = { keys: [{ ...(await exportJWK(a.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  rotated = { keys: [{ ...(await exportJWK(b.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' }] };
  jwksServer = createServer((req, res) => {
    if (req.url !== '/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  dir = await mkdtemp(join(tmpdir(), 'weft-e2e-bookinfo-jwt-'));
  // weftd is started (and restarted by the supervisor) with this environment.
  process.env.PILOT_JWT_PUB_KEY_REFRESH_INTERVAL = '1s';
  driver = await startLocalDriver();
}, 200_000);

afterAll(async () => {
  await driver?.stop();
  if (previousRefresh === undefined) delete process.env.PILOT_JWT_PUB_KEY_REFRESH_INTERVAL;
  else process.env.PILOT_JWT_PUB_KEY_REFRESH_INTERVAL = previousRefresh;
  if (jwksServer) {
    jwksServer.closeAllConnections();
    await new Promise((r) => jwksServer.close(r));
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

const gatewayJwt = () => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ingress-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: ${issuer}
    jwksUri: ${jwksUri}
    forwardOriginalToken: true
`;

describe('JWT on BookInfo, local mode (Istio: end-user authentication at the ingress gateway)', () => {
  it('a RequestAuthentication alone: no token and a valid token load the page; expired or wrongly signed tokens get 401', async () => {
    await applyYaml('ingress-jwt.yaml', gatewayJwt());
    const valid = await token({});
    // The keys arrive a push after weftd's first fetch of the jwksUri.
    await until('a valid token through the gateway', () => page(valid), 200);
    expect((await page()).status).toBe(200);
    expect(await page(await token({}, { exp: Math.floor(Date.now() / 1000) - 3600 }))).toEqual({ status: 401, text: 'Jwt is expired' });
    expect(await page(await token({}, { key: impostor }))).toEqual({ status: 401, text: 'Jwt verification fails' });
  });

  it('with an AuthorizationPolicy requiring a principal at the gateway, no token gets 403 and a valid token 200', async () => {
    await applyYaml(
      'ingress-require-jwt.yaml',
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: frontend-ingress, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - from:
    - source: {notRequestPrincipals: ["*"]}
`,
    );
    expect(await page()).toEqual({ status: 403, text: 'RBAC: access denied' });
    expect((await page(await token({}))).status).toBe(200);
  });

  it("Authorization with JWT on productpage's sidecar: the groups claim decides (group1 200, group2 403)", async () => {
    await applyYaml(
      'productpage-jwt.yaml',
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: productpage-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  jwtRules:
  - issuer: ${issuer}
    jwksUri: ${jwksUri}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-group1, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - when:
    - key: request.auth.claims[groups]
      values: [group1]
`,
    );
    const group1 = await token({ groups: ['group1', 'group2'] });
    await until('group1 at productpage', () => page(group1), 200);
    expect(await page(await token({ groups: ['group2'] }))).toEqual({ status: 403, text: 'RBAC: access denied' });
  });

  it('the issuer rotates its key: the new key works and the old one is refused, nothing restarted', async () => {
    const pids = [driver.mesh.state.weftd?.pid, driver.mesh.state.ingress?.pid, ...driver.mesh.state.proxies.map((p) => p.pid)];
    const fresh = await token({ groups: ['group1'] }, { key: k2, kid: 'k2' });
    expect((await page(fresh)).status).toBe(401);
    served = rotated;
    const ms = await until('the rotated key', () => page(fresh), 200);
    console.log(`BookInfo: the rotated key passed the gateway and productpage's sidecar ${ms} ms after the issuer switched (refresh 1 s)`);
    expect(await page(await token({ groups: ['group1'] }))).toEqual({ status: 401, text: "Jwks doesn't have key to match kid or alg from Jwt" });
    expect([driver.mesh.state.weftd?.pid, driver.mesh.state.ingress?.pid, ...driver.mesh.state.proxies.map((p) => p.pid)]).toEqual(pids);
  });

  it('leaves nothing behind', async () => {
    await driver.stop();
    expect(await driver.leftovers()).toEqual([]);
  });
});
