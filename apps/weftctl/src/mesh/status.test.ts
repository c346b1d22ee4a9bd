// `weftctl status` and the other commands when weftd does not answer, against a mesh.json that
// stands in for a running `weftctl up` (this process is its owner; weftd's ports are closed ports,
// its pid one that has exited). The whole mesh with a live weftd: e2e/bookinfo's supervision test.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWeftctlCommand } from '../testing.ts';
import { type MeshState, processStart, writeState } from '../up/state.ts';
import { rejectedConfigText } from './config-problems.ts';
import { age } from './status.ts';

let dir: string;
let closedPort: number;
let closedAdminPort: number;
let deadPid: number;

const weftctl = (...args: string[]) => runWeftctlCommand(args, dir);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weftctl-status-'));
  const closed = async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  };
  closedPort = await closed();
  do closedAdminPort = await closed();
  while (closedAdminPort === closedPort);
  const gone = spawn('true');
  await once(gone, 'exit');
  deadPid = gone.pid!;
  const now = Date.now();
  const state: MeshState = {
    pid: process.pid,
    ...(processStart(process.pid) ? { pidStart: processStart(process.pid)! } : {}),
    startedAt: new Date(now - 600_000).toISOString(),
    readyAt: new Date(now - 590_000).toISOString(),
    url: 'http://127.0.0.1:8080/productpage',
    stateDir: dir,
    configDir: join(dir, 'config'),
    caDir: join(dir, 'ca'),
    weftd: {
      pid: deadPid,
      xdsPort: closedPort,
      caPort: closedPort,
      monitoringPort: closedPort,
      logFile: join(dir, 'logs/weftd.log'),
      run: {
        phase: 'waiting',
        restarts: 2,
        since: new Date(now - 5000).toISOString(),
        failures: 1,
        crashLoop: false,
        lastExit: { at: new Date(now - 1000).toISOString(), reason: 'was killed (SIGKILL)', ranMs: 4000 },
        nextStartAt: new Date(now + 200).toISOString(),
      },
    },
    proxies: [
      {
        type: 'sidecar',
        name: 'ratings-v1',
        namespace: 'default',
        nodeId: 'sidecar~127.0.0.12~ratings-v1.default~default.svc.cluster.local',
        address: '127.0.0.12',
        serviceAccount: 'bookinfo-ratings',
        labels: { app: 'ratings', version: 'v1' },
        pid: process.pid,
        adminAddress: '127.0.0.1',
        adminPort: closedAdminPort,
        logFile: join(dir, 'logs/ratings-v1.proxy.log'),
        run: { phase: 'starting', restarts: 3, since: new Date(now - 2000).toISOString(), failures: 3, crashLoop: false },
      },
    ],
    apps: [
      {
        workload: 'ratings-v1',
        service: 'ratings',
        version: 'v1',
        address: '127.0.0.1',
        port: 1,
        pid: process.pid,
        logFile: join(dir, 'logs/ratings-v1.app.log'),
        run: { phase: 'running', restarts: 1, since: new Date(now - 125_000).toISOString(), failures: 0, crashLoop: false, lastExit: { at: new Date(now - 125_500).toISOString(), reason: 'exited with status 1', ranMs: 60_000 } },
      },
    ],
  };
  await writeState(state);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a command against a weftd that does not answer', () => {
  it('says so plainly with its address and log, exit 1 (not an internal error)', async () => {
    for (const command of [['proxy-status'], ['apply', '-f', join(import.meta.dirname, '../../../../examples/bookinfo/networking/virtual-service-all-v1.yaml')]]) {
      const r = await weftctl(...command);
      expect(r.err, command.join(' ')).toBe(
        `weftctl: weftd is not answering at http://127.0.0.1:${closedPort} (it is restarting: it was killed (SIGKILL); see ${join(dir, 'logs/weftd.log')}; \`weftctl status\` shows every component)\n`,
      );
      expect(r.code).toBe(1);
    }
  });
});

describe('a command against a proxy whose admin port does not answer', () => {
  it('names the proxy, its address and its log, exit 1', async () => {
    const r = await weftctl('proxy-config', 'routes', 'ratings-v1');
    expect(r.err).toBe(
      `weftctl: the proxy of ratings-v1.default is not answering at http://127.0.0.1:${closedAdminPort} (it is restarting: it exited; see ${join(dir, 'logs/ratings-v1.proxy.log')}; \`weftctl status\` shows every component)\n`,
    );
    expect(r.code).toBe(1);
  });
});

describe('weftctl status', () => {
  it('lists every component from mesh.json while weftd is down, and says config is unknown; exit 1', async () => {
    const r = await weftctl('status');
    expect(r.code).toBe(1);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe(`mesh: http://127.0.0.1:8080/productpage (weftctl up pid ${process.pid}, since ${new Date(Date.parse(lines[0]!.split('since ')[1]!.split(';')[0]!)).toISOString()}; state ${dir})`);
    expect(lines[1]).toMatch(/^NAME\s+KIND\s+PID\s+STATE\s+RESTARTS\s+UPTIME\s+LAST EXIT\s+LOG$/);
    const cells = (line: string) => line.split(/ {3,}/);
    expect(cells(lines[2]!)).toEqual(['weftd', 'weftd', String(deadPid), expect.stringMatching(/^restarting \(next start in \d\.\ds\)$/), '2', '-', expect.stringMatching(/^was killed \(SIGKILL\) \d+s ago$/), join(dir, 'logs/weftd.log')]);
    expect(cells(lines[3]!)).toEqual(['ratings-v1', 'app', String(process.pid), 'running', '1', expect.stringMatching(/^2m\d+s$/), expect.stringMatching(/^exited with status 1 2m\d+s ago$/), join(dir, 'logs/ratings-v1.app.log')]);
    expect(cells(lines[4]!)).toEqual(['ratings-v1', 'sidecar', String(process.pid), 'starting', '3', expect.stringMatching(/^\d+s$/), '-', join(dir, 'logs/ratings-v1.proxy.log')]);
    expect(lines[5]).toBe(`config: unknown: weftd is not answering at http://127.0.0.1:${closedPort} (it is restarting: it was killed (SIGKILL); see ${join(dir, 'logs/weftd.log')}; \`weftctl status\` shows every component)`);
    const json = JSON.parse((await weftctl('status', '-o', 'json')).out) as { components: { name: string; state: string; restarts: number }[]; rejectedConfig: unknown };
    expect(json.components.map((c) => [c.name, c.state, c.restarts])).toEqual([
      ['weftd', 'restarting', 2],
      ['ratings-v1', 'running', 1],
      ['ratings-v1', 'starting', 3],
    ]);
    expect(json.rejectedConfig).toBeNull();
  });

  it('reads ages as kubectl does', () => {
    expect([0, 59, 60, 61, 3599, 3600, 3660, 86_400, 90_000].map(age)).toEqual(['0s', '59s', '1m', '1m1s', '59m59s', '1h', '1h1m', '1d', '1d1h']);
  });

  it('says which file weftd rejected, where and why', () => {
    const p = (file: string, line: number) => ({ severity: 'error' as const, file, line, column: 9, message: 'weight -5 < 0', text: `${file}:${line}:9: error: VirtualService default/reviews: spec.http[0].route[0].weight: weight -5 < 0` });
    expect(rejectedConfigText(new Map())).toBe('');
    expect(rejectedConfigText(new Map([['/c/a.yaml', [p('/c/a.yaml', 14)]]]))).toBe(
      'config: 1 file rejected: /c/a.yaml:14:9: error: VirtualService default/reviews: spec.http[0].route[0].weight: weight -5 < 0\n',
    );
    expect(
      rejectedConfigText(
        new Map([
          ['/c/a.yaml', [p('/c/a.yaml', 14)]],
          ['/c/b.yaml', [p('/c/b.yaml', 3)]],
        ]),
      ),
    ).toBe(`config: 2 files rejected (the last accepted version of their objects stays in force):\n  ${p('/c/a.yaml', 14).text}\n  ${p('/c/b.yaml', 3).text}\n`);
  });
});
