import { describe, expect, it } from 'vitest';
import { hostPackages } from './host.ts';
import { missingPackages, preflightPlan } from './preflight.ts';

const pkgs = (...names: string[]) => hostPackages.filter((p) => names.includes(p.name));

describe('npm test preflight', () => {
  it('as root, installs what is missing with one apt-get command', () => {
    const plan = preflightPlan({ root: true, missing: pkgs('prometheus', 'chromium', 'iptables'), aptGet: true, installAllowed: true });
    expect(plan.install).toBe('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables prometheus chromium');
    expect(plan.messages).toEqual([]);
  });

  it('as root with everything present, says nothing', () => {
    expect(preflightPlan({ root: true, missing: [], aptGet: true, installAllowed: true })).toEqual({ messages: [] });
  });

  it('as root without apt-get or with WEFT_TEST_INSTALL=0, says what skips and does not install', () => {
    const off = preflightPlan({ root: true, missing: pkgs('haproxy'), aptGet: true, installAllowed: false });
    expect(off.install).toBeUndefined();
    expect(off.messages).toEqual([
      'npm test: not installing (WEFT_TEST_INSTALL=0); missing, so their tests skip: haproxy (bench/proxy (its HAProxy rows; `npm run bench`))',
      'npm test: to install them: apt-get install -y haproxy',
    ]);
    expect(preflightPlan({ root: true, missing: pkgs('haproxy'), aptGet: false, installAllowed: true }).messages[0]).toMatch(/^npm test: not installing \(no apt-get on this machine\)/);
  });

  it('as another user, names what skips and the command that would install it', () => {
    const plan = preflightPlan({ root: false, uid: 1000, missing: pkgs('prometheus'), aptGet: true, installAllowed: true });
    expect(plan.install).toBeUndefined();
    expect(plan.messages).toEqual([
      'npm test: not root (uid 1000): the tests that need root skip (network namespaces, iptables, another user), each saying why.',
      'npm test: missing, so their tests skip: prometheus (e2e/proxy telemetry (Prometheus scrapes the proxies))',
      'npm test: to run those too: sudo apt-get install -y prometheus (or run npm test as root: it installs them itself)',
      'npm test: the closing summary lists every skipped test file with the reason.',
    ]);
  });

  it('a package is missing when any command the tests run from it is', () => {
    expect(missingPackages((c) => c !== 'ss' && c !== 'chromium', () => true).map((p) => p.name)).toEqual(['iproute2', 'chromium']);
  });

  it('a package with no command is missing when a file it installs is (node-llhttp: the native bench row builds against its sources)', () => {
    expect(missingPackages(() => true, (f) => f !== '/usr/share/llhttp/llhttp.c').map((p) => p.name)).toEqual(['node-llhttp']);
  });
});
