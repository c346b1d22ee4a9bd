import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findOnPath, hostPackages, installCommand, unmet } from './host.ts';
import { summarize, TestOutputReader } from './summary.ts';

const dir = mkdtempSync(join(tmpdir(), 'weft-host-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('test needs', () => {
  it('a root-only test skips as another user, saying so, before looking at tools', () => {
    expect(unmet({ root: true, tools: ['ip'] }, { root: false, onPath: () => false })).toBe('needs root (CI runs the tests as root: sudo npm test)');
    expect(unmet({ root: true, tools: ['ip'] }, { root: true, onPath: () => true })).toBeUndefined();
  });

  it('a missing tool names the Debian packages that install it, each once', () => {
    const onPath = (c: string) => c === 'curl';
    expect(unmet({ tools: ['prometheus'] }, { root: false, onPath })).toBe('needs prometheus (apt-get install -y prometheus)');
    expect(unmet({ root: true, tools: ['ip', 'iptables-save', 'ip6tables-restore', 'curl', 'nsenter'] }, { root: true, onPath })).toBe(
      'needs ip, iptables-save, ip6tables-restore, nsenter (apt-get install -y iproute2 iptables util-linux)',
    );
    expect(installCommand(['chromium'])).toBe('apt-get install -y chromium');
  });

  it('every command belongs to one package', () => {
    const commands = hostPackages.flatMap((p) => p.commands);
    expect(new Set(commands).size).toBe(commands.length);
  });

  it('finds executables on $PATH only', () => {
    writeFileSync(join(dir, 'tool-x'), '#!/bin/sh\n');
    chmodSync(join(dir, 'tool-x'), 0o755);
    writeFileSync(join(dir, 'not-x'), '');
    expect(findOnPath('tool-x', `/nonexistent:${dir}`)).toBe(join(dir, 'tool-x'));
    expect(findOnPath('not-x', dir)).toBeUndefined();
    expect(findOnPath('tool-x', '/usr/bin')).toBeUndefined();
  });

  it('a skipping test file prints its reason where npm test’s summary finds it (a real vitest run)', () => {
    const root = fileURLToPath(new URL('./testdata/skip-fixture/', import.meta.url));
    const vitest = fileURLToPath(new URL('../../../node_modules/vitest/vitest.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [vitest, 'run', '--root', root], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', PATH: '/nonexistent' } });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const reader = new TestOutputReader();
    for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) reader.line(`@weft/fixture: ${line}`);
    const summary = summarize(reader, 0);
    expect(summary.line).toBe('1 passed, 0 failed, 2 skipped');
    expect(summary.details).toEqual([
      'Skipped (2 tests):',
      '  @weft/fixture needs-tool.fixture.ts: 2 of 3 tests: needs weft-no-such-tool, prometheus (apt-get install -y weft-no-such-tool prometheus)',
    ]);
  });
});
