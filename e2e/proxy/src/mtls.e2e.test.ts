// Mutual TLS between sidecars, as real processes: weftd runs the CA (its root kept in a directory),
// each weft-proxy gets its workload certificate from it with a bootstrap token, clients use mTLS to
// sidecars without any DestinationRule (auto mTLS), and each workload's inbound port follows its
// PeerAuthentication. Checked from outside with openssl and curl, as a user would.
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { promisify } from 'node:util';
import { CertificateAuthority, issueWorkloadSecret } from '@weft/citadel';
import { needs } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry } from './config.ts';
import { App, type Backend, type ProxyProcess, startBackend, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const run = promisify(execFile);

// curl and openssl are the outside clients: a test that runs one skips without it, saying how to install it.
const noCurl = needs({ tools: ['curl'] }) !== undefined;
const noOpenssl = needs({ tools: ['openssl'] }) !== undefined;
const ip = {
  client: '127.10.6.1',
  strict: '127.10.6.11',
  permissive: '127.10.6.21',
  portLevel: '127.10.6.31',
};
const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;
const certTtl = '6s';

let dir: string;
let caDir: string;
let weftd: Weftd;
let ca: CertificateAuthority;
const backends: Backend[] = [];
const proxies: ProxyProcess[] = [];
let client: ProxyProcess;
let app: App;

function workloadEntry(name: string, app: string, address: string, sa: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec:
  address: ${address}
  serviceAccount: ${sa}
  labels: {app: ${app}, version: v1}
  ports: {http: 9080}
`;
}

function peerAuthentication(name: string, app: string, body: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: default}
spec:
  selector: {matchLabels: {app: ${app}}}
${body}`;
}

function destinationRule(host: string, trafficPolicy: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host}, namespace: default}
spec:
  host: ${host}
  trafficPolicy:
${trafficPolicy.replace(/^/gm, '    ')}
`;
}

/** A sidecar with a mesh identity: its token minted with the CA's key, the root from weftd's CA directory. */
async function meshProxy(o: { ip: string; pod: string; app: string; sa: string; appPort?: number; ttl?: string }): Promise<ProxyProcess> {
  const tokenFile = joinPath(dir, `${o.sa}.token`);
  await writeFile(tokenFile, ca.issueBootstrapToken('default', o.sa));
  const extra = [
    '--service-account',
    o.sa,
    '--ca-address',
    `127.0.0.1:${weftd.caPort}`,
    '--ca-root-cert',
    joinPath(caDir, 'root-cert.pem'),
    '--ca-token-file',
    tokenFile,
    ...(o.ttl ? ['--secret-ttl', o.ttl] : []),
    ...(o.appPort ? ['--app-address', o.ip, '--app-ports', `9080=${o.appPort}`] : []),
  ];
  return startProxy({ xdsPort: weftd.xdsPort, ip: o.ip, pod: o.pod, labels: `app=${o.app},version=v1`, extra });
}

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('curl', ['-sS', '--max-time', '5', ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** openssl s_client with `input` on stdin; its whole output (stdout and stderr) and exit status. */
async function sClient(address: string, args: string[], input: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', address, '-ign_eof', ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: `${stdout}\n${stderr}` });
    });
    child.stdin?.end(input);
  });
}

/** The server certificate s_client printed. */
function serverCertificate(out: string): X509Certificate | undefined {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
  return pem ? new X509Certificate(pem) : undefined;
}

function xfccOf(r: { echo: { headers: Record<string, string> } | undefined }): string | undefined {
  return r.echo?.headers['x-forwarded-client-cert'];
}

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-mtls-'));
  const configDir = joinPath(dir, 'config');
  caDir = joinPath(dir, 'ca');
  await mkdir(configDir);
  await mkdir(caDir);
  const [strictApp, permissiveApp, portLevelApp] = await Promise.all([
    startBackend('strict', 'v1', ip.strict),
    startBackend('permissive', 'v1', ip.permissive),
    startBackend('portlevel', 'v1', ip.portLevel),
  ]);
  backends.push(strictApp, permissiveApp, portLevelApp);
  const yaml = join(
    serviceEntry('strict', 'strict'),
    serviceEntry('strict-wrongsan', 'strict'),
    serviceEntry('permissive', 'permissive'),
    serviceEntry('permissive-fresh', 'permissive'),
    serviceEntry('portlevel', 'portlevel'),
    workloadEntry('strict-v1', 'strict', ip.strict, 'strict-sa'),
    workloadEntry('permissive-v1', 'permissive', ip.permissive, 'permissive-sa'),
    workloadEntry('portlevel-v1', 'portlevel', ip.portLevel, 'portlevel-sa'),
    peerAuthentication('strict', 'strict', '  mtls: {mode: STRICT}\n'),
    peerAuthentication('permissive', 'permissive', '  mtls: {mode: PERMISSIVE}\n'),
    peerAuthentication('portlevel', 'portlevel', '  mtls: {mode: STRICT}\n  portLevelMtls:\n    9080: {mode: DISABLE}\n'),
    // The client expects an identity the strict workload does not have.
    destinationRule('strict-wrongsan', `tls:\n  mode: ISTIO_MUTUAL\n  subjectAltNames: [${spiffe('nobody')}]`),
    // One request per upstream connection: every request is a new mTLS handshake.
    destinationRule('permissive-fresh', 'connectionPool:\n  http: {maxRequestsPerConnection: 1}'),
  );
  await writeConfig(configDir, 'mesh.yaml', yaml);
  weftd = await startWeftd(configDir, 0, { ca: { caDir } });
  ca = await CertificateAuthority.open(caDir);
  const started = await Promise.all([
    meshProxy({ ip: ip.client, pod: 'sleep-1', app: 'sleep', sa: 'sleep', ttl: certTtl }),
    meshProxy({ ip: ip.strict, pod: 'strict-1', app: 'strict', sa: 'strict-sa', appPort: strictApp.port }),
    meshProxy({ ip: ip.permissive, pod: 'permissive-1', app: 'permissive', sa: 'permissive-sa', appPort: permissiveApp.port, ttl: certTtl }),
    meshProxy({ ip: ip.portLevel, pod: 'portlevel-1', app: 'portlevel', sa: 'portlevel-sa', appPort: portLevelApp.port }),
  ]);
  proxies.push(...started);
  client = started[0];
  app = new App(ip.client);
}, 90_000);

afterAll(async () => {
  await app?.close();
  await Promise.all(proxies.map((p) => p.proc.stop()));
  await Promise.all(backends.map((b) => b.proc.stop()));
  await weftd?.proc.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('STRICT', () => {
  it.skipIf(noOpenssl)('requests a client certificate and refuses a TLS client without one', async () => {
    const r = await sClient(`${ip.strict}:9080`, [], 'GET / HTTP/1.1\r\nHost: strict\r\n\r\n');
    // The server asks for a certificate from the mesh root...
    expect(r.out).toMatch(/Acceptable client certificate CA names/);
    expect(r.out).toMatch(/O ?= ?cluster\.local/);
    // ...presents its SPIFFE identity...
    expect(serverCertificate(r.out)?.subjectAltName).toBe(`URI:${spiffe('strict-sa')}`);
    // ...and, without one, ends the handshake with an alert instead of answering.
    expect(r.out).toMatch(/alert certificate required|alert handshake failure|peer did not return a certificate/);
    expect(r.out).not.toContain('HTTP/1.1 200');
  });

  it.skipIf(noCurl)('refuses plaintext on the workload port', async () => {
    const r = await curl([`http://${ip.strict}:9080/`]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
  });

  it('serves a client sidecar over mTLS; the app sees the client identity in x-forwarded-client-cert', async () => {
    const r = await app.get('strict:9080', '/hello', { 'x-forwarded-client-cert': 'By=spiffe://evil;URI=spiffe://cluster.local/ns/default/sa/admin' });
    expect(r.status).toBe(200);
    expect(r.echo?.name).toBe('strict');
    const xfcc = xfccOf(r);
    // The client's spoofed element is not there: the client side sanitizes, the server side sets it.
    expect(xfcc).toMatch(new RegExp(`^By=${spiffe('strict-sa')};Hash=[0-9a-f]{64};Subject="";URI=${spiffe('sleep')}$`));
  });

  it.skipIf(noCurl)('refuses a client certificate from another root, and accepts one from the mesh root', async () => {
    const other = new CertificateAuthority(await CertificateAuthority.generateRoot({ trustDomain: 'cluster.local' }));
    const forged = await issueWorkloadSecret(other, { namespace: 'default', serviceAccount: 'sleep' });
    const genuine = await issueWorkloadSecret(ca, { namespace: 'default', serviceAccount: 'curl' });
    const files = async (name: string, s: { certChainPem: string; privateKeyPem: string }) => {
      await writeFile(joinPath(dir, `${name}.crt`), s.certChainPem);
      await writeFile(joinPath(dir, `${name}.key`), s.privateKeyPem);
      return ['--cert', joinPath(dir, `${name}.crt`), '--key', joinPath(dir, `${name}.key`)];
    };
    // -k: the server's certificate names no host (only its SPIFFE ID); the client certificate is what is tested.
    const refused = await curl(['-k', ...(await files('forged', forged)), `https://${ip.strict}:9080/`]);
    expect(refused.code).not.toBe(0);
    // The connection closes before any answer (TLS 1.3: right after the handshake, where the server checks the chain).
    expect(refused.stdout).toBe('');
    const accepted = await curl(['-k', '--http2', ...(await files('genuine', genuine)), `https://${ip.strict}:9080/direct`]);
    expect(accepted.code).toBe(0);
    const echo = JSON.parse(accepted.stdout) as { name: string; headers: Record<string, string> };
    expect(echo.name).toBe('strict');
    const hash = createHash('sha256').update(new X509Certificate(genuine.certChainPem).raw).digest('hex');
    expect(echo.headers['x-forwarded-client-cert']).toBe(`By=${spiffe('strict-sa')};Hash=${hash};Subject="";URI=${spiffe('curl')}`);
    // curl negotiated HTTP/2 over TLS above; HTTP/1.1 works the same.
    const h1 = await curl(['-k', '--http1.1', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', ...(await files('genuine', genuine)), `https://${ip.strict}:9080/direct`]);
    expect(h1.stdout).toBe('1.1 200');
  });

  it('fails with a TLS error when the server is not the identity the client expects', async () => {
    const stat = async () => {
      const t = (await client.admin('/stats?filter=strict-wrongsan')).text;
      return Number(/cluster\.outbound\|9080\|\|strict-wrongsan\.default\.svc\.cluster\.local\.ssl\.fail_verify_san: (\d+)/.exec(t)?.[1] ?? -1);
    };
    const before = await stat();
    expect(before).toBeGreaterThanOrEqual(0);
    const r = await app.get('strict-wrongsan:9080', '/');
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/^upstream connect error or disconnect\/reset before headers\. .*connection failure/);
    // Every attempt failed the handshake on the server's identity (Envoy's ssl.fail_verify_san).
    expect(await stat()).toBeGreaterThan(before);
    // The same workload through a cluster that expects its real identity is fine.
    expect((await app.get('strict:9080', '/')).status).toBe(200);
  });
});

describe('PERMISSIVE', () => {
  it.skipIf(noCurl)('takes plaintext and mTLS on the same port', async () => {
    const plain = await curl(['-H', 'x-forwarded-client-cert: URI=spiffe://cluster.local/ns/default/sa/admin', `http://${ip.permissive}:9080/plain`]);
    expect(plain.code).toBe(0);
    const echo = JSON.parse(plain.stdout) as { name: string; headers: Record<string, string> };
    expect(echo.name).toBe('permissive');
    // A plaintext client cannot claim an identity.
    expect(echo.headers['x-forwarded-client-cert']).toBeUndefined();
    const mtls = await app.get('permissive:9080', '/mtls');
    expect(mtls.status).toBe(200);
    expect(xfccOf(mtls)).toContain(`URI=${spiffe('sleep')}`);
  });
});

/** istio_requests_total series of a proxy's 15090 whose labels include all of `labels`: their summed value. */
async function requestsTotal(address: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://${address}:15090/stats/prometheus`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('istio_requests_total{')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('connection_security_policy and principals in Istio metrics', () => {
  it.skipIf(noCurl)('mutual_tls for the sidecar call, none for the plaintext one, both principals on either side of the mTLS hop', async () => {
    const mtlsBefore = await requestsTotal(ip.permissive, { reporter: 'destination', connection_security_policy: 'mutual_tls', source_principal: spiffe('sleep') });
    const plainBefore = await requestsTotal(ip.permissive, { reporter: 'destination', connection_security_policy: 'none', source_principal: 'unknown' });
    const sourceBefore = await requestsTotal(ip.client, {
      reporter: 'source',
      source_principal: spiffe('sleep'),
      destination_principal: spiffe('permissive-sa'),
      connection_security_policy: 'unknown',
    });
    for (let i = 0; i < 3; i++) expect((await app.get('permissive:9080', '/metrics-mtls')).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await curl([`http://${ip.permissive}:9080/metrics-plain`])).code).toBe(0);
    await expect
      .poll(async () => ({
        mtls: (await requestsTotal(ip.permissive, { reporter: 'destination', connection_security_policy: 'mutual_tls', source_principal: spiffe('sleep') })) - mtlsBefore,
        plain: (await requestsTotal(ip.permissive, { reporter: 'destination', connection_security_policy: 'none', source_principal: 'unknown' })) - plainBefore,
        source:
          (await requestsTotal(ip.client, {
            reporter: 'source',
            source_principal: spiffe('sleep'),
            destination_principal: spiffe('permissive-sa'),
            connection_security_policy: 'unknown',
          })) - sourceBefore,
      }))
      .toEqual({ mtls: 3, plain: 2, source: 3 });
  });
});

describe('port-level DISABLE under a STRICT workload policy', () => {
  it.skipIf(noCurl || noOpenssl)('serves plaintext on that port, and the client sidecar talks plaintext to it', async () => {
    const plain = await curl([`http://${ip.portLevel}:9080/`]);
    expect(plain.code).toBe(0);
    expect((JSON.parse(plain.stdout) as { name: string }).name).toBe('portlevel');
    const tls = await sClient(`${ip.portLevel}:9080`, [], '');
    expect(tls.out).not.toMatch(/Acceptable client certificate CA names/);
    const r = await app.get('portlevel:9080', '/');
    expect(r.status).toBe(200);
    expect(xfccOf(r)).toBeUndefined();
  });
});

describe('certificate rotation', () => {
  it('loses no request of a steady stream while both sides rotate; new connections use the new certificate', async () => {
    const rotationsBefore = client.proc.lines.filter((l) => l.msg === 'workload certificate ready').length;
    const deadline = Date.now() + 14_000;
    const failures: string[] = [];
    const fresh: { at: number; hash: string }[] = [];
    const kept: { at: number; hash: string }[] = [];
    let sent = 0;
    const loop = async (host: string, out: { at: number; hash: string }[]) => {
      while (Date.now() < deadline) {
        sent++;
        try {
          const r = await app.get(`${host}:9080`, '/stream');
          const hash = /Hash=([0-9a-f]+)/.exec(xfccOf(r) ?? '')?.[1];
          if (r.status !== 200 || !hash) failures.push(`${host}: ${r.status} ${r.text.slice(0, 200)}`);
          else out.push({ at: Date.now(), hash });
        } catch (err) {
          failures.push(`${host}: ${(err as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await Promise.all([loop('permissive-fresh', fresh), loop('permissive-fresh', fresh), loop('permissive', kept)]);
    const rotations = client.proc.lines.filter((l) => l.msg === 'workload certificate ready').length - rotationsBefore;
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(100);
    // The client's certificate (6 s) was replaced at least twice during the 14 s...
    expect(rotations).toBeGreaterThanOrEqual(2);
    // ...new connections presented each new certificate...
    expect(new Set(fresh.map((f) => f.hash)).size).toBeGreaterThanOrEqual(3);
    // ...and the long-lived connection kept the certificate it was opened with.
    expect(kept.length).toBeGreaterThan(50);
    expect(kept.at(-1)!.hash).toBe(kept[0]!.hash);
  }, 40_000);
});

describe('identity', () => {
  it.skipIf(noOpenssl)('each proxy holds a certificate for its own SPIFFE ID from the mesh root', async () => {
    const root = await readFile(joinPath(caDir, 'root-cert.pem'), 'utf8');
    const r = await sClient(`${ip.strict}:9080`, [], '');
    const cert = serverCertificate(r.out);
    if (!cert) throw new Error(`s_client printed no server certificate:\n${r.out}`);
    expect(cert.subjectAltName).toBe(`URI:${spiffe('strict-sa')}`);
    expect(cert.verify(new X509Certificate(root).publicKey)).toBe(true);
    expect(cert.checkIssued(new X509Certificate(root))).toBe(true);
  });
});
