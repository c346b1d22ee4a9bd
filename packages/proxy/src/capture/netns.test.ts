// Real capture, end to end: two network-namespace pods, weft-iptables in each (the arguments
// Istio's injector gives istio-init), a capturing sidecar as UID 1337 in each, an app in pod b,
// and curl in pod a calling http://b:8000/ by name with no proxy settings.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyCapture, cleanCapture } from './apply.ts';
import { runIptablesCli } from './cli.ts';
import { buildCaptureRuleSet } from './rules.ts';
import { jsonLogger, systemRunner } from './system.ts';
import { goldenCases, goldenConfig } from './testing/golden-cases.ts';
import { collectJsonLines, createNetnsLab, type NetnsLab, type NetnsPod, netnsSkipReason, waitForLine } from './testing/netns.ts';

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, '../../bin/weft-iptables.js');
const captureProxy = join(here, 'testing/capture-proxy.ts');
const echoApp = join(here, 'testing/echo-app.ts');
const node = process.execPath;
// Istio's injected istio-init arguments (sidecar injection defaults).
const istioInitArgs = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'];
const proxyUid = 1337;

const skipReason = netnsSkipReason();

// A user's environment, minus anything that would make curl use a proxy on its own.
function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
  return env;
}

function hostRules(): string {
  // The host's own rules, to prove the test never touches them (comment lines carry timestamps).
  const dump = (cmd: string): string => {
    try {
      return execFileSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  // Counters change with the host's own traffic; the rules themselves must not. A Kubernetes node
  // on this host (the Kubernetes tier's kube-local) rewrites its own chains all the time: kube-proxy's
  // KUBE-*, the CNI plugin's CNI-*, kube-local's KUBELOCAL-*; those lines are theirs, not ours.
  return `${dump('iptables-save')}${dump('ip6tables-save')}`
    .split('\n')
    .filter((l) => !l.startsWith('#') && !/\b(KUBE|CNI|KUBELOCAL)-/.test(l))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
    .join('\n');
}

describe.skipIf(skipReason !== undefined)('transparent capture between network-namespace pods', () => {
  let lab: NetnsLab | undefined;
  let hostBefore = '';

  beforeAll(async () => {
    hostBefore = hostRules();
    lab = await createNetnsLab(['a', 'b']);
  }, 20_000);

  afterAll(async () => {
    await lab?.destroy();
  }, 20_000);

  async function weftIptables(pod: NetnsPod, args: string[]): Promise<{ code: number; logs: Array<Record<string, unknown>>; stderr: string }> {
    const r = await lab!.run(pod, [node, bin, ...args], { timeoutMs: 15_000 });
    const logs = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { code: r.code, logs, stderr: r.stderr };
  }

  it('routes a plain curl from pod a to pod b through both sidecars, and clean removes the capture', async () => {
    const started = Date.now();
    const a = lab!.pod('a');
    const b = lab!.pod('b');

    for (const pod of [a, b]) {
      const r = await weftIptables(pod, istioInitArgs);
      expect(r.code, r.stderr).toBe(0);
      const save = await lab!.run(pod, ['iptables-save', '-t', 'nat']);
      expect(save.stdout).toContain(':ISTIO_OUTPUT');
      expect(save.stdout).toMatch(/-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN/);
      expect(save.stdout).toMatch(/-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
    }
    // Running it again finds the rules in place and changes nothing.
    const again = await weftIptables(a, istioInitArgs);
    expect(again.code, again.stderr).toBe(0);
    expect(again.logs.some((l) => l.msg === 'capture rules already in place; nothing to apply')).toBe(true);

    const app = lab!.spawn(b, [node, echoApp, '--pod', 'b', '--port', '8000']);
    const sidecarA = lab!.spawn(a, [node, captureProxy, '--pod', 'a'], { uid: proxyUid, gid: proxyUid });
    const sidecarB = lab!.spawn(b, [node, captureProxy, '--pod', 'b'], { uid: proxyUid, gid: proxyUid });
    const logsA = collectJsonLines(sidecarA);
    const logsB = collectJsonLines(sidecarB);
    await Promise.all([
      waitForLine(app, (l) => l.msg === 'listening'),
      waitForLine(sidecarA, (l) => l.msg === 'ready'),
      waitForLine(sidecarB, (l) => l.msg === 'ready'),
    ]);
    expect(logsA.find((l) => l.msg === 'ready')?.uid).toBe(proxyUid);

    const curl = await lab!.run(a, ['curl', '-sS', '--max-time', '10', 'http://b:8000/hello'], { env: plainEnv(), timeoutMs: 15_000 });
    expect(curl.code, curl.stderr).toBe(0);
    const seen = JSON.parse(curl.stdout) as { pod: string; url: string; headers: Record<string, string>; peer: string };
    expect(seen.pod).toBe('b');
    expect(seen.url).toBe('/hello');
    // Both sidecars tagged the request with the original destination they read from conntrack
    // (each inserts its header right after the request line, so the later hop comes first).
    expect(seen.headers['x-weft-capture']).toBe(`b/inbound ${b.address}:8000, a/outbound ${b.address}:8000`);
    // Pod b's sidecar reached the app from the inbound passthrough address, which capture leaves alone.
    expect(seen.peer).toMatch(/^127\.0\.0\.6:/);

    const capturedA = logsA.filter((l) => l.msg === 'captured');
    const capturedB = logsB.filter((l) => l.msg === 'captured');
    expect(capturedA).toEqual([expect.objectContaining({ listener: 'outbound', originalDst: `${b.address}:8000` })]);
    expect(capturedB).toEqual([expect.objectContaining({ listener: 'inbound', originalDst: `${b.address}:8000` })]);
    expect(String(capturedB[0]!.peer)).toMatch(new RegExp(`^${a.address.replaceAll('.', '\\.')}:`));

    // Clean-up removes every ISTIO_* chain and jump; the same call then reaches the app directly.
    for (const pod of [a, b]) {
      const r = await weftIptables(pod, ['clean']);
      expect(r.code, r.stderr).toBe(0);
      const save = await lab!.run(pod, ['iptables-save']);
      expect(save.stdout).not.toContain('ISTIO');
    }
    const direct = await lab!.run(a, ['curl', '-sS', '--max-time', '10', 'http://b:8000/direct'], { env: plainEnv(), timeoutMs: 15_000 });
    expect(direct.code, direct.stderr).toBe(0);
    const direct2 = JSON.parse(direct.stdout) as { headers: Record<string, string>; peer: string };
    expect(direct2.headers['x-weft-capture']).toBeUndefined();
    expect(direct2.peer).toMatch(new RegExp(`^${a.address.replaceAll('.', '\\.')}:`));
    expect(logsA.filter((l) => l.msg === 'captured')).toHaveLength(1);

    expect(hostRules()).toBe(hostBefore);
    console.info(`netns capture test body took ${Date.now() - started} ms`);
  }, 30_000);
});

describe.skipIf(skipReason !== undefined)('capture rules on a real kernel', () => {
  let lab: NetnsLab | undefined;
  let hostBefore = '';

  beforeAll(async () => {
    hostBefore = hostRules();
    lab = await createNetnsLab(['k']);
  }, 20_000);

  afterAll(async () => {
    await lab?.destroy();
  }, 20_000);

  it('accepts the rules of every Istio golden configuration, and clean leaves nothing behind', async () => {
    const pod = lab!.pod('k');
    const runner = systemRunner(`/var/run/netns/${pod.netns}`);
    const log = jsonLogger(() => {});
    // These name the groups "java" and "ftp", which iptables resolves when loading the rule and
    // which a plain Debian machine does not have; their payloads are checked against the goldens.
    const needsGroups = (name: string): boolean => name.includes('owner-groups');
    const names = Object.keys(goldenCases).filter((n) => !needsGroups(n));
    expect(names.length).toBe(23);
    for (const name of names) {
      const cfg = goldenConfig(name);
      const applied = await applyCapture(cfg, { runner, log });
      expect(applied.applied, name).toEqual(cfg.enableIpv6 ? ['ipv4', 'ipv6'] : ['ipv4']);
      const set = buildCaptureRuleSet(cfg);
      const v4 = (await runner('iptables-save', [])).stdout;
      for (const r of set.ipv4) if (r.chain.startsWith('ISTIO_')) expect(v4, name).toContain(`:${r.chain} `);
      if (cfg.enableIpv6) {
        const v6 = (await runner('ip6tables-save', [])).stdout;
        for (const r of set.ipv6) if (r.chain.startsWith('ISTIO_')) expect(v6, name).toContain(`:${r.chain} `);
      }
      await cleanCapture(cfg, { runner, log });
      const after = (await runner('iptables-save', [])).stdout + (await runner('ip6tables-save', [])).stdout;
      expect(after, name).not.toContain('ISTIO');
      expect(after, name).not.toMatch(/^-A /m);
      const rules = (await runner('ip', ['rule', 'show'])).stdout + (await runner('ip', ['-6', 'rule', 'show'])).stdout;
      expect(rules, name).not.toContain('lookup 133');
    }
    expect(hostRules()).toBe(hostBefore);
  }, 30_000);

  it('refuses to stack on different leftovers, and --reconcile replaces them (via --network-namespace)', async () => {
    const ns = `/var/run/netns/${lab!.pod('k').netns}`;
    const run = async (args: string[]): Promise<{ code: number; stderr: string }> => {
      let stderr = '';
      const code = await runIptablesCli([...args, '--network-namespace', ns], {
        env: {},
        stdout: () => {},
        stderr: (t) => {
          stderr += t;
        },
      });
      return { code, stderr };
    };
    const save = async (): Promise<string> => (await systemRunner(ns)('iptables-save', ['-t', 'nat'])).stdout;

    expect((await run(['-b', '8080', '-i', '*'])).code).toBe(0);
    expect(await save()).toContain('--dport 8080 -j ISTIO_IN_REDIRECT');
    const conflict = await run(['-b', '9090', '-i', '*']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain('differ from the wanted rules; run `weft-iptables clean` first or pass --reconcile');
    const reconciled = await run(['-b', '9090', '-i', '*', '--reconcile']);
    expect(reconciled.code, reconciled.stderr).toBe(0);
    const state = await save();
    expect(state).toContain('--dport 9090 -j ISTIO_IN_REDIRECT');
    expect(state).not.toContain('8080');
    expect(state.match(/-A OUTPUT -j ISTIO_OUTPUT/g)).toHaveLength(1);
    expect((await run(['clean'])).code).toBe(0);
    expect(await save()).not.toContain('ISTIO');
    expect(hostRules()).toBe(hostBefore);
  }, 30_000);
});
