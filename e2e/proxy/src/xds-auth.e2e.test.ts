// Authenticated xDS, as a hostile local process would try it: weftd (a real process) with the
// plaintext port off serves xDS only on its TLS port, where every stream must authenticate (a
// client certificate from the mesh CA or a bootstrap token) and its node must belong to that
// identity (Istio's checkConnectionIdentity). Raw grpc-js ADS clients play the impostor, the
// client without credentials and the honest token holder; a genuine weft-proxy plays itself.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChannelCredentials, credentials, Metadata, type StatusObject } from '@grpc/grpc-js';
import { CertificateAuthority, createCsr, generateRsaKeyPair, requestCertificate } from '@weft/citadel';
import { createAdsClient, type DiscoveryResponse__Output, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceEntry } from './config.ts';
import { type ProxyProcess, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const spiffe = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;
const ratingsNode = 'sidecar~127.10.11.12~ratings-v1.default~default.svc.cluster.local';
const tlsName = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };

let dir: string;
let caDir: string;
let weftd: Weftd;
let ca: CertificateAuthority;
let rootPem: Buffer;
let proxy: ProxyProcess | undefined;

interface SynczEntry {
  id: string;
  authenticated: boolean;
  identity?: string;
  authn?: string;
  types: Record<string, { status: string }>;
}

async function syncz(): Promise<SynczEntry[]> {
  return (await (await fetch(`http://127.0.0.1:${weftd.monitoringPort}/debug/syncz`)).json()) as SynczEntry[];
}

function structOf(metadata: Record<string, string>) {
  return { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v, kind: 'stringValue' as const }])) };
}

/**
 * One ADS stream to weftd's TLS port asking for clusters, ACKing what it gets. Resolves with the
 * first response, or with the status the stream ended with.
 */
function ads(creds: ChannelCredentials, metadata: Metadata, node: { id: string; metadata: Record<string, string> }) {
  const client = createAdsClient(`127.0.0.1:${weftd.caPort}`, creds, tlsName);
  const stream = client.StreamAggregatedResources(metadata);
  const outcome = new Promise<{ response?: DiscoveryResponse__Output; status?: StatusObject }>((resolve) => {
    stream.on('data', (r: DiscoveryResponse__Output) => {
      stream.write({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: [] });
      resolve({ response: r });
    });
    stream.on('status', (status: StatusObject) => resolve({ status }));
    stream.on('error', () => {});
  });
  stream.write({ node: { id: node.id, metadata: structOf(node.metadata) }, type_url: TypeUrl.Cluster, resource_names: [] });
  return {
    outcome,
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-xds-auth-'));
  caDir = join(dir, 'ca');
  await mkdir(join(dir, 'config'));
  await mkdir(caDir);
  await writeConfig(join(dir, 'config'), 'ratings.yaml', serviceEntry('ratings', 'ratings'));
  weftd = await startWeftd(join(dir, 'config'), 0, { ca: { caDir }, extra: ['--xds-port', 'off'] });
  ca = await CertificateAuthority.open(caDir);
  rootPem = await readFile(join(caDir, 'root-cert.pem'));
});

afterAll(async () => {
  await proxy?.proc.stop();
  await weftd?.proc.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('xDS on the TLS port, plaintext off', () => {
  it('has no plaintext xDS port', () => {
    expect(weftd.proc.lines.some((l) => l.msg === 'xds listening')).toBe(false);
    expect(weftd.proc.lines.find((l) => l.msg === 'weftd ready')?.xdsPort).toBeUndefined();
  });

  it('refuses a certificate for bookinfo-reviews whose node claims ratings-v1 (bookinfo-ratings): PERMISSION_DENIED, a log line, never in syncz', async () => {
    // A real workload certificate for reviews, obtained as reviews would.
    const keys = await generateRsaKeyPair(2048);
    const chain = await requestCertificate({
      address: `127.0.0.1:${weftd.caPort}`,
      rootCertPem: rootPem.toString(),
      serverName: 'localhost',
      credential: { kind: 'token', token: ca.issueBootstrapToken('default', 'bookinfo-reviews') },
      csrPem: createCsr(spiffe('bookinfo-reviews'), keys),
    });
    const impostor = ads(credentials.createSsl(rootPem, Buffer.from(keys.privateKeyPem), Buffer.from(chain.join(''))), new Metadata(), {
      id: ratingsNode,
      metadata: { SERVICE_ACCOUNT: 'bookinfo-ratings', NAMESPACE: 'default' },
    });
    try {
      const { response, status } = await impostor.outcome;
      expect(response).toBeUndefined();
      expect(status?.code).toBe(7); // PERMISSION_DENIED
      expect(status?.details).toContain('bookinfo-ratings');
    } finally {
      impostor.close();
    }
    const line = await weftd.proc.waitFor((l) => l.msg === 'xDS stream refused: node does not match the authenticated identity', 'the refusal');
    expect(line).toMatchObject({ level: 'warn', code: 'PERMISSION_DENIED', node: ratingsNode, identities: [spiffe('bookinfo-reviews')], serviceAccount: 'bookinfo-ratings' });
    expect(String(line.peer)).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await syncz()).map((e) => e.id)).not.toContain(ratingsNode);
    const metrics = await (await fetch(`http://127.0.0.1:${weftd.monitoringPort}/metrics`)).text();
    expect(metrics).toMatch(/^pilot_xds_refused_streams\{reason="permission_denied"\} 1$/m);
  });

  it('refuses a stream without credentials: UNAUTHENTICATED', async () => {
    const anonymous = ads(credentials.createSsl(rootPem), new Metadata(), { id: ratingsNode, metadata: {} });
    try {
      const { response, status } = await anonymous.outcome;
      expect(response).toBeUndefined();
      expect(status?.code).toBe(16); // UNAUTHENTICATED
    } finally {
      anonymous.close();
    }
    expect(await weftd.proc.waitFor((l) => l.msg === 'xDS stream refused: client not authenticated', 'the refusal')).toMatchObject({
      code: 'UNAUTHENTICATED',
      node: ratingsNode,
      reason: 'no client certificate and no bearer token',
    });
    // Nor does a token for another namespace's identity help.
    const md = new Metadata();
    md.set('authorization', `Bearer ${ca.issueBootstrapToken('istio-system', 'istio-ingressgateway')}`);
    const other = ads(credentials.createSsl(rootPem), md, { id: ratingsNode, metadata: {} });
    try {
      expect((await other.outcome).status?.code).toBe(7);
    } finally {
      other.close();
    }
    expect((await syncz()).map((e) => e.id)).not.toContain(ratingsNode);
  });

  it('accepts a bearer token for the right identity: served, ACKed, its identity in syncz', async () => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${ca.issueBootstrapToken('default', 'bookinfo-ratings')}`);
    const honest = ads(credentials.createSsl(rootPem), md, { id: ratingsNode, metadata: { SERVICE_ACCOUNT: 'bookinfo-ratings' } });
    try {
      const { response } = await honest.outcome;
      expect(response?.type_url).toBe(TypeUrl.Cluster);
      const entries = await until(syncz, (es) => es.some((e) => e.id === ratingsNode && e.types[TypeUrl.Cluster]?.status === 'ACKED'), 'the ACK');
      expect(entries.find((e) => e.id === ratingsNode)).toMatchObject({ authenticated: true, identity: spiffe('bookinfo-ratings'), authn: 'token' });
    } finally {
      honest.close();
    }
    await until(syncz, (es) => !es.some((e) => e.id === ratingsNode), 'the stream to close');
  });

  it('syncs the genuine weft-proxy over TLS with its identity shown', async () => {
    const tokenFile = join(dir, 'ratings.token');
    await writeConfig(dir, 'ratings.token', ca.issueBootstrapToken('default', 'bookinfo-ratings'));
    proxy = await startProxy({
      xdsPort: weftd.caPort!,
      ip: '127.10.11.12',
      pod: 'ratings-v1',
      labels: 'app=ratings,version=v1',
      extra: [
        '--xds-tls',
        '--service-account',
        'bookinfo-ratings',
        '--ca-address',
        `127.0.0.1:${weftd.caPort}`,
        '--ca-root-cert',
        join(caDir, 'root-cert.pem'),
        '--ca-token-file',
        tokenFile,
        '--ca-server-name',
        'localhost',
      ],
    });
    const entries = await until(
      syncz,
      (es) => {
        const e = es.find((x) => x.id === ratingsNode);
        return e !== undefined && Object.keys(e.types).length > 0 && Object.values(e.types).every((t) => t.status === 'ACKED');
      },
      'the proxy to sync',
    );
    const entry = entries.find((e) => e.id === ratingsNode)!;
    expect(entry).toMatchObject({ authenticated: true, identity: spiffe('bookinfo-ratings') });
    expect(['token', 'mtls']).toContain(entry.authn);
    expect(entries.filter((e) => e.id === ratingsNode)).toHaveLength(1);
  });
});
