// ownerUid (local mode's trust boundary): every port the proxy opens serves only the owner's
// processes. Here the "other user" is the proxy's own process seen against another owner UID;
// as root, a real second UID (setpriv) is refused too. The whole local mesh is tried from another
// UID in e2e/bookinfo (trust-boundary.e2e.test.ts).
import { spawn } from 'node:child_process';
import net from 'node:net';
import { OwnerGuard } from '@weft/guard';
import { needs } from '@weft/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createClusterManager } from '../cluster/manager.ts';
import type { XdsSnapshot } from '../core/types.ts';
import { ListenerManager } from '../listener/manager.ts';
import { type RunningProxy, startProxy } from './proxy.ts';
import { createHttpRouting } from './routing.ts';

const uid = process.getuid!();
const otherUid = 47_116;
const otherUidSkip = needs({ root: true, tools: ['setpriv', 'curl'] });
const address = `127.0.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 250)}`;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What a client gets from `host:port` for one HTTP GET: the status line, or how the connection ended. */
function get(host: string, port: number, path = '/'): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, host);
    let data = '';
    c.on('connect', () => c.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`));
    c.on('data', (b) => (data += b.toString()));
    c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    c.on('close', () => resolve(data.split('\r\n')[0] || 'closed without an answer'));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, address, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function proxyOwnedBy(ownerUid: number, logs: Record<string, unknown>[]): Promise<RunningProxy> {
  const p = await startProxy({
    xdsAddress: '127.0.0.1:1',
    node: { type: 'sidecar', ip: address, pod: 'owner-test', namespace: 'default', labels: {} },
    mode: 'local',
    bindAddress: address,
    adminHost: address,
    adminPort: 0,
    healthHost: address,
    healthPort: 0,
    statsPort: 0,
    statusPort: 0,
    ownerUid,
    logLevel: 'info',
    logSink: (l) => logs.push(JSON.parse(l) as Record<string, unknown>),
  });
  cleanups.push(() => p.close());
  return p;
}

describe('proxy ownerUid', () => {
  it('serves admin, health, stats and status to the owner', async () => {
    const p = await proxyOwnedBy(uid, []);
    expect(await get(address, p.adminPort, '/ready')).toBe('HTTP/1.1 503 Service Unavailable');
    expect(await get(address, p.healthPort!, '/healthz/ready')).toBe('HTTP/1.1 503 Service Unavailable');
    expect(await get(address, p.telemetry!.statsPort!, '/stats/prometheus')).toBe('HTTP/1.1 200 OK');
    expect(await get(address, p.telemetry!.statusPort!, '/healthz/ready')).toBe('HTTP/1.1 503 Service Unavailable');
    expect(p.stats.get('owner_guard.downstream_cx_refused')).toBe(0);
  });

  it('resets any other UID on each of them, counts it in /stats and logs it', async () => {
    const logs: Record<string, unknown>[] = [];
    const p = await proxyOwnedBy(otherUid, logs);
    const ports = { admin: p.adminPort, health: p.healthPort!, stats: p.telemetry!.statsPort!, status: p.telemetry!.statusPort! };
    for (const [name, port] of Object.entries(ports)) expect(await get(address, port, '/'), name).toBe('ECONNRESET');
    expect(await get(address, p.adminPort, '/quitquitquit')).toBe('ECONNRESET');
    expect(p.stats.get('owner_guard.downstream_cx_refused')).toBe(5);
    expect(p.stats.get('owner_guard.admin.downstream_cx_refused')).toBe(2);
    expect(p.stats.get('owner_guard.status.downstream_cx_refused')).toBe(1);
    const refusals = logs.filter((l) => l.msg === 'connection refused: the peer is not the mesh owner');
    expect(refusals.map((l) => l.port).sort()).toEqual(['admin', 'health', 'stats', 'status']);
    expect(refusals[0]).toMatchObject({ level: 'warn', scope: 'guard', peerUid: uid, ownerUid: otherUid, node: `sidecar~${address}~owner-test.default~default.svc.cluster.local` });
    expect(logs.some((l) => l.msg === 'owner-only ports' && l.ownerUid === otherUid)).toBe(true);
  });

  it('is refused in capture mode (the application runs as another UID than the proxy there)', async () => {
    await expect(startProxy({ xdsAddress: '127.0.0.1:1', node: { type: 'sidecar', ip: address, pod: 'x', namespace: 'default', labels: {} }, mode: 'capture', ownerUid: uid })).rejects.toThrow(/ownerUid is for local mode/);
  });
});

describe('listener manager protect (every listener it binds)', () => {
  const empty: XdsSnapshot = { versions: {}, listeners: new Map(), routes: new Map(), clusters: new Map(), endpoints: new Map(), secrets: new Map() };

  async function outbound(guard: OwnerGuard): Promise<number> {
    const clusters = createClusterManager();
    const listeners = new ListenerManager({
      kind: 'sidecar',
      mode: 'local',
      clusters,
      routing: createHttpRouting(clusters),
      bindAddress: address,
      outboundPort: await freePort(),
      protect: (s, port) => void guard.protect(s, port),
    });
    cleanups.push(async () => {
      await listeners.close(0);
      await clusters.close();
    });
    await listeners.update(empty);
    const b = listeners.bound().find((x) => x.name === 'local-outbound')!;
    return b.port;
  }

  it('the outbound HTTP proxy (15001) answers the owner and resets others before reading the request', async () => {
    const mine = await outbound(new OwnerGuard({ ownerUid: uid }));
    expect(await get(address, mine, 'http://ratings:9080/ratings/0')).toMatch(/^HTTP\/1\.1 /);
    const guard = new OwnerGuard({ ownerUid: otherUid });
    const theirs = await outbound(guard);
    expect(await get(address, theirs, 'http://ratings:9080/ratings/0')).toBe('ECONNRESET');
    expect(guard.refusedCounts().get('local-outbound')).toBe(1);
  });
});

describe.skipIf(otherUidSkip !== undefined)(`a real second UID (${otherUid}, setpriv) against a proxy owned by root`, () => {
  it('is refused on admin (POST /quitquitquit does nothing) while root is served', async () => {
    let quits = 0;
    const p = await startProxy({
      xdsAddress: '127.0.0.1:1',
      node: { type: 'sidecar', ip: address, pod: 'owner-test', namespace: 'default', labels: {} },
      mode: 'local',
      bindAddress: address,
      adminHost: address,
      adminPort: 0,
      healthPort: -1,
      ownerUid: uid,
      telemetry: false,
      logSink: () => {},
      onQuit: () => quits++,
    });
    cleanups.push(() => p.close());
    const curl = (asOther: boolean) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const argv = ['curl', '-sS', '--max-time', '5', '-X', 'POST', `http://${address}:${p.adminPort}/quitquitquit`];
        const c = asOther ? spawn('setpriv', [`--reuid=${otherUid}`, `--regid=${otherUid}`, '--clear-groups', '--', ...argv]) : spawn(argv[0]!, argv.slice(1));
        let err = '';
        c.stderr.on('data', (b) => (err += b));
        c.on('exit', (code) => resolve({ code, err }));
      });
    const other = await curl(true);
    expect(other.code).not.toBe(0);
    // Reset at accept: curl reports it as a failed connect or a failed receive, depending on when it looks.
    expect(other.err, other.err).toMatch(/reset by peer|Empty reply|Recv failure|Failed to connect/);
    expect(quits).toBe(0);
    expect((await curl(false)).code).toBe(0);
    expect(quits).toBe(1);
  });
});
