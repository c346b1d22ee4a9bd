// weft-proxy as a user runs it: a process, flags, readiness, signals.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/weft-proxy.js', import.meta.url));

describe('weft-proxy', () => {
  it('prints its usage, and refuses bad flags with status 2', () => {
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--xds-address HOST:PORT');
    const bad = spawnSync(process.execPath, [bin, '--mode', 'tproxy'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--mode must be local or capture');
  });

  it('is not ready while pilot cannot be reached, and stops gracefully on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, '--xds-address', '127.0.0.1:1', '--ip', '127.10.3.1', '--pod', 'lonely', '--admin-port', '0', '--health-port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    const admin = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no "admin listening" line')), 20_000);
      let pending = '';
      child.stderr!.on('data', (b: Buffer) => {
        pending += b.toString();
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        for (const p of parts) {
          const l = JSON.parse(p) as Record<string, unknown>;
          lines.push(l);
          if (l.msg === 'admin listening') {
            clearTimeout(timer);
            resolve(l);
          }
        }
      });
    });
    const health = await fetch(`http://127.10.3.1:${admin.healthPort}/healthz/ready`);
    expect(health.status).toBe(503);
    const ready = await fetch(`http://127.0.0.1:${admin.port}/ready`);
    expect(await ready.text()).toBe('PRE_INITIALIZING\n');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines.some((l) => l.msg === 'shutting down' && l.reason === 'SIGTERM')).toBe(true);
  });
});
