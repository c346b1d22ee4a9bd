import { describe, expect, it } from 'vitest';
import { type IptablesCliIo, runIptablesCli } from './cli.ts';
import { buildCaptureRules } from './rules.ts';
import { goldenConfig } from './testing/golden-cases.ts';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[], io: Partial<IptablesCliIo> = {}): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const code = await runIptablesCli(argv, {
    env: {},
    localAddresses: ['10.1.2.3'],
    passwd: '',
    resolvConf: '',
    ...io,
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

// The dry-run output without its comment lines: the payloads, IPv4 then IPv6.
const payloadOf = (stdout: string): string =>
  stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');

const istioInit = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '', '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'];

describe('weft-iptables --dry-run', () => {
  it('prints the iptables-restore payload for the injector’s istio-init arguments', async () => {
    const r = await cli(['--dry-run', ...istioInit]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith('# iptables-restore --noflush\n* nat\n')).toBe(true);
    expect(r.stdout).toContain('-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN\n-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n');
    expect(r.stdout).toContain('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n-A ISTIO_OUTPUT -j ISTIO_REDIRECT\nCOMMIT\n');
    expect(r.stdout).not.toContain('ip6tables');
  });

  // Istio's golden test names spell the flags; the CLI must produce the same payload from them.
  const byFlags: Array<[string, string[], Partial<IptablesCliIo>]> = [
    ['empty', [], {}],
    ['inbound-ports-include', ['-b', '32000,31000'], {}],
    ['inbound-ports-wildcard', ['--istio-inbound-ports=*'], {}],
    ['inbound-ports-wildcard-tproxy', ['-b', '*', '-m', 'TPROXY'], {}],
    ['kube-virt-interfaces', ['-k', 'eth1,eth2', '-i', '*'], {}],
    ['ipnets-with-kube-virt-interfaces', ['-k', 'eth1,eth2', '-i', '10.0.0.0/8'], {}],
    ['outbound-ports-include', ['-q', '32000,31000'], {}],
    ['basic-exclude-nic', ['-c', 'not-istio-nic'], {}],
    ['drop-invalid', ['--drop-invalid'], {}],
    ['ip-range', ['-x', '1.1.0.0/16', '-i', '9.9.0.0/16', '--redirect-dns', '-u', '3,4', '-g', '1,2'], { resolvConf: 'search cluster.local\nnameserver 127.0.0.53\n' }],
    ['host-ipv4-loopback-cidr', [], { env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' } }],
    ['outbound-owner-groups', [], { env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' } }],
    ['outbound-owner-groups-exclude', [], { env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' } }],
    ['ipv6-inbound-ports', ['-b', '4000,5000'], { localAddresses: ['fd00::1234', '10.1.2.3'] }],
    ['ipv6-uid-gid', ['-b', '4000,5000', '-d', '6000,7000', '-k', 'eth0,eth1', '-u', '3,4', '-g', '1,2', '-x', '2001:db8::/32', '-i', '2001:db8::/32'], { localAddresses: ['2001:db8::9'] }],
    ['dns-uid-gid', ['--redirect-dns', '-u', '3,4', '-g', '1,2'], { localAddresses: ['10.1.2.3', 'fd00::9'], resolvConf: 'nameserver 127.0.0.53\nnameserver ::127.0.0.53\n' }],
  ];
  for (const [name, args, io] of byFlags) {
    it(`gives Istio's ${name} payload`, async () => {
      const withDualStack = name === 'dns-uid-gid' ? ['--dual-stack'] : [];
      const r = await cli(['-n', ...args, ...withDualStack], io);
      expect(r.code, r.stderr).toBe(0);
      const want = buildCaptureRules(goldenConfig(name));
      expect(payloadOf(r.stdout)).toBe(`${want.ipv4}${want.ipv6}`);
    });
  }

  it('reads flags from the environment, and a flag on the command line wins', async () => {
    const env = { ISTIO_INBOUND_PORTS: '8080', ISTIO_SERVICE_CIDR: '10.96.0.0/12', PROXY_UID: '2000', INBOUND_CAPTURE_PORT: '16006' };
    const r = await cli(['-n', '-u', '3000'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT');
    expect(r.stdout).toContain('-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006');
    expect(r.stdout).toContain('-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT');
    expect(r.stdout).toContain('--uid-owner 3000 -j RETURN');
    expect(r.stdout).toContain('--gid-owner 3000 -j RETURN');
    expect(r.stdout).not.toContain('2000');
  });

  it('turns DNS capture on from ISTIO_META_DNS_CAPTURE, for the resolv.conf servers', async () => {
    const r = await cli(['-n', '-i', '*'], { env: { ISTIO_META_DNS_CAPTURE: 'true' }, resolvConf: 'nameserver 10.96.0.10\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-port 15053');
  });

  it('uses the UID of $ENVOY_USER when -u is absent, and 1337 when that user does not exist', async () => {
    const passwd = 'root:x:0:0:root:/root:/bin/bash\nistio-proxy:x:1337:1337::/home:/bin/false\nenvoy:x:101:101::/home:/bin/false\n';
    const named = await cli(['-n'], { env: { ENVOY_USER: 'envoy' }, passwd });
    expect(named.stdout).toContain('-m owner --uid-owner 101 -j RETURN');
    expect(named.stdout).toContain('-m owner --gid-owner 101 -j RETURN');
    const fallback = await cli(['-n'], { env: { ENVOY_USER: 'nobody-here' }, passwd });
    expect(fallback.stdout).toContain('-m owner --uid-owner 1337 -j RETURN');
  });

  it('writes IPv6 rules only when the pod’s first address is IPv6, or with --dual-stack', async () => {
    const v4first = await cli(['-n'], { localAddresses: ['127.0.0.1', 'fe80::1', '10.0.0.5', 'fd00::5'] });
    expect(v4first.stdout).not.toContain('ip6tables-restore');
    const v6first = await cli(['-n'], { localAddresses: ['::1', 'fe80::1', 'fd00::5', '10.0.0.5'] });
    expect(v6first.stdout).toContain('# ip6tables-restore --noflush\n* nat\n');
    expect(v6first.stdout).toContain('-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN');
    expect(v6first.stdout).toContain('# ip -6 addr add ::6/128 dev lo');
    const dual = await cli(['-n', '--dual-stack'], { localAddresses: ['10.0.0.5', 'fd00::5'] });
    expect(dual.stdout).toContain('ip6tables-restore');
  });

  it('lists the policy routes TPROXY needs', async () => {
    const r = await cli(['-n', '-m', 'TPROXY', '-b', '*']);
    expect(r.stdout).toContain('# ip -4 rule add fwmark 1337 lookup 133\n# ip -4 route add local 0.0.0.0/0 dev lo table 133\n');
  });
});

describe('weft-iptables argument errors', () => {
  it('rejects an unknown flag with exit code 2 and the usage', async () => {
    const r = await cli(['--istio-inbound-portz', '80']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('weft-iptables: unknown flag --istio-inbound-portz');
    expect(r.stderr).toContain('Usage: weft-iptables');
  });

  it('reports every bad value before touching anything', async () => {
    const r = await cli(['-p', '0', '-b', '80,eighty', '-m', 'NAT']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--envoy-port: "0" is not a port (1-65535)');
    expect(r.stderr).toContain('--istio-inbound-ports: "eighty" is not a port (1-65535)');
    expect(r.stderr).toContain('--istio-inbound-interception-mode: "NAT" is neither REDIRECT nor TPROXY');
  });

  it('refuses flags it does not implement instead of ignoring them', async () => {
    const r = await cli(['--run-validation']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--run-validation is not supported by weft-iptables');
  });

  it('needs a value after a string flag', async () => {
    const r = await cli(['-b']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--istio-inbound-ports needs a value');
  });

  it('prints help', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('-b, --istio-inbound-ports VALUE');
  });
});
