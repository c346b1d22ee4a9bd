// What the proxyless gRPC suites share: the grpc-go programs (../grpc-go, built from the Go module
// proxy), workload identities bootstrapped as Istio's agent bootstraps a proxyless workload, and the
// mesh config they run under.
import { nodeId } from '@weft/mesh';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CertificateAuthority, issueWorkloadSecret } from '@weft/citadel';
import { findOnPath, noteSkip } from '@weft/testing';

const run = promisify(execFile);
const goModule = fileURLToPath(new URL('../grpc-go', import.meta.url));

/** Go: $GO, else `go` on PATH, else /usr/local/go/bin/go. */
export const goBinary = process.env.GO ?? findOnPath('go') ?? (spawnSync('/usr/local/go/bin/go', ['version']).status === 0 ? '/usr/local/go/bin/go' : undefined);

/** Why a suite that runs the grpc-go programs skips here (printed), or undefined. */
export function goSkipReason(): string | undefined {
  return noteSkip(goBinary ? undefined : 'needs Go 1.26+ to build the grpc-go server and client (go.dev/dl into /usr/local/go, or apt-get install -y golang-go; or set GO)');
}

/**
 * Builds the grpc-go server and client into `<dir>/bin` (a suite's temp dir: suites running at
 * once never write over each other's binaries; Go's build cache makes the second build quick).
 */
export async function buildGrpcGo(dir: string): Promise<string> {
  const bin = join(dir, 'bin');
  const started = performance.now();
  // GOFLAGS=-mod=mod: go.mod and go.sum are committed; no vendor directory is needed.
  await run(goBinary!, ['build', '-o', `${bin}/`, './server', './client'], { cwd: goModule, env: { ...process.env, GOFLAGS: '-mod=mod' }, timeout: 15 * 60_000 });
  console.log(`grpc-go server and client built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return bin;
}

/** A random loopback address of a suite's own (127.61.0.0/16), so servers of other suites cannot collide with it. */
export function loopbackAddress(): string {
  return `127.61.${1 + Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
}

/** A port free on every address (grpc-js's XdsServer listens on its port on all of them). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ProxylessIdentity {
  namespace: string;
  serviceAccount: string;
  app: string;
  /** The workload's address (INSTANCE_IPS, and the IP of its node id). */
  ip: string;
  /** weftd's xDS: the TLS port, authenticated by the workload certificate (grpc-go), or the plaintext port (grpc-js-xds 1.14 has only `insecure` channel credentials). */
  xds: { port: number; tls: boolean };
}

/**
 * Certificates for the identity, issued by the CA weftd runs, and a GRPC_XDS_BOOTSTRAP as Istio's
 * agent writes one for a proxyless workload: node metadata GENERATOR=grpc, certificate provider
 * `default` (file_watcher), server listeners `xds.istio.io/grpc/lds/inbound/%s`. Returns its path.
 */
export async function writeIdentity(ca: CertificateAuthority, dir: string, id: ProxylessIdentity): Promise<string> {
  const secret = await issueWorkloadSecret(ca, { namespace: id.namespace, serviceAccount: id.serviceAccount });
  const certs = join(dir, 'certs', id.serviceAccount);
  await mkdir(certs, { recursive: true });
  const files = { cert: join(certs, 'cert-chain.pem'), key: join(certs, 'key.pem'), root: join(certs, 'root-cert.pem') };
  await writeFile(files.cert, secret.certChainPem);
  await writeFile(files.key, secret.privateKeyPem, { mode: 0o600 });
  await writeFile(files.root, secret.rootCertPem);
  const channelCreds = id.xds.tls ? { type: 'tls', config: { ca_certificate_file: files.root, certificate_file: files.cert, private_key_file: files.key } } : { type: 'insecure' };
  const bootstrap = join(certs, 'grpc-bootstrap.json');
  await writeFile(
    bootstrap,
    JSON.stringify({
      xds_servers: [{ server_uri: `127.0.0.1:${id.xds.port}`, channel_creds: [channelCreds], server_features: ['xds_v3'] }],
      node: {
        id: nodeId({ type: 'sidecar', ip: id.ip, pod: `${id.app}-1`, namespace: id.namespace }),
        metadata: { GENERATOR: 'grpc', NAMESPACE: id.namespace, SERVICE_ACCOUNT: id.serviceAccount, INSTANCE_IPS: id.ip, LABELS: { app: id.app } },
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

/** One call's outcome as the grpc-go client prints it. */
export interface CallResult {
  ok: boolean;
  server?: string;
  peerSeenByServer?: string;
  serverIdentity?: string;
  code?: string;
  message?: string;
}

/** Runs the grpc-go client once with this bootstrap; one result per call. */
export async function goClient(bin: string, bootstrap: string, args: string[]): Promise<CallResult[]> {
  let stdout: string;
  try {
    ({ stdout } = await run(join(bin, 'client'), args, { env: { ...process.env, GRPC_XDS_BOOTSTRAP: bootstrap }, timeout: 40_000 }));
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

/** Polls until `check` passes on a fresh value (a config change reaches servers in a push). */
export async function eventually<T>(what: string, get: () => Promise<T>, check: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T;
  do {
    last = await get();
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < end);
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${ms} ms`);
}

/** A MESH_INTERNAL service of one gRPC port, selecting `app`, and a DestinationRule telling clients ISTIO_MUTUAL (Istio's proxyless clients use mTLS only when told to: grpcgen's cds.go). */
export const grpcService = (namespace: string, app: string, port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${app}, namespace: ${namespace}}
spec:
  hosts: [${app}.${namespace}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: ${port}, name: grpc, protocol: GRPC}
  workloadSelector:
    labels: {app: ${app}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${app}, namespace: ${namespace}}
spec:
  host: ${app}.${namespace}.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
`;

export const workloadEntry = (id: Pick<ProxylessIdentity, 'namespace' | 'serviceAccount' | 'app' | 'ip'>, port: number) => `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${id.app}-1, namespace: ${id.namespace}}
spec:
  address: ${id.ip}
  serviceAccount: ${id.serviceAccount}
  labels: {app: ${id.app}}
  ports: {grpc: ${port}}
`;

export const peerAuthentication = (namespace: string, app: string, mode: string) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${app}, namespace: ${namespace}}
spec:
  selector:
    matchLabels: {app: ${app}}
  mtls: {mode: ${mode}}
`;

/** ALLOW only `principal`, only on `path`. */
export const allowOnly = (namespace: string, app: string, principal: string, path: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${app}, namespace: ${namespace}}
spec:
  selector:
    matchLabels: {app: ${app}}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [${principal}]
    to:
    - operation:
        paths: [${path}]
`;
