// Proxyless gRPC in Go, as Istio serves it: a grpc-go server started with xds.NewGRPCServer and a
// grpc-go client dialling xds:///, both built here from the Go module proxy (../grpc-go), both
// bootstrapped like Istio's agent bootstraps them (GRPC_XDS_BOOTSTRAP: weftd's xDS over TLS on its
// CA port, authenticated with the workload certificate; certificate provider `default` =
// file_watcher over certificates Weft's CA issued; the server listener template
// xds.istio.io/grpc/lds/inbound/%s). weftd runs as in local mode: no plaintext xDS.
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CertificateAuthority, issueWorkloadSecret } from '@weft/citadel';
import { JsonProcess } from '@weft/e2e-harness';
import { silentLogger } from '@weft/model';
import { findOnPath, noteSkip } from '@weft/testing';
import { TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const weftdBin = fileURLToPath(new URL('../../../apps/weftd/bin/weftd.js', import.meta.url));
const goModule = fileURLToPath(new URL('../grpc-go', import.meta.url));
const goBinary = process.env.GO ?? findOnPath('go') ?? (spawnSync('/usr/local/go/bin/go', ['version']).status === 0 ? '/usr/local/go/bin/go' : undefined);
const skip = noteSkip(goBinary ? undefined : 'needs Go 1.26+ to build the grpc-go server and client (go.dev/dl into /usr/local/go, or apt-get install -y golang-go; or set GO)');

const ns = 'default';
const host = `greeter.${ns}.svc.cluster.local`;
const servicePort = 7070;
// A loopback address of its own, so another suite's servers cannot collide with it.
const serverIp = `127.61.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
const unaryPath = '/grpc.testing.TestService/UnaryCall';

const serviceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: greeter, namespace: ${ns}}
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: ${servicePort}, name: grpc, protocol: GRPC}
  workloadSelector:
    labels: {app: greeter}
---
# Istio's proxyless clients use mTLS only when told to (grpcgen's cds.go).
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: greeter, namespace: ${ns}}
spec:
  host: ${host}
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
`;
const workloadEntry = (port: number) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: greeter-1, namespace: ${ns}}
spec:
  address: ${serverIp}
  serviceAccount: greeter
  labels: {app: greeter}
  ports: {grpc: ${port}}
`;
const peerAuthentication = (mode: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: greeter, namespace: ${ns}}
spec:
  selector:
    matchLabels: {app: greeter}
  mtls: {mode: ${mode}}
`;
const authorizationPolicy = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: greeter, namespace: ${ns}}
spec:
  selector:
    matchLabels: {app: greeter}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/${ns}/sa/greeter-client]
    to:
    - operation:
        paths: [${unaryPath}]
`;

interface CallResult {
  ok: boolean;
  server?: string;
  peerSeenByServer?: string;
  serverIdentity?: string;
  code?: string;
  message?: string;
}

let dir: string;
let bin: string;
let weftd: JsonProcess;
let server: JsonProcess | undefined;
let serverPort: number;
let monitoring: string;
const bootstraps = new Map<string, string>();

/** A workload identity's certificates (issued by the CA weftd runs) and its GRPC_XDS_BOOTSTRAP, as Istio's agent writes one. */
async function identity(ca: CertificateAuthority, caPort: number, sa: string, app: string, ip: string): Promise<string> {
  const secret = await issueWorkloadSecret(ca, { namespace: ns, serviceAccount: sa });
  const certs = join(dir, 'certs', sa);
  await mkdir(certs, { recursive: true });
  const files = { cert: join(certs, 'cert-chain.pem'), key: join(certs, 'key.pem'), root: join(certs, 'root-cert.pem') };
  await writeFile(files.cert, secret.certChainPem);
  await writeFile(files.key, secret.privateKeyPem, { mode: 0o600 });
  await writeFile(files.root, secret.rootCertPem);
  const bootstrap = join(certs, 'grpc-bootstrap.json');
  await writeFile(
    bootstrap,
    JSON.stringify({
      xds_servers: [
        {
          server_uri: `127.0.0.1:${caPort}`,
          channel_creds: [{ type: 'tls', config: { ca_certificate_file: files.root, certificate_file: files.cert, private_key_file: files.key } }],
          server_features: ['xds_v3'],
        },
      ],
      node: {
        id: `sidecar~${ip}~${app}-1.${ns}~${ns}.svc.cluster.local`,
        metadata: { GENERATOR: 'grpc', NAMESPACE: ns, SERVICE_ACCOUNT: sa, INSTANCE_IPS: ip, LABELS: { app } },
        locality: {},
      },
      certificate_providers: {
        default: { plugin_name: 'file_watcher', config: { certificate_file: files.cert, private_key_file: files.key, ca_certificate_file: files.root, refresh_interval: '900s' } },
      },
      server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
    }),
  );
  return bootstrap;
}

/** Runs the grpc-go client once; one result per call. `as` names the identity whose bootstrap it uses. */
async function client(as: string, args: string[]): Promise<CallResult[]> {
  const env = { ...process.env, GRPC_XDS_BOOTSTRAP: bootstraps.get(as)! };
  let stdout: string;
  try {
    ({ stdout } = await run(join(bin, 'client'), args, { env, timeout: 40_000 }));
  } catch (err) {
    // Exit 2: no success within -until-ok; its last result is printed all the same.
    stdout = (err as { stdout?: string }).stdout ?? '';
    if (!stdout) throw err;
  }
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CallResult);
}

const viaXds = (as: string, method = 'unary', calls = 1) => client(as, ['-target', `xds:///greeter.${ns}:${servicePort}`, '-method', method, '-calls', String(calls)]);
const direct = (mode: 'tls' | 'plaintext') => client('greeter-client', ['-target', `${serverIp}:${serverPort}`, '-direct', mode]);

/** Polls until `check` passes on a fresh result (config changes reach the server in a push). */
async function eventually<T>(what: string, get: () => Promise<T>, check: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T;
  do {
    last = await get();
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < end);
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${ms} ms`);
}

beforeAll(async () => {
  if (skip) return;
  bin = join(tmpdir(), 'weft-e2e-grpc-go');
  const built = performance.now();
  // GOFLAGS=-mod=mod: the module's go.sum is committed; the build needs no vendor directory.
  await run(goBinary!, ['build', '-o', `${bin}/`, './server', './client'], { cwd: goModule, env: { ...process.env, GOFLAGS: '-mod=mod' }, timeout: 15 * 60_000 });
  console.log(`grpc-go server and client built in ${((performance.now() - built) / 1000).toFixed(1)} s`);

  dir = await mkdtemp(join(tmpdir(), 'weft-e2e-grpc-go-'));
  const config = join(dir, 'config');
  const caDir = join(dir, 'ca');
  await mkdir(config);
  await mkdir(caDir);
  const ca = await CertificateAuthority.open(caDir, { logger: silentLogger });
  await writeFile(join(config, 'greeter.yaml'), serviceEntry);
  await writeFile(join(config, 'peer-authentication.yaml'), peerAuthentication('STRICT'));
  weftd = new JsonProcess('weftd', [weftdBin, '--config-dir', config, '--ca-dir', caDir, '--xds-port', 'off', '--ca-port', '0', '--monitoring-port', '0', '--debounce-ms', '20', '--file-debounce-ms', '20']);
  const ready = await weftd.waitFor((l) => l.msg === 'weftd ready', 'ready');
  const caPort = ready.caPort as number;
  monitoring = `http://127.0.0.1:${ready.monitoringPort as number}`;

  bootstraps.set('greeter', await identity(ca, caPort, 'greeter', 'greeter', serverIp));
  bootstraps.set('greeter-client', await identity(ca, caPort, 'greeter-client', 'greeter-client', '127.61.0.1'));
  bootstraps.set('intruder', await identity(ca, caPort, 'intruder', 'intruder', '127.61.0.2'));

  server = new JsonProcess('grpc-go server', ['-addr', `${serverIp}:0`, '-id', 'greeter-1'], { command: join(bin, 'server'), env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstraps.get('greeter')! } });
  const listening = await server.waitFor((l) => l.event === 'listening', 'listening');
  serverPort = Number(String(listening.addr).split(':').pop());
  // The workload is known to the mesh only now: until then its listener does not exist and it does not serve.
  await writeFile(join(config, 'greeter-workload.yaml'), workloadEntry(serverPort));
  await server.waitFor((l) => l.event === 'serving-mode' && l.mode === 'SERVING', 'SERVING', 30_000);
}, 20 * 60_000);

afterAll(async () => {
  const serverCode = await server?.stop();
  const code = await weftd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (!skip) {
    expect(code).toBe(0);
    expect(serverCode).toBe(0);
  }
});

describe.skipIf(skip)('a grpc-go xDS server and client behind weftd', () => {
  it('serves a grpc-go client over mTLS under STRICT: each side proves its SPIFFE identity to the other', async () => {
    const results = await viaXds('greeter-client', 'unary', 20);
    expect(results).toHaveLength(20);
    for (const r of results) {
      expect(r).toMatchObject({
        ok: true,
        server: 'greeter-1',
        peerSeenByServer: `spiffe://cluster.local/ns/${ns}/sa/greeter-client`,
        serverIdentity: `spiffe://cluster.local/ns/${ns}/sa/greeter`,
      });
    }
    console.log(`20 calls over mTLS: client ${results[0]!.peerSeenByServer} -> server ${results[0]!.serverIdentity}`);
  });

  it('shows both in /debug/syncz: authenticated by their certificates, the inbound listener ACKed', async () => {
    const syncz = (await (await fetch(`${monitoring}/debug/syncz`)).json()) as { id: string; identity?: string; authn?: string; types: Record<string, { status: string; subscribed: string[] | '*' }> }[];
    const srv = syncz.find((s) => s.id.includes('greeter-1.'));
    expect(srv).toMatchObject({ identity: `spiffe://cluster.local/ns/${ns}/sa/greeter`, authn: 'mtls' });
    expect(srv!.types[TypeUrl.Listener]).toMatchObject({ status: 'ACKED', subscribed: [`xds.istio.io/grpc/lds/inbound/${serverIp}:${serverPort}`] });
  });

  it('refuses a client without a certificate under STRICT, and serves it once PeerAuthentication says DISABLE', async () => {
    const tls = await direct('tls');
    expect(tls[0]).toMatchObject({ ok: false, code: 'Unavailable' });
    const plain = await direct('plaintext');
    expect(plain[0]).toMatchObject({ ok: false, code: 'Unavailable' });
    console.log(`STRICT, TLS without a client certificate: ${tls[0]!.code}: ${tls[0]!.message}`);

    await writeFile(join(dir, 'config', 'peer-authentication.yaml'), peerAuthentication('DISABLE'));
    const served = await eventually('a plaintext client under DISABLE', () => direct('plaintext'), (r) => r[0]?.ok === true);
    expect(served[0]).toMatchObject({ server: 'greeter-1', peerSeenByServer: 'plaintext' });

    await writeFile(join(dir, 'config', 'peer-authentication.yaml'), peerAuthentication('STRICT'));
    await eventually('a plaintext client refused again under STRICT', () => direct('plaintext'), (r) => r[0]?.ok === false);
    expect((await viaXds('greeter-client'))[0]).toMatchObject({ ok: true, peerSeenByServer: `spiffe://cluster.local/ns/${ns}/sa/greeter-client` });
  });

  it('applies an AuthorizationPolicy: only the allowed principal, only on the allowed method', async () => {
    await writeFile(join(dir, 'config', 'authorization-policy.yaml'), authorizationPolicy);
    const intruder = await eventually('the intruder denied', () => viaXds('intruder'), (r) => r[0]?.code === 'PermissionDenied');
    console.log(`intruder (a valid mesh identity, not allowed): ${intruder[0]!.code}: ${intruder[0]!.message}`);
    expect((await viaXds('greeter-client', 'unary', 5)).map((r) => r.ok)).toEqual([true, true, true, true, true]);
    expect((await viaXds('greeter-client', 'empty'))[0]).toMatchObject({ ok: false, code: 'PermissionDenied' });

    await rm(join(dir, 'config', 'authorization-policy.yaml'));
    await eventually('the intruder allowed once the policy is gone', () => viaXds('intruder'), (r) => r[0]?.ok === true);
    expect((await viaXds('greeter-client', 'empty'))[0]?.ok).toBe(true);
  });
});
