// weftctl down: stopping a local mesh from another terminal, with processes standing in for the
// mesh's (a "weftctl up" owner that stops its component on SIGTERM, and components that carry the
// mesh's environment marker).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stopLocalMesh } from './mesh.ts';
import { alive } from './processes.ts';
import { type MeshState, meshEnvVar, processStart, readState, writeState } from './state.ts';

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A component: sleeps, carrying the mesh's marker (or not) in its environment. */
function component(stateDir: string | undefined): ChildProcess {
  const c = spawn('sleep', ['60'], { env: { ...process.env, ...(stateDir ? { [meshEnvVar]: stateDir } : {}) }, stdio: 'ignore' });
  children.push(c);
  return c;
}

async function stateWith(stateDir: string, owner: number, pids: number[]): Promise<void> {
  const s: MeshState = {
    pid: owner,
    startedAt: new Date().toISOString(),
    stateDir,
    configDir: join(stateDir, 'config'),
    caDir: join(stateDir, 'ca'),
    proxies: [],
    apps: pids.map((pid, i) => ({ workload: `app-${i}`, service: 'app', version: 'v1', pid, address: '127.0.0.1', port: 1, logFile: '' })),
  };
  const start = processStart(owner);
  if (start) s.pidStart = start;
  await writeState(s);
}

describe('weftctl down (stopLocalMesh)', () => {
  it('asks the running weftctl up to stop (SIGTERM), which stops what it started', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-down-'));
    dirs.push(dir);
    const comp = component(dir);
    // The owner: stops its component and exits on SIGTERM, as weftctl up does.
    const owner = spawn(
      process.execPath,
      ['-e', `process.on('SIGTERM', () => { process.kill(${comp.pid}, 'SIGTERM'); process.exit(0); }); setInterval(() => {}, 1000); console.log('ready');`],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    children.push(owner);
    // Its SIGTERM handler is in place once it says so.
    await once(owner.stdout!, 'data');
    await stateWith(dir, owner.pid!, [comp.pid!]);
    const done = await stopLocalMesh(dir, 5000);
    expect(done).toEqual({ owner: true, leftovers: 0 });
    if (comp.exitCode === null && comp.signalCode === null) await once(comp, 'exit');
    expect(comp.signalCode).toBe('SIGTERM');
    expect(alive(owner.pid!)).toBe(false);
    expect(await readState(dir)).toBeUndefined();
  });

  it('stops what a killed weftctl up left running, and only processes of this mesh', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-down-'));
    dirs.push(dir);
    const left = [component(dir), component(dir)];
    // Restarted by the supervisor just before its owner was killed: not in mesh.json yet.
    const unlisted = component(dir);
    const stranger = component(undefined);
    // The owner is gone: a pid that no longer runs.
    const gone = spawn('true');
    await once(gone, 'exit');
    await stateWith(dir, gone.pid!, [...left.map((c) => c.pid!), stranger.pid!]);
    const done = await stopLocalMesh(dir, 5000);
    expect(done).toEqual({ owner: false, leftovers: 3 });
    await Promise.all([...left, unlisted].map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    // A process that does not carry this mesh's marker (a reused pid) is left alone.
    expect(alive(stranger.pid!)).toBe(true);
    expect(await readState(dir)).toBeUndefined();
  });

  it('says there is nothing to stop when no mesh ran from the directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-down-'));
    dirs.push(dir);
    expect(await stopLocalMesh(dir)).toBeUndefined();
  });
});
