// withClusterLock: shared holders run together, an exclusive one waits for them (and they for it),
// and a lock that cannot be had in time fails naming the file. Real flock(1) on a temporary file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOnPath } from './host.ts';
import { clusterLockFile, withClusterLock } from './kube.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!findOnPath('flock'))('withClusterLock', () => {
  let dir: string;
  let saved: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-lock-'));
    saved = process.env.KUBE_LOCAL_DIR;
    process.env.KUBE_LOCAL_DIR = dir;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.KUBE_LOCAL_DIR;
    else process.env.KUBE_LOCAL_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets shared holders overlap and makes an exclusive one wait for all of them', async () => {
    expect(clusterLockFile()).toBe(join(dir, 'weft-cluster.lock'));
    const events: string[] = [];
    const shared = (name: string) =>
      withClusterLock('shared', async () => {
        events.push(`${name} in`);
        await sleep(400);
        events.push(`${name} out`);
      });
    const a = shared('a');
    const b = shared('b');
    await sleep(150);
    const x = withClusterLock('exclusive', async () => {
      events.push('x in');
      await sleep(50);
      events.push('x out');
    });
    await Promise.all([a, b, x]);
    expect(events.slice(0, 2).sort()).toEqual(['a in', 'b in']);
    expect(events.slice(-2)).toEqual(['x in', 'x out']);
    // Released: nothing holds the file any more.
    expect(spawnSync('flock', ['--exclusive', '--nonblock', clusterLockFile(), 'true']).status).toBe(0);
  });

  it('fails naming the lock when it cannot be had in time, and releases on a throw', async () => {
    const holding = withClusterLock('exclusive', () => sleep(2500));
    await sleep(200);
    // The lock is on the cluster's lock file itself, as any other flock(1) user sees it.
    expect(spawnSync('flock', ['--shared', '--nonblock', clusterLockFile(), 'true']).status).toBe(1);
    await expect(withClusterLock('shared', async () => 1, { waitMs: 1000 })).rejects.toThrow(/waited 1 s for the shared lock .*weft-cluster\.lock/);
    await holding;
    await expect(withClusterLock('exclusive', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await withClusterLock('exclusive', async () => 'again')).toBe('again');
  });
});
