// Proxyless gRPC in Go, as Istio serves it: a grpc-go server started with xds.NewGRPCServer and a
// grpc-go client dialling xds:///, both built here from the Go module proxy (../grpc-go), both
// bootstrapped like Istio's agent bootstraps them (proxyless.ts: weftd's xDS over TLS on its CA
// port, authenticated with the workload certificate; certificate provider `default` over
// certificates Weft's CA issued). weftd runs as in local mode: no plaintext xDS.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CertificateAuthority } from '@weft/citadel';
import { JsonProcess } from '@weft/e2e-harness';
import { silentLogger } from '@weft/model';
import { TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allowOnly,
  buildGrpcGo,
  eventually,
  goClient,
  goSkipReason,
  grpcService,
  loopbackAddress,
  type ProxylessIdentity,
  peerAuthentication,
  workloadEntry,
  writeIdentity,
} from './proxyless.ts';

const weftdBin = fileURLToPath(new URL('../../../apps/weftd/bin/weftd.js', import.meta.url));
const skip = goSkipReason();

const ns = 'default';
const servicePort = 7070;
const unaryPath = '/grpc.testing.TestService/UnaryCall';

let dir: string;
let bin: string;
let weftd: JsonProcess;
let server: JsonProcess | undefined;
let serverPort: number;
let monitoring: string;
const serverIdentity: Omit<ProxylessIdentity, 'xds'> = { namespace: ns, serviceAccount: 'greeter', app: 'greeter', ip: loopbackAddress() };
const bootstraps = new Map<string, string>();

const viaXds = (as: string, method = 'unary', calls = 1) => goClient(bin, bootstraps.get(as)!, ['-target', `xds:///greeter.${ns}:${servicePort}`, '-method', method, '-calls', String(calls)]);
const direct = (mode: 'tls' | 'plaintext') => goClient(bin, bootstraps.get('greeter-client')!, ['-target', `${serverIdentity.ip}:${serverPort}`, '-direct', mode]);
const writeConfig = (file: string, text: string) => writeFile(join(dir, 'config', file), text);

beforeAll(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'weft-e2e-grpc-go-'));
  bin = await buildGrpcGo(dir);
  const caDir = join(dir, 'ca');
  await mkdir(join(dir, 'config'));
  await mkdir(caDir);
  const ca = await CertificateAuthority.open(caDir, { logger: silentLogger });
  await writeConfig('greeter.yaml', grpcService(ns, 'greeter', servicePort));
  await writeConfig('peer-authentication.yaml', peerAuthentication(ns, 'greeter', 'STRICT'));
  weftd = new JsonProcess('weftd', [weftdBin, '--config-dir', join(dir, 'config'), '--ca-dir', caDir, '--xds-port', 'off', '--ca-port', '0', '--monitoring-port', '0', '--debounce-ms', '20', '--file-debounce-ms', '20']);
  const ready = await weftd.waitFor((l) => l.msg === 'weftd ready', 'ready');
  monitoring = `http://127.0.0.1:${ready.monitoringPort as number}`;
  const xds = { port: ready.caPort as number, tls: true };
  bootstraps.set('greeter', await writeIdentity(ca, dir, { ...serverIdentity, xds }));
  bootstraps.set('greeter-client', await writeIdentity(ca, dir, { namespace: ns, serviceAccount: 'greeter-client', app: 'greeter-client', ip: '127.61.0.1', xds }));
  bootstraps.set('intruder', await writeIdentity(ca, dir, { namespace: ns, serviceAccount: 'intruder', app: 'intruder', ip: '127.61.0.2', xds }));

  server = new JsonProcess('grpc-go server', ['-addr', `${serverIdentity.ip}:0`, '-id', 'greeter-1'], { command: join(bin, 'server'), env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstraps.get('greeter')! } });
  const listening = await server.waitFor((l) => l.event === 'listening', 'listening');
  serverPort = Number(String(listening.addr).split(':').pop());
  // The workload is known to the mesh only now: until then its listener does not exist and it does not serve.
  await writeConfig('greeter-workload.yaml', workloadEntry(serverIdentity, serverPort));
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

  it('shows the server in /debug/syncz: authenticated by its certificate, its inbound listener ACKed', async () => {
    const syncz = (await (await fetch(`${monitoring}/debug/syncz`)).json()) as { id: string; identity?: string; authn?: string; types: Record<string, { status: string; subscribed: string[] | '*' }> }[];
    const srv = syncz.find((s) => s.id.includes('greeter-1.'));
    expect(srv).toMatchObject({ identity: `spiffe://cluster.local/ns/${ns}/sa/greeter`, authn: 'mtls' });
    expect(srv!.types[TypeUrl.Listener]).toMatchObject({ status: 'ACKED', subscribed: [`xds.istio.io/grpc/lds/inbound/${serverIdentity.ip}:${serverPort}`] });
  });

  it('refuses a client without a certificate under STRICT, and serves it once PeerAuthentication says DISABLE', async () => {
    const tls = await direct('tls');
    expect(tls[0]).toMatchObject({ ok: false, code: 'Unavailable' });
    const plain = await direct('plaintext');
    expect(plain[0]).toMatchObject({ ok: false, code: 'Unavailable' });
    console.log(`STRICT, TLS without a client certificate: ${tls[0]!.code}: ${tls[0]!.message}`);

    await writeConfig('peer-authentication.yaml', peerAuthentication(ns, 'greeter', 'DISABLE'));
    const served = await eventually('a plaintext client under DISABLE', () => direct('plaintext'), (r) => r[0]?.ok === true);
    expect(served[0]).toMatchObject({ server: 'greeter-1', peerSeenByServer: 'plaintext' });

    await writeConfig('peer-authentication.yaml', peerAuthentication(ns, 'greeter', 'STRICT'));
    await eventually('a plaintext client refused again under STRICT', () => direct('plaintext'), (r) => r[0]?.ok === false);
    expect((await viaXds('greeter-client'))[0]).toMatchObject({ ok: true, peerSeenByServer: `spiffe://cluster.local/ns/${ns}/sa/greeter-client` });
  });

  it('applies an AuthorizationPolicy: only the allowed principal, only on the allowed method', async () => {
    await writeConfig('authorization-policy.yaml', allowOnly(ns, 'greeter', `cluster.local/ns/${ns}/sa/greeter-client`, unaryPath));
    const intruder = await eventually('the intruder denied', () => viaXds('intruder'), (r) => r[0]?.code === 'PermissionDenied');
    console.log(`intruder (a valid mesh identity, not allowed): ${intruder[0]!.code}: ${intruder[0]!.message}`);
    expect((await viaXds('greeter-client', 'unary', 5)).map((r) => r.ok)).toEqual([true, true, true, true, true]);
    expect((await viaXds('greeter-client', 'empty'))[0]).toMatchObject({ ok: false, code: 'PermissionDenied' });

    await rm(join(dir, 'config', 'authorization-policy.yaml'));
    await eventually('the intruder allowed once the policy is gone', () => viaXds('intruder'), (r) => r[0]?.ok === true);
    expect((await viaXds('greeter-client', 'empty'))[0]?.ok).toBe(true);
  });

  it("retries UNAVAILABLE with Istio's default policy when no VirtualService sets one, and not when one sets attempts 0", async () => {
    const flaky = () => goClient(bin, bootstraps.get('greeter-client')!, ['-target', `xds:///greeter.${ns}:${servicePort}`, '-flaky', '-calls', '10']);
    expect((await flaky()).map((r) => r.ok)).toEqual(Array(10).fill(true));
    await writeConfig(
      'virtual-service.yaml',
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: greeter, namespace: ${ns}}
spec:
  hosts: [greeter.${ns}.svc.cluster.local]
  http:
  - retries: {attempts: 0}
    route:
    - destination: {host: greeter.${ns}.svc.cluster.local}
`,
    );
    const failing = await eventually('first attempts failing without retries', flaky, (r) => r.every((x) => x.code === 'Unavailable'));
    console.log(`without retries: ${failing[0]!.code}: ${failing[0]!.message}`);
    await rm(join(dir, 'config', 'virtual-service.yaml'));
    await eventually('retries back with the default policy', flaky, (r) => r.every((x) => x.ok));
  });
});
