import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { noteSkip } from '@weft/testing';
import { describe, expect, it } from 'vitest';
import { defaultCaptureConfig, validateCaptureConfig } from './config.ts';
import { buildCaptureRules } from './rules.ts';
import { goldenCases, goldenConfig } from './testing/golden-cases.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const goldenDir = join(repoRoot, '../shared/reference/istio/tools/istio-iptables/pkg/capture/testdata');
const haveGoldens = existsSync(goldenDir);
noteSkip(haveGoldens ? undefined : `Istio's istio-iptables goldens are not at ${goldenDir} (reference data kept beside the repository in CI)`);

// A golden records every command Istio's test stub saw: the iptables-save/ip6tables-save probes
// around the run, and the iptables-restore input of each family. The probes are not part of the
// payload, so they are stripped (and counted) here; the payload itself must match byte for byte.
function splitGolden(text: string): { leading: number; body: string; trailing: number } {
  const lines = text.replace(/\n$/, '').split('\n');
  const probe = (l: string | undefined): boolean => l === 'iptables-save' || l === 'ip6tables-save';
  let leading = 0;
  while (probe(lines[leading])) leading++;
  let end = lines.length;
  while (end > leading && probe(lines[end - 1])) end--;
  return { leading, body: lines.slice(leading, end).join('\n'), trailing: lines.length - end };
}

describe.skipIf(!haveGoldens)('Istio golden conformance', () => {
  const files = haveGoldens ? readdirSync(goldenDir).filter((f) => f.endsWith('.golden')) : [];

  it('has a configuration for every golden file', () => {
    const missing = files.map((f) => f.replace(/\.golden$/, '')).filter((n) => !(n in goldenCases));
    expect(missing).toEqual([]);
  });

  for (const file of files) {
    const name = file.replace(/\.golden$/, '');
    it(`matches ${name}`, () => {
      const cfg = goldenConfig(name);
      const { leading, body, trailing } = splitGolden(readFileSync(join(goldenDir, file), 'utf8'));
      const payloads = buildCaptureRules(cfg);
      expect(`${payloads.ipv4}${payloads.ipv6}`.replace(/\n$/, '')).toBe(body);
      expect(leading).toBe(2);
      expect(trailing).toBe(cfg.enableIpv6 ? 2 : 1);
    });
  }
});

describe('buildCaptureRules', () => {
  it('builds the default sidecar rules of the spec (inbound *, outbound *, excluded status ports)', () => {
    const cfg = {
      ...defaultCaptureConfig(),
      inboundInterceptionMode: 'REDIRECT' as const,
      inboundPortsInclude: '*',
      inboundPortsExclude: '15090,15021,15020',
      outboundIpRangesInclude: '*',
    };
    expect(validateCaptureConfig(cfg)).toEqual([]);
    const { ipv4, ipv6 } = buildCaptureRules(cfg);
    expect(ipv6).toBe('');
    expect(ipv4.split('\n')).toEqual([
      '* nat',
      '-N ISTIO_INBOUND',
      '-N ISTIO_REDIRECT',
      '-N ISTIO_IN_REDIRECT',
      '-N ISTIO_OUTPUT',
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
      '-A OUTPUT -j ISTIO_OUTPUT',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
      'COMMIT',
      '',
    ]);
  });

  it('puts outbound port exclusions first, for TCP and UDP', () => {
    const { ipv4 } = buildCaptureRules({ ...defaultCaptureConfig(), outboundPortsExclude: '5432', outboundIpRangesInclude: '*' });
    const lines = ipv4.split('\n');
    const jump = lines.indexOf('-A OUTPUT -j ISTIO_OUTPUT');
    expect(lines.slice(jump + 1, jump + 4)).toEqual([
      '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
    ]);
  });

  it('splits mixed CIDR lists by family and writes IPv6 addresses canonically', () => {
    const { ipv4, ipv6 } = buildCaptureRules({
      ...defaultCaptureConfig(),
      enableIpv6: true,
      outboundIpRangesInclude: '10.96.0.0/12,FD00:0:0::/64',
      outboundIpRangesExclude: '10.96.0.10/32',
    });
    expect(ipv4).toContain('-A ISTIO_OUTPUT -d 10.96.0.10/32 -j RETURN\n-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT\n');
    expect(ipv4).not.toContain('fd00');
    expect(ipv6).toContain('-A ISTIO_OUTPUT -d fd00::/64 -j ISTIO_REDIRECT\n');
    expect(ipv6).not.toContain('10.96');
  });

  it('captures all DNS when asked, without naming servers', () => {
    const { ipv4 } = buildCaptureRules({ ...defaultCaptureConfig(), redirectDns: true, captureAllDns: true });
    expect(ipv4).toContain('-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053');
    expect(ipv4).toContain('-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1');
    expect(ipv4).not.toContain('127.0.0.53');
  });
});

describe('validateCaptureConfig', () => {
  it('reports every bad value with the flag a user would fix', () => {
    const problems = validateCaptureConfig({
      ...defaultCaptureConfig(),
      proxyPort: '99999',
      inboundPortsInclude: '80,http',
      proxyUid: '1337\n-A OUTPUT -j DROP',
      outboundIpRangesExclude: '*',
      outboundIpRangesInclude: '10.0.0.0',
      excludeInterfaces: 'eth 0',
      hostIpv4LoopbackCidr: '10.0.0.1/32',
    });
    expect(problems).toEqual([
      '--envoy-port: "99999" is not a port (1-65535)',
      '--istio-inbound-ports: "http" is not a port (1-65535)',
      '--proxy-uid: "1337\n-A OUTPUT -j DROP" is not a user or group id',
      '--istio-exclude-interfaces: "eth 0" is not an interface name',
      '--istio-service-exclude-cidr: "*" is not allowed (it would exclude everything; leave --istio-service-cidr empty instead)',
      '--istio-service-cidr: "10.0.0.0" is not a CIDR (for example 10.0.0.0/8)',
      'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: "10.0.0.1/32" must be an IPv4 CIDR inside 127.0.0.0/8 with a prefix of 8 to 32',
    ]);
  });
});
