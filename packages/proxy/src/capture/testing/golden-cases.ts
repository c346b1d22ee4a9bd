// The configurations of Istio's istio-iptables unit tests (`pkg/capture/run_test.go`), one per
// golden file under shared/reference/istio/tools/istio-iptables/pkg/capture/testdata/.
import { type CaptureConfig, defaultCaptureConfig } from '../config.ts';

export const goldenCases: Record<string, Partial<CaptureConfig>> = {
  'ipv6-empty-inbound-ports': { inboundPortsInclude: '', enableIpv6: true },
  'ip-range': {
    outboundIpRangesExclude: '1.1.0.0/16',
    outboundIpRangesInclude: '9.9.0.0/16',
    redirectDns: true,
    proxyGid: '1,2',
    proxyUid: '3,4',
    dnsServersV4: ['127.0.0.53'],
  },
  tproxy: {
    inboundInterceptionMode: 'TPROXY',
    inboundPortsInclude: '*',
    outboundIpRangesExclude: '1.1.0.0/16',
    outboundIpRangesInclude: '9.9.0.0/16',
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    proxyGid: '1337',
    proxyUid: '1337',
    excludeInterfaces: 'not-istio-nic',
    enableIpv6: true,
  },
  'ipv6-inbound-ports': { inboundPortsInclude: '4000,5000', enableIpv6: true },
  'ipv6-virt-interfaces': { inboundPortsInclude: '4000,5000', rerouteVirtualInterfaces: 'eth0,eth1', enableIpv6: true },
  'ipv6-ipnets': {
    inboundPortsInclude: '4000,5000',
    inboundPortsExclude: '6000,7000,',
    rerouteVirtualInterfaces: 'eth0,eth1',
    outboundIpRangesExclude: '2001:db8::/32',
    outboundIpRangesInclude: '2001:db8::/32',
    enableIpv6: true,
  },
  'ipv6-uid-gid': {
    inboundPortsInclude: '4000,5000',
    inboundPortsExclude: '6000,7000',
    rerouteVirtualInterfaces: 'eth0,eth1',
    proxyGid: '1,2',
    proxyUid: '3,4',
    enableIpv6: true,
    outboundIpRangesExclude: '2001:db8::/32',
    outboundIpRangesInclude: '2001:db8::/32',
  },
  'ipv6-outbound-ports': { inboundPortsInclude: '', outboundPortsInclude: '32000,31000', enableIpv6: true },
  empty: {},
  'kube-virt-interfaces': { rerouteVirtualInterfaces: 'eth1,eth2', outboundIpRangesInclude: '*' },
  ipnets: { outboundIpRangesInclude: '10.0.0.0/8' },
  'ipnets-with-kube-virt-interfaces': { rerouteVirtualInterfaces: 'eth1,eth2', outboundIpRangesInclude: '10.0.0.0/8' },
  'inbound-ports-include': { inboundPortsInclude: '32000,31000' },
  'inbound-ports-wildcard': { inboundPortsInclude: '*' },
  'inbound-ports-tproxy': { inboundPortsInclude: '32000,31000', inboundInterceptionMode: 'TPROXY' },
  'inbound-ports-wildcard-tproxy': { inboundPortsInclude: '*', inboundInterceptionMode: 'TPROXY' },
  'dns-uid-gid': {
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    dnsServersV6: ['::127.0.0.53'],
    proxyGid: '1,2',
    proxyUid: '3,4',
    enableIpv6: true,
  },
  'ipv6-dns-uid-gid': { enableIpv6: true, redirectDns: true, proxyGid: '1,2', proxyUid: '3,4' },
  'outbound-owner-groups': { ownerGroupsInclude: 'java,202' },
  'outbound-owner-groups-exclude': { ownerGroupsExclude: '888,ftp' },
  'ipv6-dns-outbound-owner-groups': { enableIpv6: true, redirectDns: true, ownerGroupsInclude: 'java,202' },
  'ipv6-dns-outbound-owner-groups-exclude': { enableIpv6: true, redirectDns: true, ownerGroupsExclude: '888,ftp' },
  'outbound-ports-include': { outboundPortsInclude: '32000,31000' },
  'loopback-outbound-iprange': {
    outboundIpRangesInclude: '127.1.2.3/32',
    redirectDns: true,
    dnsServersV4: ['127.0.0.53'],
    proxyGid: '1,2',
    proxyUid: '3,4',
  },
  'basic-exclude-nic': { excludeInterfaces: 'not-istio-nic' },
  'drop-invalid': { dropInvalid: true },
  'host-ipv4-loopback-cidr': { hostIpv4LoopbackCidr: '127.0.0.1/8' },
};

export function goldenConfig(name: string): CaptureConfig {
  const overrides = goldenCases[name];
  if (!overrides) throw new Error(`no configuration for golden ${name}`);
  return { ...defaultCaptureConfig(), ...overrides };
}
