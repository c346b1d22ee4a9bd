// A fake xDS client against the mesh, as another local process would try it (issue 11, finding 4):
// in the mesh `weftctl up` runs (startLocalMesh, its own loopback net) weftd has no plaintext xDS
// port and refuses impostors on its TLS port, so `weftctl apply` neither waits for them nor fails,
// and `weftctl proxy-status` never lists them. With the plaintext port opened on purpose
// (`--plaintext-xds`; here a weftd process under a stand-in mesh.json), an unauthenticated client
// that never ACKs is marked in proxy-status and apply does not wait for it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChannelCredentials, credentials, Metadata, type StatusObject } from '@grpc/grpc-js';
import { CertificateAuthority } from '@weft/citadel';
import { silentLogger } from '@weft/model';
import { createAdsClient, type DiscoveryResponse__Output, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWeftctlCommand } from '../testing.ts';
import { type LocalMesh, repoRoot, startLocalMesh } from './mesh.ts';
import { type MeshState, processStart, writeState } from './state.ts';

const spiffe = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const networking = join(repoRoot, 'examples/bookinfo/networking');

const weftctl = (stateDir: string, ...args: string[]) => runWeftctlCommand(args, stateDir);

function structOf(metadata: Record<string, string>) {
  return { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v, kind: 'stringValue' as const }])) };
}

/**
 * An ADS stream asking for clusters. It ACKs what it gets when `ack`, otherwise never answers.
 * `outcome` resolves with the first response or with the status the stream ended with.
 */
function fakeClient(target: string, creds: ChannelCredentials, metadata: Metadata, node: { id: string; metadata?: Record<string, string> }, ack = false) {
  const client = createAdsClient(target, creds);
  const stream = client.StreamAggregatedResources(metadata);
  const outcome = new Promise<{ response?: DiscoveryResponse__Output; status?: StatusObject }>((resolve) => {
    stream.on('data', (r: DiscoveryResponse__Output) => {
      if (ack) stream.write({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: [] });
      resolve({ response: r });
    });
    stream.on('status', (status: StatusObject) => resolve({ status }));
    stream.on('error', () => {});
  });
  stream.write({ node: { id: node.id, metadata: structOf(node.metadata ?? {}) }, type_url: TypeUrl.Cluster, resource_names: [] });
  return {
    outcome,
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

interface SynczEntry {
  id: string;
  authenticated: boolean;
  identity?: string;
  types: Record<string, { status: string }>;
}

describe('the local mesh (weftctl up): plaintext xDS off, impostors refused', () => {
  let dir: string;
  let stateDir: string;
  let mesh: LocalMesh | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weftctl-xds-auth-'));
    stateDir = join(dir, 'state');
    mesh = await startLocalMesh({ stateDir, loopbackNet: '127.0.62', ingressPort: 0, timeoutMs: 150_000, addons: false });
  }, 180_000);

  afterAll(async () => {
    await mesh?.stop(3000);
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('weftd serves xDS only on its TLS port, and every proxy there proved its own identity', async () => {
    const s = mesh!.state;
    expect(s.weftd!.xdsPort).toBeUndefined();
    const syncz = (await (await fetch(`http://127.0.0.1:${s.weftd!.monitoringPort}/debug/syncz`)).json()) as SynczEntry[];
    const expected = new Map([...s.proxies, s.ingress!].map((p) => [p.nodeId, spiffe(p.namespace, p.serviceAccount)]));
    expect(syncz.map((e) => e.id).sort()).toEqual([...expected.keys()].sort());
    for (const e of syncz) expect({ id: e.id, authenticated: e.authenticated, identity: e.identity }).toEqual({ id: e.id, authenticated: true, identity: expected.get(e.id) });
  });

  it('a fake client claiming ratings-v1 is refused; apply neither waits for it nor fails; proxy-status never lists it', async () => {
    const s = mesh!.state;
    const ratings = s.proxies.find((p) => p.name === 'ratings-v1')!;
    const target = `127.0.0.1:${s.weftd!.caPort}`;
    const root = await readFile(join(s.caDir, 'root-cert.pem'));
    // What another process could try: no credentials, or reviews' own token (say, from a
    // compromised reviews) presented with ratings' node id and service account.
    const reviewsToken = (await readFile(join(stateDir, 'tokens', 'default.bookinfo-reviews.token'), 'utf8')).trim();
    const node = { id: ratings.nodeId, metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'bookinfo-ratings' } };
    const codes: number[] = [];
    let attacking = true;
    const attack = (async () => {
      while (attacking) {
        for (const md of [new Metadata(), bearer(reviewsToken)]) {
          const c = fakeClient(target, credentials.createSsl(root), md, node);
          const { response, status } = await c.outcome;
          c.close();
          codes.push(response ? -1 : (status?.code ?? -2));
        }
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      const applied = await weftctl(stateDir, 'apply', '-f', join(networking, 'destination-rule-all.yaml'), '-f', join(networking, 'virtual-service-all-v1.yaml'));
      const applyMs = Date.now() - t0;
      expect(applied.err).not.toContain('not yet ACKed');
      expect(applied.code).toBe(0);
      // It waited for the seven real proxies only: well within its 15 s default.
      expect(applyMs).toBeLessThan(10_000);
      const status = await weftctl(stateDir, 'proxy-status');
      expect(status.code).toBe(0);
      const rows = status.out.split('\n').filter((l) => /^\S+\.(default|istio-system)\s/.test(l));
      expect(rows.map((l) => l.split(/\s+/)[0]).sort()).toEqual([
        'details-v1.default',
        'istio-ingressgateway.istio-system',
        'productpage-v1.default',
        'ratings-v1.default',
        'reviews-v1.default',
        'reviews-v2.default',
        'reviews-v3.default',
      ]);
      expect(status.out).not.toContain('UNAUTHENTICATED');
      for (const row of rows) expect(row.split(/\s{3,}/).slice(2, 6), row).toEqual(['SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']);
    } finally {
      attacking = false;
      await attack;
    }
    expect(codes.length).toBeGreaterThanOrEqual(4);
    // Every attempt ended: UNAUTHENTICATED (16) without credentials, PERMISSION_DENIED (7) with reviews' token.
    expect(new Set(codes)).toEqual(new Set([16, 7]));
    const log = await readFile(s.weftd!.logFile, 'utf8');
    expect(log).toContain('"msg":"xDS stream refused: node does not match the authenticated identity"');
    expect(log).toContain(`"node":"${ratings.nodeId}"`);
  }, 60_000);
});

describe('plaintext xDS on (weftctl up --plaintext-xds): unauthenticated clients are marked and not waited for', () => {
  let dir: string;
  let weftd: ChildProcess | undefined;
  let state: MeshState;
  let ca: CertificateAuthority;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weftctl-plaintext-xds-'));
    const configDir = join(dir, 'config');
    const caDir = join(dir, 'ca');
    await mkdir(configDir);
    await mkdir(caDir);
    await writeFile(
      join(configDir, 'ratings.yaml'),
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.63.12}]
`,
    );
    const logFile = join(dir, 'weftd.log');
    weftd = spawn(process.execPath, [join(repoRoot, 'apps/weftd/bin/weftd.js'), '--config-dir', configDir, '--ca-dir', caDir, '--xds-port', '0', '--ca-port', '0', '--monitoring-port', '0', '--debounce-ms', '20'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`weftd not ready:\n${text}`)), 30_000);
      weftd!.stderr!.on('data', (b: Buffer) => {
        text += b.toString();
        void writeFile(logFile, text);
        const line = text.split('\n').find((l) => l.includes('"msg":"weftd ready"'));
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        }
      });
    });
    ca = await CertificateAuthority.open(caDir, { logger: silentLogger });
    const pidStart = processStart(process.pid);
    state = {
      pid: process.pid,
      ...(pidStart ? { pidStart } : {}),
      startedAt: new Date().toISOString(),
      stateDir: dir,
      configDir,
      caDir,
      weftd: { pid: weftd.pid!, xdsPort: Number(ready.xdsPort), caPort: Number(ready.caPort), monitoringPort: Number(ready.monitoringPort), logFile },
      proxies: [],
      apps: [],
    };
    await writeState(state);
  }, 60_000);

  afterAll(async () => {
    weftd?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('proxy-status marks the plaintext client UNAUTHENTICATED; apply waits only for the authenticated one, which ACKs', async () => {
    const nodeId = 'sidecar~127.0.63.12~ratings-v1.default~default.svc.cluster.local';
    const genuine = fakeClient(`127.0.0.1:${state.weftd!.caPort}`, credentials.createSsl(await readFile(join(state.caDir, 'root-cert.pem'))), bearer(ca.issueBootstrapToken('default', 'bookinfo-ratings')), { id: nodeId, metadata: { SERVICE_ACCOUNT: 'bookinfo-ratings' } }, true);
    // Never ACKs: were it counted, apply would wait for it and fail.
    const squatter = fakeClient(`127.0.0.1:${state.weftd!.xdsPort}`, credentials.createInsecure(), new Metadata(), { id: nodeId });
    try {
      expect((await genuine.outcome).response).toBeDefined();
      expect((await squatter.outcome).response).toBeDefined();
      const status = await weftctl(dir, 'proxy-status');
      expect(status.code).toBe(0);
      const rows = status.out.split('\n').filter((l) => l.startsWith('ratings-v1.default'));
      expect(rows).toHaveLength(2);
      expect(rows.filter((r) => r.includes(`weftd 127.0.0.1:${state.weftd!.xdsPort} UNAUTHENTICATED`))).toHaveLength(1);
      expect(rows.filter((r) => r.includes(`weftd 127.0.0.1:${state.weftd!.caPort}`) && !r.includes('UNAUTHENTICATED'))).toHaveLength(1);

      const vs = join(dir, 'vs.yaml');
      await writeFile(
        vs,
        `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
      weight: 100
`,
      );
      const applied = await weftctl(dir, 'apply', '-f', vs, '--wait', '8');
      expect(applied.err).not.toContain('not yet ACKed');
      expect(applied.code).toBe(0);
    } finally {
      genuine.close();
      squatter.close();
    }
  });
});
