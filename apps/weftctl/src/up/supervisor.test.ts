// The supervisor with real processes: a small Node program stands in for a component (it listens
// on the port it is given, or fails at once, or starts a child of its own), killed with real
// signals; what is left running is read from /proc.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alive, stopGroups } from './processes.ts';
import { type Backoff, backoffDelay, defaultBackoff, Supervised, type SupervisedOptions, type SupervisionEvent } from './supervisor.ts';

const fixture = `
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
const [mode, port] = process.argv.slice(2);
const say = (msg, fields = {}) => console.log(JSON.stringify({ msg, ...fields }));
if (mode === 'fail') {
  say('failing');
  process.exit(3);
}
if (mode === 'parent') {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  say('child', { pid: child.pid });
}
const server = createServer((s) => s.end('hello'));
server.on('error', (e) => { say('cannot listen', { error: e.message }); process.exit(1); });
server.listen(Number(port ?? 0), '127.0.0.1', () => say('listening', { port: server.address().port }));
`;

let dir: string;
let script: string;
const marker = `WEFT_SUPERVISOR_TEST_${process.pid}`;
const running: Supervised[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-supervisor-'));
  script = join(dir, 'component.mjs');
  await writeFile(script, fixture);
  return async () => {
    await rm(dir, { recursive: true, force: true });
  };
});

afterEach(async () => {
  const left = running.splice(0).flatMap((s) => s.stop() ?? []);
  await stopGroups(left, 2000);
  for (const s of servers.splice(0)) s.close();
});

/** Every process carrying this test's marker in its environment (children of children too). */
function markedProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`${marker}=1`)) pids.push(Number(entry));
    } catch {
      // Gone, or not ours.
    }
  }
  return pids;
}

const fast: Backoff = { initialMs: 50, maxMs: 400, stableMs: 2000, crashLoopAfter: 3 };

function supervised(
  name: string,
  args: () => string[],
  backoff: Backoff = fast,
  listens?: SupervisedOptions['listens'],
): { s: Supervised; events: SupervisionEvent[]; next: (type: SupervisionEvent['type'], ms?: number) => Promise<SupervisionEvent> } {
  const s = new Supervised({
    name,
    args: () => [script, ...args()],
    logFile: join(dir, `${name}.log`),
    env: { ...process.env, [marker]: '1' },
    ready: (l) => l.msg === 'listening',
    backoff,
    ...(listens ? { listens } : {}),
  });
  running.push(s);
  const events: SupervisionEvent[] = [];
  const waiters: { type: string; resolve: (e: SupervisionEvent) => void }[] = [];
  s.onEvent((e) => {
    events.push(e);
    for (const w of [...waiters]) {
      if (w.type !== e.type) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  });
  const next = (type: SupervisionEvent['type'], ms = 10_000) =>
    new Promise<SupervisionEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} event within ${ms} ms; events: ${JSON.stringify(events)}`)), ms);
      waiters.push({
        type,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  return { s, events, next };
}

function connect(port: number): Promise<string> {
  return fetch(`http://127.0.0.1:${port}`).then(
    () => 'http',
    (e: Error) => ((e.cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED' ? 'refused' : 'answered'),
  );
}

describe('backoff', () => {
  it('is 0.2 s doubling to 10 s (the values weftctl up uses, see the README)', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(defaultBackoff, n))).toEqual([200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    expect(defaultBackoff.stableMs).toBe(10_000);
    expect(defaultBackoff.crashLoopAfter).toBe(5);
  });
});

describe('Supervised', () => {
  it('restarts a killed component on the port it had, says so in its log, and counts the restart', async () => {
    let port = 0;
    const { s, next } = supervised('listener', () => ['listen', String(port)]);
    s.start();
    port = Number((await s.waitFor((l) => l.msg === 'listening', 'listening', 10_000)).port);
    s.supervise();
    const first = s.pid;
    process.kill(first, 'SIGKILL');
    const exited = await next('exited');
    expect(exited).toMatchObject({ type: 'exited', reason: 'was killed (SIGKILL)', restartInMs: 50, failures: 1 });
    const back = await next('ready');
    expect(back).toMatchObject({ restarts: 1 });
    expect(s.pid).not.toBe(first);
    expect(Number((await s.waitFor((l) => l.msg === 'listening', 'listening', 1000)).port)).toBe(port);
    expect(await connect(port)).not.toBe('refused');
    expect(s.status()).toMatchObject({ phase: 'running', restarts: 1, lastExit: { reason: 'was killed (SIGKILL)' } });
    // Its log, in order: the first run's line, the supervisor's two lines, the second run's line.
    const log = (await readFile(s.logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; scope?: string });
    expect(log.map((l) => (l.scope === 'supervisor' ? `supervisor: ${l.msg}` : l.msg))).toEqual([
      'listening',
      expect.stringMatching(/^supervisor: listener was killed \(SIGKILL\) after [\d.]+ s; restarting in [\d.]+ s$/),
      'supervisor: starting listener again (restart 1)',
      'listening',
    ]);
  });

  it('backs off longer on each quick exit, says "crash loop" once, and keeps trying', async () => {
    const { s, events, next } = supervised('failing', () => ['fail']);
    s.start();
    s.supervise();
    const loop = await next('crash-loop', 10_000);
    expect(loop).toMatchObject({ failures: 3, reason: 'exited with status 3', retryEveryMs: 400 });
    // Two more exits at the longest wait: still retried.
    while (events.filter((e) => e.type === 'exited').length < 5) await next('exited', 5000);
    const waits = events.flatMap((e) => (e.type === 'exited' ? [e.restartInMs] : []));
    expect(waits.slice(0, 5)).toEqual([50, 100, 200, 400, 400]);
    expect(events.filter((e) => e.type === 'crash-loop')).toHaveLength(1);
    expect(s.status()).toMatchObject({ crashLoop: true });
    expect(s.status().restarts).toBeGreaterThanOrEqual(4);
  });

  it('says which port is taken when it cannot restart, retries, and comes back on that port once it is free', async () => {
    let port = 0;
    const { s, events } = supervised('blocked', () => ['listen', String(port)], fast, () => [{ address: '127.0.0.1', port, what: 'its port' }]);
    s.start();
    port = Number((await s.waitFor((l) => l.msg === 'listening', 'listening', 10_000)).port);
    s.supervise();
    // Someone takes the port the moment it is free.
    const exited = s.current.exited;
    process.kill(s.pid, 'SIGKILL');
    await exited;
    const squatter = createServer();
    servers.push(squatter);
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', () => r()));
    const until = async (what: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return what();
    };
    expect(await until(() => events.filter((e) => e.type === 'ports-busy').length >= 2, 5000)).toBe(true);
    const busy = events.find((e) => e.type === 'ports-busy');
    expect(busy).toMatchObject({ busy: [{ address: '127.0.0.1', port, what: 'its port' }] });
    const waits = events.flatMap((e) => (e.type === 'ports-busy' ? [e.restartInMs] : []));
    expect(waits[1]!).toBeGreaterThan(waits[0]!);
    expect(s.status().phase).toBe('waiting');
    expect(await readFile(s.logFile, 'utf8')).toContain(`cannot restart blocked: 127.0.0.1:${port} (its port) in use by another process; retrying in`);
    await new Promise<void>((r) => squatter.close(() => r()));
    expect(await until(() => events.some((e) => e.type === 'ready'), 5000)).toBe(true);
    expect(Number((await s.waitFor((l) => l.msg === 'listening', 'listening', 1000)).port)).toBe(port);
  });

  it('leaves nothing of a killed component behind: what it started dies with it', async () => {
    const { s, next } = supervised('parent', () => ['parent']);
    s.start();
    const child = Number((await s.waitFor((l) => l.msg === 'child', 'its child', 10_000)).pid);
    await s.waitFor((l) => l.msg === 'listening', 'listening', 10_000);
    s.supervise();
    expect(alive(child)).toBe(true);
    process.kill(s.pid, 'SIGKILL');
    await next('exited');
    // The group is killed at once, before the restart.
    for (let i = 0; i < 50 && alive(child); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(child)).toBe(false);
    await next('ready');
    const stopping = s.stop();
    expect(stopping).toBeDefined();
    await stopGroups([stopping!], 2000);
    for (let i = 0; i < 50 && markedProcesses().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(markedProcesses()).toEqual([]);
  });

  it('stopped while waiting to restart: no new process, nothing left to stop, nothing signalled twice', async () => {
    const slow: Backoff = { initialMs: 3000, maxMs: 3000, stableMs: 10_000, crashLoopAfter: 5 };
    const { s, events, next } = supervised('waiting', () => ['fail'], slow);
    s.start();
    s.supervise();
    const exited = await next('exited');
    expect(exited).toMatchObject({ restartInMs: 3000 });
    expect(s.status()).toMatchObject({ phase: 'waiting', nextStartAt: expect.any(String) });
    // Nothing runs, so there is nothing for the caller to signal (the old group id may be anyone's by now).
    expect(s.stop()).toBeUndefined();
    expect(s.status().phase).toBe('stopped');
    await new Promise((r) => setTimeout(r, 3500));
    expect(events.filter((e) => e.type === 'restarted')).toEqual([]);
    expect(markedProcesses()).toEqual([]);
  });

  it('stopped while a restarted process is starting: that process is the one handed back, and no restart follows its exit', async () => {
    let port = 0;
    const { s, events, next } = supervised('restarting', () => ['listen', String(port)]);
    s.start();
    port = Number((await s.waitFor((l) => l.msg === 'listening', 'listening', 10_000)).port);
    s.supervise();
    process.kill(s.pid, 'SIGKILL');
    const restarted = await next('restarted');
    const c = s.stop();
    expect(c?.pid).toBe((restarted as { pid: number }).pid);
    const { killed } = await stopGroups([c!], 2000);
    expect(killed).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(events.filter((e) => e.type === 'restarted')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'exited')).toHaveLength(1);
    expect(s.status().phase).toBe('stopped');
    expect(markedProcesses()).toEqual([]);
  });

  it('before supervise(), an exit is reported and not restarted (weftctl up fails the start instead)', async () => {
    const { s, events, next } = supervised('early', () => ['fail']);
    s.start();
    const exited = await next('exited');
    expect(exited).toMatchObject({ reason: 'exited with status 3' });
    expect((exited as { restartInMs?: number }).restartInMs).toBeUndefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(events.map((e) => e.type)).toEqual(['exited']);
    expect(s.status().phase).toBe('exited');
  });
});
