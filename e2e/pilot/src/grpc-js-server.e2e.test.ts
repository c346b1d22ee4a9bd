// Proxyless gRPC across languages: a @grpc/grpc-js-xds XdsServer (this process) configured by the
// inbound listener weftd serves it, called by the grpc-go client (../grpc-go) over mTLS. grpc-js-xds
// 1.14 speaks to its xDS server only with `insecure` channel credentials, so it uses weftd's
// plaintext xDS port; the grpc-go client uses the TLS port with its certificate (proxyless.ts).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import type { XdsServer } from '@grpc/grpc-js-xds';
import { CertificateAuthority } from '@weft/citadel';
import { JsonProcess } from '@weft/e2e-harness';
import { silentLogger } from '@weft/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoService, type VersionReply, type VersionRequest } from './echo.ts';
import {
  allowOnly,
  buildGrpcGo,
  eventually,
  freePort,
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
const echoPath = '/weft.e2e.Echo/Version';

let dir: string;
let bin: string;
let weftd: JsonProcess;
let server: XdsServer | undefined;
const serverIdentity: Omit<ProxylessIdentity, 'xds'> = { namespace: ns, serviceAccount: 'echo-js', app: 'echo-js', ip: loopbackAddress() };
let serverPort: number;
const bootstraps = new Map<string, string>();

const call = (as: string) => goClient(bin, bootstraps.get(as)!, ['-target', `xds:///echo-js.${ns}.svc:${servicePort}`, '-method', 'echo']);
const writeConfig = (file: string, text: string) => writeFile(join(dir, 'config', file), text);

/** The peer's SPIFFE ID as the TLS handshake proved it, or `plaintext`. */
function peerOf(c: ServerUnaryCall<VersionRequest, VersionReply>): string {
  const san = c.getAuthContext().sslPeerCertificate?.subjectaltname;
  if (!san) return 'plaintext';
  return /URI:([^,]+)/.exec(san)?.[1] ?? san;
}

beforeAll(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'weft-e2e-grpc-js-server-'));
  bin = await buildGrpcGo(dir);
  const caDir = join(dir, 'ca');
  await mkdir(join(dir, 'config'));
  await mkdir(caDir);
  const ca = await CertificateAuthority.open(caDir, { logger: silentLogger });
  serverPort = await freePort();
  await writeConfig('echo-js.yaml', [grpcService(ns, 'echo-js', servicePort), workloadEntry(serverIdentity, serverPort)].join('---\n'));
  await writeConfig('peer-authentication.yaml', peerAuthentication(ns, 'echo-js', 'STRICT'));
  weftd = new JsonProcess('weftd', [weftdBin, '--config-dir', join(dir, 'config'), '--ca-dir', caDir, '--xds-port', '0', '--ca-port', '0', '--monitoring-port', '0', '--debounce-ms', '20', '--file-debounce-ms', '20']);
  const ready = await weftd.waitFor((l) => l.msg === 'weftd ready', 'ready');
  const tlsXds = { port: ready.caPort as number, tls: true };
  bootstraps.set('client', await writeIdentity(ca, dir, { namespace: ns, serviceAccount: 'echo-client', app: 'echo-client', ip: '127.61.0.3', xds: tlsXds }));
  bootstraps.set('intruder', await writeIdentity(ca, dir, { namespace: ns, serviceAccount: 'intruder', app: 'intruder', ip: '127.61.0.4', xds: tlsXds }));

  // grpc-js-xds reads both when it loads and when the server is made: this worker is the server's.
  process.env.GRPC_XDS_BOOTSTRAP = await writeIdentity(ca, dir, { ...serverIdentity, xds: { port: ready.xdsPort as number, tls: false } });
  process.env.GRPC_XDS_EXPERIMENTAL_RBAC = 'true';
  const xds = await import('@grpc/grpc-js-xds');
  // register() installs the HTTP filters (router, RBAC) a server's listener names, not only the xds: resolver.
  xds.register();
  const s = new xds.XdsServer();
  server = s;
  s.addService(echoService, {
    Version: (c: ServerUnaryCall<VersionRequest, VersionReply>, done: sendUnaryData<VersionReply & { peer: string }>) => done(null, { version: 'echo-js', port: serverPort, peer: peerOf(c) }),
  });
  // The callback comes once the listener weftd serves is in force.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(async () => {
      const syncz = await (await fetch(`http://127.0.0.1:${ready.monitoringPort as number}/debug/syncz`)).text();
      reject(new Error(`the grpc-js server was not serving after 30 s; weftd's /debug/syncz: ${syncz}`));
    }, 30_000);
    s.bindAsync(`${serverIdentity.ip}:${serverPort}`, new xds.XdsServerCredentials(ServerCredentials.createInsecure()), (err) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    });
  });
}, 20 * 60_000);

afterAll(async () => {
  server?.forceShutdown();
  const code = await weftd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (!skip) expect(code).toBe(0);
});

describe.skipIf(skip)('a grpc-js-xds server behind weftd, called by grpc-go', () => {
  it('serves the grpc-go client over mTLS under STRICT', async () => {
    const r = await eventually('a call over mTLS', () => call('client'), (x) => x[0]?.ok === true);
    expect(r[0]).toMatchObject({ server: 'echo-js', peerSeenByServer: `spiffe://cluster.local/ns/${ns}/sa/echo-client`, serverIdentity: `spiffe://cluster.local/ns/${ns}/sa/echo-js` });
  });

  it('refuses a client without a certificate under STRICT', async () => {
    const plain = await goClient(bin, bootstraps.get('client')!, ['-target', `${serverIdentity.ip}:${serverPort}`, '-direct', 'plaintext', '-method', 'echo']);
    expect(plain[0]).toMatchObject({ ok: false, code: 'Unavailable' });
    const tls = await goClient(bin, bootstraps.get('client')!, ['-target', `${serverIdentity.ip}:${serverPort}`, '-direct', 'tls', '-method', 'echo']);
    expect(tls[0]).toMatchObject({ ok: false, code: 'Unavailable' });
  });

  it('applies an AuthorizationPolicy', async () => {
    await writeConfig('authorization-policy.yaml', allowOnly(ns, 'echo-js', `cluster.local/ns/${ns}/sa/echo-client`, echoPath));
    const denied = await eventually('the intruder denied', () => call('intruder'), (r) => r[0]?.code === 'PermissionDenied');
    console.log(`grpc-js server, intruder: ${denied[0]!.code}: ${denied[0]!.message}`);
    expect((await call('client'))[0]).toMatchObject({ ok: true, peerSeenByServer: `spiffe://cluster.local/ns/${ns}/sa/echo-client` });
  });
});
