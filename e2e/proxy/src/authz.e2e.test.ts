// AuthorizationPolicy end to end, as real processes: weftd translates the policies into RBAC
// filters, weft-proxy sidecars enforce them in front of echo backends. Requests go the way an
// application's would (through its sidecar's outbound port) or straight to a sidecar's inbound
// port from a chosen loopback address (for ipBlocks); the assertions are status codes and bodies.
// weftd runs the CA: sidecars started with a service account get their workload certificate from
// it, so principal and namespace rules see real mTLS peer identities.
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { CertificateAuthority } from '@weft/citadel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry } from './config.ts';
import { App, type Backend, freePort, type ProxyProcess, startBackend, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const ip = {
  client: '127.10.7.1',
  web: '127.10.7.11',
  audit: '127.10.7.21',
  db: '127.10.7.31',
  secure: '127.10.7.41',
  intruder: '127.10.7.2',
  ingress: '127.10.7.100',
  /** Clients outside the mesh, connecting straight to a sidecar's inbound port. */
  blocked: '127.10.7.200',
  trusted: '127.10.7.201',
};

let dir: string;
let weftd: Weftd;
const backends: Backend[] = [];
const proxies: ProxyProcess[] = [];
let web: ProxyProcess;
let audit: ProxyProcess;
let app: App;
let intruderApp: App;
let caDir: string;
let gatewayPort: number;
let ca: CertificateAuthority;

function workloadEntry(name: string, address: string, port: number, portName = 'http', serviceAccount = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec:
  address: ${address}
${serviceAccount ? `  serviceAccount: ${serviceAccount}\n` : ''}  labels: {app: ${name}, version: v1}
  ports: {${portName}: ${port}}
`;
}

/** Flags giving a sidecar a mesh identity: a bootstrap token minted with the CA's key, the root from weftd's CA directory. */
async function identity(sa: string): Promise<string[]> {
  const tokenFile = joinPath(dir, `${sa}.token`);
  await writeFile(tokenFile, ca.issueBootstrapToken('default', sa));
  return ['--service-account', sa, '--ca-address', `127.0.0.1:${weftd.caPort}`, '--ca-root-cert', joinPath(caDir, 'root-cert.pem'), '--ca-token-file', tokenFile];
}

function policy(name: string, app: string, body: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: default}
spec:
  selector: {matchLabels: {app: ${app}}}
${body.replace(/^/gm, '  ')}
`;
}

/** A client at `localAddress` talking straight to a sidecar's inbound port (node:http: undici ignores localAddress). */
function direct(
  localAddress: string,
  target: string,
  path: string,
  o: { method?: string; port?: number; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string }> {
  const port = o.port ?? 9080;
  return new Promise((resolve, reject) => {
    const headers = { host: `${target}:${port}`, ...o.headers };
    const req = httpRequest({ host: target, port, path, method: o.method ?? 'GET', localAddress, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a TCP connection from `localAddress`, sends a line and reads until the echo comes back or the connection closes. */
async function tcpExchange(localAddress: string): Promise<{ received: string; closedBy: 'peer' | 'us' }> {
  const socket = connect({ host: ip.db, port: 9000, localAddress });
  let received = '';
  socket.on('data', (d: Buffer) => {
    received += d.toString();
    if (received.includes('ping')) socket.end();
  });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('ping\n');
  const timer = setTimeout(() => socket.destroy(), 5000);
  await once(socket, 'close');
  clearTimeout(timer);
  return { received, closedBy: received.includes('ping') ? 'us' : 'peer' };
}

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-authz-'));
  const configDir = joinPath(dir, 'config');
  caDir = joinPath(dir, 'ca');
  await mkdir(configDir);
  await mkdir(caDir);
  const started = await Promise.all([
    startBackend('web', 'v1', ip.web),
    startBackend('audit', 'v1', ip.audit),
    startBackend('db', 'v1', ip.db, { tcp: true }),
    startBackend('secure', 'v1', ip.secure),
  ]);
  backends.push(...started);
  const [webApp, auditApp, dbApp, secureApp] = started as [Backend, Backend, Backend, Backend];
  gatewayPort = await freePort(ip.ingress);

  const yaml = join(
    serviceEntry('web', 'web'),
    serviceEntry('audit', 'audit'),
    serviceEntry('db', 'db', 9000, 'TCP'),
    serviceEntry('secure', 'secure'),
    workloadEntry('web', ip.web, 9080),
    workloadEntry('audit', ip.audit, 9080),
    workloadEntry('db', ip.db, 9000, 'tcp'),
    // secure has a sidecar with an identity: clients reach it over mTLS (auto mTLS).
    workloadEntry('secure', ip.secure, 9080, 'http', 'secure'),
    // web: GET on /api and below, and /canary only with `x-canary: yes`; never /api/admin; never from 127.10.7.200.
    policy('web-allow', 'web', 'action: ALLOW\nrules:\n- to:\n  - operation: {methods: [GET], paths: [/api, "/api/*"]}\n- to:\n  - operation: {paths: ["/canary*"]}\n  when:\n  - {key: "request.headers[x-canary]", values: ["yes"]}'),
    policy('web-deny-admin', 'web', 'action: DENY\nrules:\n- to:\n  - operation: {paths: ["/api/admin*"]}'),
    policy('web-deny-blocked', 'web', `action: DENY\nrules:\n- from:\n  - source: {ipBlocks: ["${ip.blocked}/32"]}`),
    // CUSTOM (ext_authz) is not supported: Weft fails closed on what its rules match.
    policy('web-ext-authz', 'web', 'action: CUSTOM\nprovider: {name: my-ext-authz}\nrules:\n- to:\n  - operation: {paths: ["/api/ext*"]}'),
    // audit: AUDIT only, which never blocks.
    policy('audit-all', 'audit', 'action: AUDIT\nrules:\n- {}'),
    // db (TCP): only connections from 127.10.7.201 to port 9000.
    policy('db-allow', 'db', `action: ALLOW\nrules:\n- from:\n  - source: {ipBlocks: ["${ip.trusted}"]}\n  to:\n  - operation: {ports: ["9000"]}`),
    // secure: /client only for the client's identity; /mesh for any identity of namespace default; nothing else.
    policy('secure-allow', 'secure', 'action: ALLOW\nrules:\n- from:\n  - source: {principals: [cluster.local/ns/default/sa/client]}\n  to:\n  - operation: {paths: ["/client*"]}\n- from:\n  - source: {namespaces: [default]}\n  to:\n  - operation: {paths: ["/mesh*"]}'),
    policy('secure-deny', 'secure', 'action: DENY\nrules:\n- from:\n  - source: {notPrincipals: ["*/sa/client"]}\n  to:\n  - operation: {paths: ["/mesh/private*"]}'),
    // The ingress gateway: web behind it; clients from 127.10.7.200 refused by their remote address.
    `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${gatewayPort}, name: http, protocol: HTTP}
    hosts: [web.example.com]`,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web-gw, namespace: default}
spec:
  hosts: [web.example.com]
  gateways: [gw]
  http:
  - route:
    - destination: {host: web, port: {number: 9080}}`,
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw-deny, namespace: default}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - from:
    - source: {remoteIpBlocks: ["${ip.blocked}"]}`,
  );
  await writeConfig(configDir, 'mesh.yaml', yaml);
  weftd = await startWeftd(configDir, 0, { ca: { caDir } });
  ca = await CertificateAuthority.open(caDir);
  const sidecar = async (name: string, address: string, port: number, appPort: number, sa?: string) =>
    startProxy({
      xdsPort: weftd.xdsPort,
      ip: address,
      pod: `${name}-v1-1`,
      labels: `app=${name},version=v1`,
      extra: ['--app-address', address, '--app-ports', `${port}=${appPort}`, ...(sa ? await identity(sa) : [])],
    });
  const [client, intruder, w, a, d, sec, gw] = await Promise.all([
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.client, pod: 'client-v1-1', labels: 'app=client,version=v1', extra: await identity('client') }),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.intruder, pod: 'intruder-v1-1', labels: 'app=intruder,version=v1', extra: await identity('intruder') }),
    sidecar('web', ip.web, 9080, webApp.port),
    sidecar('audit', ip.audit, 9080, auditApp.port),
    sidecar('db', ip.db, 9000, dbApp.port),
    sidecar('secure', ip.secure, 9080, secureApp.port, 'secure'),
    startProxy({ xdsPort: weftd.xdsPort, ip: ip.ingress, pod: 'istio-ingressgateway-1', labels: 'istio=ingressgateway', ingress: true }),
  ]);
  web = w;
  audit = a;
  proxies.push(client, intruder, w, a, d, sec, gw);
  app = new App(ip.client);
  intruderApp = new App(ip.intruder);
}, 90_000);

afterAll(async () => {
  await app?.close();
  await intruderApp?.close();
  await Promise.all(proxies.map((p) => p.proc.stop()));
  await Promise.all(backends.map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('AuthorizationPolicy on HTTP, through the sidecars', () => {
  it('ALLOW with methods and paths: GET /api passes, POST /api gets 403 "RBAC: access denied"', async () => {
    const ok = await app.get('web:9080', '/api');
    expect(ok.status).toBe(200);
    expect(ok.echo?.name).toBe('web');
    expect((await app.get('web:9080', '/api/books?page=2')).status).toBe(200);
    const post = await app.get('web:9080', '/api', {}, 'POST');
    expect(post.status).toBe(403);
    expect(post.text).toBe('RBAC: access denied');
    expect(post.headers['content-type']).toBe('text/plain');
    expect(post.echo).toBeUndefined();
  });

  it('denies what no ALLOW rule matches when ALLOW policies exist', async () => {
    const r = await app.get('web:9080', '/other');
    expect(r.status).toBe(403);
    expect(r.text).toBe('RBAC: access denied');
  });

  it('DENY wins over a matching ALLOW', async () => {
    const r = await app.get('web:9080', '/api/admin/users');
    expect(r.status).toBe(403);
    expect(r.text).toBe('RBAC: access denied');
    expect(r.echo).toBeUndefined();
  });

  it('a when condition on a request header', async () => {
    expect((await app.get('web:9080', '/canary', { 'x-canary': 'yes' })).status).toBe(200);
    const no = await app.get('web:9080', '/canary', { 'x-canary': 'no' });
    expect(no.status).toBe(403);
    expect((await app.get('web:9080', '/canary')).status).toBe(403);
  });

  it('AUDIT does not block', async () => {
    for (const [path, method] of [['/', 'GET'], ['/anything', 'POST'], ['/admin', 'DELETE']] as const) {
      const r = await app.get('audit:9080', path, {}, method);
      expect(r.status, `${method} ${path}`).toBe(200);
      expect(r.echo?.name).toBe('audit');
    }
    // The AUDIT filter is there (an RBAC filter with action LOG), not just absent.
    const dump = JSON.stringify(JSON.parse((await audit.admin('/config_dump')).text));
    expect(dump).toContain('"action":"LOG"');
    expect(dump).toContain('ns[default]-policy[audit-all]-rule[0]');
  });

  it('ipBlocks: a DENY for one client address, checked on the inbound connection', async () => {
    const blocked = await direct(ip.blocked, ip.web, '/api');
    expect(blocked).toEqual({ status: 403, text: 'RBAC: access denied' });
    const trusted = await direct(ip.trusted, ip.web, '/api');
    expect(trusted.status).toBe(200);
  });

  it('shows the generated RBAC in the sidecar config dump, in Istio\'s order (DENY before ALLOW, before the router)', async () => {
    const text = JSON.stringify(JSON.parse((await web.admin('/config_dump')).text));
    const deny = text.indexOf('ns[default]-policy[web-deny-admin]-rule[0]');
    const allow = text.indexOf('ns[default]-policy[web-allow]-rule[0]');
    expect(deny).toBeGreaterThan(0);
    expect(allow).toBeGreaterThan(deny);
    expect(text.indexOf('envoy.filters.http.router', allow)).toBeGreaterThan(allow);
  });
});

describe('CUSTOM (not supported: fails closed)', () => {
  it('denies what the CUSTOM rules match, leaves the rest to the other policies, and weftd warns naming the policy, file and line', async () => {
    const r = await app.get('web:9080', '/api/ext/check');
    expect(r.status).toBe(403);
    expect(r.text).toBe('RBAC: access denied');
    expect((await app.get('web:9080', '/api/books')).status).toBe(200);
    const warning = weftd.proc.lines.find((l) => l.msg === 'config warning' && String(l.resource).includes('web-ext-authz'));
    expect(warning).toMatchObject({ resource: 'AuthorizationPolicy default/web-ext-authz', path: 'spec.action' });
    expect(String(warning?.file)).toMatch(/mesh\.yaml$/);
    expect(warning?.line).toEqual(expect.any(Number));
    expect(String(warning?.problem)).toMatch(/^CUSTOM action is not supported by Weft/);
  });
});

describe('AuthorizationPolicy on a gateway', () => {
  it('remoteIpBlocks: the gateway denies by the client address it sees, not by a forged X-Forwarded-For', async () => {
    const via = (from: string, headers: Record<string, string> = {}) => direct(from, ip.ingress, '/api', { port: gatewayPort, headers: { host: 'web.example.com', ...headers } });
    expect(await via(ip.blocked)).toEqual({ status: 403, text: 'RBAC: access denied' });
    const ok = await via(ip.trusted, { 'x-forwarded-for': ip.blocked });
    expect(ok.status).toBe(200);
    expect((JSON.parse(ok.text) as { name: string }).name).toBe('web');
  });
});

describe('AuthorizationPolicy on TCP (envoy.filters.network.rbac)', () => {
  it('closes connections no ALLOW rule matches and carries the allowed ones', async () => {
    const allowed = await tcpExchange(ip.trusted);
    expect(allowed.received).toBe('db:\nping\n');
    const denied = await tcpExchange(ip.blocked);
    expect(denied.received).toBe('');
    expect(denied.closedBy).toBe('peer');
  });
});

describe('principals and namespaces (mTLS peer identities from the mesh CA)', () => {
  it("principals: only the client's identity reaches /client", async () => {
    const ok = await app.get('secure:9080', '/client/data');
    expect(ok.status).toBe(200);
    expect(ok.echo?.name).toBe('secure');
    // The hop was mTLS: the app behind the sidecar sees the client's identity.
    expect(ok.echo?.headers['x-forwarded-client-cert']).toContain('URI=spiffe://cluster.local/ns/default/sa/client');
    const other = await intruderApp.get('secure:9080', '/client/data');
    expect(other.status).toBe(403);
    expect(other.text).toBe('RBAC: access denied');
  });

  it('namespaces: any identity of namespace default reaches /mesh; a plaintext client has no identity and is denied', async () => {
    expect((await app.get('secure:9080', '/mesh/a')).status).toBe(200);
    expect((await intruderApp.get('secure:9080', '/mesh/a')).status).toBe(200);
    const plaintext = await direct(ip.trusted, ip.secure, '/mesh/a');
    expect(plaintext).toEqual({ status: 403, text: 'RBAC: access denied' });
  });

  it('notPrincipals with a * prefix in a DENY: everyone but the client is denied /mesh/private', async () => {
    expect((await app.get('secure:9080', '/mesh/private')).status).toBe(200);
    expect((await intruderApp.get('secure:9080', '/mesh/private')).status).toBe(403);
  });
});
