// A private Kubernetes API server for the tests that must stop one: etcd and kube-apiserver (the
// binaries kube-local builds) on free loopback ports, with their own certificates and data in a
// temporary directory, no nodes and no controllers. The shared cluster's API server cannot be
// restarted under the other suites' feet; this one can, as often as a test likes, keeping its
// data (etcd keeps running), so a client sees what it sees when a real API server restarts:
// connections dropped, refused while it is down, watches from an old resourceVersion answered
// with 410 Gone by the new server's fresh watch cache. It is also an empty cluster (no CRDs).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findOnPath } from './host.ts';
import { kubeLocalDir } from './kube.ts';

const exec = promisify(execFile);

/** kube-apiserver as kube-local builds it; etcd built by kube-local, else Debian's. */
function binaries(): { apiserver: string; etcd: string | undefined } {
  const bin = join(kubeLocalDir(), 'bin');
  const etcd = existsSync(join(bin, 'etcd')) ? join(bin, 'etcd') : findOnPath('etcd');
  return { apiserver: join(bin, 'kube-apiserver'), etcd };
}

/** Why a private API server cannot run here (undefined: it can). */
export function privateApiServerUnmet(): string | undefined {
  const b = binaries();
  if (!existsSync(b.apiserver)) return `needs kube-apiserver at ${b.apiserver} (deploy/kube-local/build.sh builds it)`;
  if (!b.etcd) return 'needs etcd (apt-get install -y etcd-server)';
  if (!findOnPath('openssl')) return 'needs openssl (apt-get install -y openssl)';
  return undefined;
}

export interface PrivateApiServer {
  /** An admin (system:masters) kubeconfig for it. */
  readonly kubeconfig: string;
  /** `https://127.0.0.1:<port>`: the same across restarts. */
  readonly url: string;
  /** Where its certificates, data and logs are. */
  readonly dir: string;
  /** Stops kube-apiserver (SIGTERM, as a rolling restart does; `SIGKILL` for a crash). etcd keeps the data. */
  stopApiServer(signal?: NodeJS.Signals): Promise<void>;
  /** Starts kube-apiserver again on the same port and waits until /readyz answers. */
  startApiServer(): Promise<void>;
  /** Stops everything and removes the directory. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  await exec('openssl', args, { cwd: dir });
}

/** CA, serving certificate for 127.0.0.1, an admin client certificate, the service-account key pair. */
async function makeCertificates(dir: string): Promise<void> {
  await openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=weft-private-apiserver-ca');
  const cert = async (name: string, subject: string, ext: string) => {
    await openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    writeFileSync(join(dir, `${name}.ext`), ext);
    await openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  await cert('apiserver', '/CN=kube-apiserver', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await cert('admin', '/O=system:masters/CN=weft-test-admin', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  await openssl(dir, 'genrsa', '-out', 'sa.key', '2048');
  await openssl(dir, 'rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
}

function kubeconfigText(url: string, dir: string): string {
  const b64 = (f: string) => readFileSync(join(dir, f)).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: private
  cluster:
    server: ${url}
    certificate-authority-data: ${b64('ca.crt')}
users:
- name: admin
  user:
    client-certificate-data: ${b64('admin.crt')}
    client-key-data: ${b64('admin.key')}
contexts:
- name: private
  context: {cluster: private, user: admin}
current-context: private
`;
}

function answers(url: string, dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsRequest(`${url}/readyz`, { ca: readFileSync(join(dir, 'ca.crt')), cert: readFileSync(join(dir, 'admin.crt')), key: readFileSync(join(dir, 'admin.key')), timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function etcdHealthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(`http://127.0.0.1:${port}/health`, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function until(what: string, ok: () => Promise<boolean>, ms: number, proc: ChildProcess, log: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what}: the process exited (${proc.exitCode ?? proc.signalCode}); log ${log}:\n${tail(log)}`);
    if (Date.now() > end) throw new Error(`${what} not ready within ${ms / 1000} s; log ${log}:\n${tail(log)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

async function stopProcess(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill(signal);
  const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts etcd and kube-apiserver on free loopback ports (typically 5-20 s on a busy machine).
 * Throws with the reason (see `privateApiServerUnmet()` to skip instead).
 */
export async function startPrivateApiServer(): Promise<PrivateApiServer> {
  const unmet = privateApiServerUnmet();
  if (unmet) throw new Error(unmet);
  const b = binaries();
  const dir = mkdtempSync(join(tmpdir(), 'weft-apiserver-'));
  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  try {
    await makeCertificates(dir);
    const [client, peer, metrics, secure] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const url = `https://127.0.0.1:${secure}`;
    const etcdLog = join(dir, 'etcd.log');
    etcd = spawn(
      b.etcd!,
      [
        '--name=private',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${client}`,
        `--advertise-client-urls=http://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=private=http://127.0.0.1:${peer}`,
        `--listen-metrics-urls=http://127.0.0.1:${metrics}`,
      ],
      { stdio: ['ignore', openSync(etcdLog, 'a'), openSync(etcdLog, 'a')] },
    );
    await until('etcd', () => etcdHealthy(client), 60_000, etcd, etcdLog);
    const apiserverLog = join(dir, 'kube-apiserver.log');
    const args = [
      `--etcd-servers=http://127.0.0.1:${client}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${secure}`,
      '--advertise-address=127.0.0.1',
      '--service-cluster-ip-range=10.96.0.0/16',
      `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
      `--client-ca-file=${join(dir, 'ca.crt')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--authorization-mode=RBAC',
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      '--v=1',
    ];
    const startApi = async () => {
      apiserver = spawn(b.apiserver, args, { stdio: ['ignore', openSync(apiserverLog, 'a'), openSync(apiserverLog, 'a')] });
      await until('kube-apiserver', () => answers(url, dir), 120_000, apiserver, apiserverLog);
    };
    await startApi();
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigText(url, dir), { mode: 0o600 });
    return {
      kubeconfig,
      url,
      dir,
      stopApiServer: (signal = 'SIGTERM') => stopProcess(apiserver, signal),
      startApiServer: async () => {
        if (apiserver && apiserver.exitCode === null && apiserver.signalCode === null) return;
        await startApi();
      },
      close: async () => {
        await stopProcess(apiserver);
        await stopProcess(etcd);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopProcess(apiserver, 'SIGKILL');
    await stopProcess(etcd, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
