// weftd as a user runs it: a real process on free ports, a config directory, signals.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata } from '@grpc/grpc-js';
import { CertificateAuthority, createCsr, generateRsaKeyPair, requestCertificate, spiffeIdOf } from '@weft/citadel';
import { createAdsClient, type DiscoveryResponse__Output, decodeAny, TypeUrl } from '@weft/xds';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseFlags } from './main.ts';

const bin = fileURLToPath(new URL('../bin/weftd.js', import.meta.url));

interface LogLine {
  level: string;
  scope: string;
  msg: string;
  [k: string]: unknown;
}

class Daemon {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    this.child.stderr!.on('data', (buf: Buffer) => {
      pending += buf.toString();
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const p of parts) {
        if (!p.trim()) continue;
        let line: LogLine;
        try {
          line = JSON.parse(p) as LogLine;
        } catch {
          line = { level: 'raw', scope: '', msg: p };
        }
        this.lines.push(line);
        for (const w of [...this.#waiters]) {
          if (w.match(line)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  waitFor(match: (l: LogLine) => boolean, what: string, ms = 20_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`weftd ${why} before logging ${what}; it logged:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`));
      const timer = setTimeout(() => fail(`took more than ${ms} ms`), ms);
      void this.exited.then((code) => {
        clearTimeout(timer);
        fail(`exited with ${code}`);
      });
      this.#waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }
}

const vs = (weight: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: ${weight}
    - destination: {host: reviews, subset: v2}
      weight: ${100 - weight}
`;

const serviceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.10}]
`;

let dir: string;
let daemon: Daemon | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weftd-'));
  await mkdir(join(dir, 'config'));
});

afterEach(async () => {
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  daemon = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function start(extra: string[] = []): Promise<{ xds: number; ca: number; monitoring: number }> {
  daemon = new Daemon(['--config-dir', join(dir, 'config'), '--xds-port', '0', '--ca-port', '0', '--monitoring-port', '0', '--ca-dir', join(dir, 'ca'), ...extra]);
  const ready = await daemon.waitFor((l) => l.msg === 'weftd ready', 'ready');
  return { xds: ready.xdsPort as number, ca: ready.caPort as number, monitoring: ready.monitoringPort as number };
}

async function getJson<T>(port: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return (await res.json()) as T;
}

describe('weftd', () => {
  it('serves xDS, the CA and monitoring on free ports, logging each port as JSON', async () => {
    await writeFile(join(dir, 'config', 'reviews.yaml'), `${serviceEntry}---\n${vs(80)}`);
    const ports = await start();
    const xdsLine = await daemon!.waitFor((l) => l.msg === 'xds listening', 'xds listening');
    expect(xdsLine).toMatchObject({ level: 'info', port: ports.xds });
    expect(ports.xds).toBeGreaterThan(0);

    expect((await fetch(`http://127.0.0.1:${ports.monitoring}/healthz`)).status).toBe(200);
    const configs = await getJson<{ kind: string; metadata: { name: string } }[]>(ports.monitoring, '/debug/configz');
    expect(configs.map((c) => `${c.kind}/${c.metadata.name}`).sort()).toEqual(['ServiceEntry/reviews', 'VirtualService/reviews']);
    const metrics = await (await fetch(`http://127.0.0.1:${ports.monitoring}/metrics`)).text();
    expect(metrics).toMatch(/^pilot_xds_connected 0$/m);
    expect(metrics).toMatch(/^# TYPE citadel_server_csr_count counter$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);

    // A sidecar's ADS stream over plaintext gets the service's cluster.
    const client = createAdsClient(`127.0.0.1:${ports.xds}`, credentials.createInsecure());
    const stream = client.StreamAggregatedResources(new Metadata());
    const got = new Promise<DiscoveryResponse__Output>((resolve) => stream.once('data', resolve));
    stream.write({ node: { id: 'sidecar~127.0.0.20~productpage-1.default~default.svc.cluster.local' }, type_url: TypeUrl.Cluster, resource_names: [] });
    const cds = await got;
    const names = cds.resources.map((r) => (decodeAny(r, TypeUrl.Cluster) as { name: string }).name);
    expect(names).toContain('outbound|9080||reviews.default.svc.cluster.local');
    const syncz = await getJson<{ id: string }[]>(ports.monitoring, '/debug/syncz');
    expect(syncz.map((s) => s.id)).toEqual(['sidecar~127.0.0.20~productpage-1.default~default.svc.cluster.local']);
    stream.end();
    client.close();

    // The CA signs a CSR over TLS for a workload holding a bootstrap token from the same root.
    const ca = await CertificateAuthority.open(join(dir, 'ca'));
    const keys = await generateRsaKeyPair(2048);
    const csrPem = createCsr('spiffe://cluster.local/ns/default/sa/reviews', keys);
    const chain = await requestCertificate({
      address: `127.0.0.1:${ports.ca}`,
      rootCertPem: await readFile(join(dir, 'ca', 'root-cert.pem'), 'utf8'),
      credential: { kind: 'token', token: ca.issueBootstrapToken('default', 'reviews') },
      csrPem,
      serverName: 'localhost',
    });
    expect(spiffeIdOf(chain[0]!)).toBe('spiffe://cluster.local/ns/default/sa/reviews');

    // The same TLS port serves xDS too, as istiod's 15012 does, to callers that authenticate
    // (here with a bootstrap token for an identity in the node's namespace).
    const rootPem = await readFile(join(dir, 'ca', 'root-cert.pem'));
    const secure = createAdsClient(`127.0.0.1:${ports.ca}`, credentials.createSsl(rootPem), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    const bearer = new Metadata();
    bearer.set('authorization', `Bearer ${ca.issueBootstrapToken('default', 'ratings')}`);
    const tlsStream = secure.StreamAggregatedResources(bearer);
    const tlsGot = new Promise<DiscoveryResponse__Output>((resolve, reject) => {
      tlsStream.once('data', resolve);
      tlsStream.once('error', reject);
    });
    tlsStream.write({ node: { id: 'sidecar~127.0.0.21~ratings-1.default~default.svc.cluster.local' }, type_url: TypeUrl.Cluster, resource_names: [] });
    expect((await tlsGot).resources.length).toBeGreaterThan(0);
    tlsStream.end();
    secure.close();
  });

  it('runs the CA alone with --no-xds', async () => {
    const ports = await start(['--no-xds']);
    expect(ports.xds).toBeUndefined();
    expect(ports.ca).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${ports.monitoring}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE citadel_server_csr_count counter$/m);
    expect(metrics).not.toMatch(/^pilot_xds_connected/m);
    expect(daemon!.lines.some((l) => l.msg === 'xds listening')).toBe(false);
  });

  it('reports rejected config with its file, line and column, and keeps serving the accepted version', async () => {
    const file = join(dir, 'config', 'vs.yaml');
    await writeFile(file, vs(80));
    const ports = await start(['--file-debounce-ms', '20']);
    await writeFile(file, vs(180));
    const rejected = await daemon!.waitFor((l) => l.scope === 'config' && l.level === 'error', 'a config error');
    expect(rejected).toMatchObject({ msg: 'config rejected; the last accepted version stays in force', file, resource: 'VirtualService default/reviews' });
    expect(rejected.text).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: error: VirtualService default/reviews: spec\\.http\\[0\\]\\.route\\[\\d\\]\\.weight: `));
    const configs = await getJson<{ spec: { http: { route: { weight: number }[] }[] } }[]>(ports.monitoring, '/debug/configz');
    expect(configs[0]!.spec.http[0]!.route[0]!.weight).toBe(80);
    const problems = await getJson<Record<string, unknown[]>>(ports.monitoring, '/debug/config_problems');
    expect(Object.keys(problems)).toEqual([file]);

    await writeFile(file, vs(70));
    await daemon!.waitFor((l) => l.scope === 'config' && l.msg === 'config accepted', 'config accepted');
    for (let i = 0; i < 100; i++) {
      const now = await getJson<{ spec: { http: { route: { weight: number }[] }[] } }[]>(ports.monitoring, '/debug/configz');
      if (now[0]!.spec.http[0]!.route[0]!.weight === 70) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = await getJson<{ spec: { http: { route: { weight: number }[] }[] } }[]>(ports.monitoring, '/debug/configz');
    expect(after[0]!.spec.http[0]!.route[0]!.weight).toBe(70);
  });

  it('says "config problems cleared" (not "config accepted") when a rejected file is removed, and "config accepted" only for a fixed one', async () => {
    const ports = await start(['--file-debounce-ms', '20']);
    const problemFiles = async () => Object.keys(await getJson<Record<string, unknown[]>>(ports.monitoring, '/debug/config_problems'));
    const bad = join(dir, 'config', 'bad.yaml');
    await writeFile(bad, vs(180));
    await daemon!.waitFor((l) => l.scope === 'config' && l.level === 'error' && l.file === bad, 'the rejection of bad.yaml');
    expect(await problemFiles()).toEqual([bad]);
    await rm(bad);
    const cleared = await daemon!.waitFor((l) => l.scope === 'config' && l.msg === 'config problems cleared', 'config problems cleared');
    expect(cleared.file).toBe(bad);
    expect(await problemFiles()).toEqual([]);
    // Nothing of the removed file was ever accepted.
    expect(daemon!.lines.some((l) => l.msg === 'config accepted')).toBe(false);
    expect((await getJson<unknown[]>(ports.monitoring, '/debug/configz')).length).toBe(0);

    // A rejected file that is then fixed: accepted.
    await writeFile(bad, vs(180));
    await daemon!.waitFor((l) => l.scope === 'config' && l.level === 'error' && l.file === bad && daemon!.lines.filter((x) => x.level === 'error').length === 2, 'the second rejection');
    await writeFile(bad, vs(60));
    const accepted = await daemon!.waitFor((l) => l.scope === 'config' && l.msg === 'config accepted', 'config accepted');
    expect(accepted.file).toBe(bad);
    expect(await problemFiles()).toEqual([]);
    expect(daemon!.lines.filter((l) => l.msg === 'config problems cleared')).toHaveLength(1);
  });

  it('shuts down gracefully on SIGTERM', async () => {
    const ports = await start(['--no-ca']);
    expect(ports.ca).toBeUndefined();
    daemon!.child.kill('SIGTERM');
    expect(await daemon!.exited).toBe(0);
    expect(daemon!.lines.some((l) => l.msg === 'weftd stopped')).toBe(true);
  });

  it('keeps the CA root in --ca-dir across restarts', async () => {
    await start();
    const root1 = await readFile(join(dir, 'ca', 'root-cert.pem'), 'utf8');
    daemon!.child.kill('SIGINT');
    expect(await daemon!.exited).toBe(0);
    await start();
    expect(await readFile(join(dir, 'ca', 'root-cert.pem'), 'utf8')).toBe(root1);
  });
});

describe('weftd --owner-uid (local mode: every port serves only the owner UID)', () => {
  const uid = process.getuid!();
  /** What a raw client gets: the first bytes, or how the connection ended. */
  const exchange = (port: number, send: string) =>
    new Promise<string>((resolve) => {
      const c = createConnection(port, '127.0.0.1');
      let data = '';
      c.on('connect', () => c.write(send));
      c.on('data', (b) => (data += b.toString('latin1')));
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      c.on('close', () => resolve(data ? `answered ${JSON.stringify(data.slice(0, 12))}` : 'closed'));
    });

  it('serves the owner on every port: monitoring, plaintext xDS and the CA and xDS over TLS (through the connection injector)', async () => {
    await writeFile(join(dir, 'config', 'reviews.yaml'), serviceEntry);
    const ports = await start(['--owner-uid', String(uid)]);
    expect(daemon!.lines.find((l) => l.msg === 'owner-only ports')).toMatchObject({ ownerUid: uid });
    expect((await fetch(`http://127.0.0.1:${ports.monitoring}/healthz`)).status).toBe(200);
    const client = createAdsClient(`127.0.0.1:${ports.xds}`, credentials.createInsecure());
    const stream = client.StreamAggregatedResources(new Metadata());
    const got = new Promise<DiscoveryResponse__Output>((resolve) => stream.once('data', resolve));
    stream.write({ node: { id: 'sidecar~127.0.0.20~productpage-1.default~default.svc.cluster.local' }, type_url: TypeUrl.Cluster, resource_names: [] });
    expect((await got).resources.length).toBeGreaterThan(0);
    stream.end();
    client.close();
    const ca = await CertificateAuthority.open(join(dir, 'ca'));
    const rootPem = await readFile(join(dir, 'ca', 'root-cert.pem'));
    const chain = await requestCertificate({
      address: `127.0.0.1:${ports.ca}`,
      rootCertPem: rootPem.toString(),
      credential: { kind: 'token', token: ca.issueBootstrapToken('default', 'reviews') },
      csrPem: createCsr('spiffe://cluster.local/ns/default/sa/reviews', await generateRsaKeyPair(2048)),
      serverName: 'localhost',
    });
    expect(spiffeIdOf(chain[0]!)).toBe('spiffe://cluster.local/ns/default/sa/reviews');
    const secure = createAdsClient(`127.0.0.1:${ports.ca}`, credentials.createSsl(rootPem), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    const bearer = new Metadata();
    bearer.set('authorization', `Bearer ${ca.issueBootstrapToken('default', 'ratings')}`);
    const tlsStream = secure.StreamAggregatedResources(bearer);
    const tlsGot = new Promise<DiscoveryResponse__Output>((resolve, reject) => {
      tlsStream.once('data', resolve);
      tlsStream.once('error', reject);
    });
    tlsStream.write({ node: { id: 'sidecar~127.0.0.21~ratings-1.default~default.svc.cluster.local' }, type_url: TypeUrl.Cluster, resource_names: [] });
    expect((await tlsGot).resources.length).toBeGreaterThan(0);
    tlsStream.end();
    secure.close();
    const metrics = await (await fetch(`http://127.0.0.1:${ports.monitoring}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE weftd_owner_guard_refused_connections_total counter$/m);
    expect(daemon!.lines.some((l) => l.scope === 'guard' && l.level === 'warn')).toBe(false);
  });

  it('resets a process of any other UID on each port before answering (this test against an owner it is not), logging each port', async () => {
    const ports = await start(['--owner-uid', String(uid + 4242)]);
    expect(await exchange(ports.monitoring, 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n')).toBe('ECONNRESET');
    expect(await exchange(ports.xds, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')).toBe('ECONNRESET');
    expect(await exchange(ports.ca, '\x16\x03\x01\x00\x05hello')).toBe('ECONNRESET');
    const refusals = await Promise.all(
      ['monitoring', 'xds', 'ca'].map((port) => daemon!.waitFor((l) => l.scope === 'guard' && l.port === port, `the refusal on ${port}`)),
    );
    for (const l of refusals) expect(l).toMatchObject({ level: 'warn', msg: 'connection refused: the peer is not the mesh owner', peerUid: uid, ownerUid: uid + 4242 });
  });

  it('takes the UID as a number', () => {
    expect(parseFlags(['--owner-uid', '1000'])).toEqual({ ownerUid: 1000 });
    expect(() => parseFlags(['--owner-uid', 'root'])).toThrow(/--owner-uid must be a user id/);
  });
});

describe('flags', () => {
  it('reads ports, directories and switches', () => {
    expect(parseFlags(['--config-dir', 'cfg', '--xds-port', '0', '--no-ca', '--debounce-ms', '10'])).toEqual({ configDir: 'cfg', xdsPort: 0, ca: false, debounceMs: 10 });
  });
  it('reads the JWKS refresh interval as a duration', () => {
    expect(parseFlags(['--jwks-refresh-interval', '2s'])).toEqual({ jwksRefreshIntervalMs: 2000 });
    expect(parseFlags(['--jwks-refresh-interval', '20m'])).toEqual({ jwksRefreshIntervalMs: 1_200_000 });
    expect(() => parseFlags(['--jwks-refresh-interval', 'soon'])).toThrow(/--jwks-refresh-interval must be a duration/);
  });
  it('sets the injected sidecar\'s CPU and memory requests (limits kept), Kubernetes quantities only', () => {
    const o = parseFlags(['--kube', '--proxy-cpu', '10m', '--proxy-memory', '64Mi']) as { kube?: { webhooks?: { injection?: { resources?: unknown } } } };
    expect(o.kube?.webhooks?.injection?.resources).toEqual({ requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } });
    expect(() => parseFlags(['--kube', '--proxy-cpu', 'ten'])).toThrow(/--proxy-cpu needs a Kubernetes quantity/);
    expect(() => parseFlags(['--proxy-cpu', '10m'])).toThrow(/need Kubernetes mode/);
  });
  it('turns plaintext xDS off with --xds-port off, unless nothing else would serve xDS', () => {
    expect(parseFlags(['--xds-port', 'off'])).toEqual({ xdsPort: 'off' });
    expect(() => parseFlags(['--xds-port', 'off', '--no-ca'])).toThrow(/leaves no port serving xDS/);
    expect(parseFlags(['--xds-port', 'off', '--no-xds'])).toEqual({ xdsPort: 'off', xds: false });
  });
  it('turns Kubernetes mode on with --kubeconfig PATH, or --kube for the default kubeconfig', () => {
    expect(parseFlags(['--kubeconfig', '/k/config', '--config-dir', 'cfg'])).toEqual({ kube: { kubeconfig: '/k/config' }, configDir: 'cfg' });
    expect(parseFlags(['--kube'])).toEqual({ kube: {} });
    expect(() => parseFlags(['--kubeconfig', ''])).toThrow(/--kubeconfig needs a path/);
  });
  it('refuses what it does not understand', () => {
    expect(() => parseFlags(['--xds-port', 'abc'])).toThrow(/--xds-port must be a port number \(0-65535\) or off/);
    expect(() => parseFlags(['--bogus'])).toThrow(/Unknown option '--bogus'/);
    expect(() => parseFlags(['--no-ca', '--no-xds'])).toThrow(/nothing to run/);
  });
});

describe('Kubernetes mode without a cluster', () => {
  it('names a kubeconfig it cannot read and exits 1', async () => {
    daemon = new Daemon(['--kubeconfig', join(dir, 'missing'), '--xds-port', '0', '--no-ca', '--monitoring-port', '0']);
    expect(await daemon.exited).toBe(1);
    expect(daemon.lines.at(-1)).toMatchObject({ level: 'error', msg: 'failed to start', error: `cannot use kubeconfig ${join(dir, 'missing')}: no such file` });
  });

  it('waits for an API server that does not answer, retrying with a warning, and stops cleanly on SIGTERM', async () => {
    // A port nothing listens on: every list is refused.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${closed}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
    );
    daemon = new Daemon(['--kubeconfig', kubeconfig, '--xds-port', '0', '--no-ca', '--monitoring-port', '0']);
    const warning = await daemon.waitFor((l) => l.msg === 'list/watch failed; retrying with backoff' && l.scope === 'kube-config', 'a failed list of the CRDs');
    expect(warning).toMatchObject({ level: 'warn', scope: 'kube-config', resource: 'customresourcedefinitions.apiextensions.k8s.io/v1' });
    expect(String(warning.error)).toMatch(/ECONNREFUSED/);
    expect(daemon.lines.some((l) => l.msg === 'weftd ready')).toBe(false);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(daemon.lines.at(-1)).toMatchObject({ msg: 'stopped while starting', signal: 'SIGTERM' });
  });
});
