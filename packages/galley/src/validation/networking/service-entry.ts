// ServiceEntry and WorkloadEntry: Istio's ValidateServiceEntry / ValidateWorkloadEntry and the
// CRDs' CEL rules (selector vs endpoints, CIDRs only for NONE/STATIC, endpoint addresses and ports).
import type { FieldPath, ServiceEntrySpec, WorkloadEntrySpec } from '@weft/model';
import { kindValidator, type ValidationContext } from '../context.ts';
import {
  checkExportTo,
  checkLabels,
  checkPort,
  checkWorkloadSelector,
  entries,
  filled,
  fqdnError,
  ipSubnetError,
  isHTTPProtocol,
  isIPAddress,
  isObject,
  isTCPProtocol,
  isTLSProtocol,
  items,
  num,
  parseProtocol,
  partialWildcardError,
  portError,
  portNameError,
  present,
  protocolError,
  q,
  str,
  unixAddressError,
  unixPrefix,
  wildcardDomainError,
} from './shared.ts';

/** Label opting a ServiceEntry out of automatic VIP allocation. */
const autoAllocateLabel = 'networking.istio.io/enable-autoallocate-ip';
/** Label naming the waypoint a service's traffic goes through (ambient). */
const useWaypointLabel = 'istio.io/use-waypoint';

export const workloadEntryValidator = kindValidator('networking.istio.io/WorkloadEntry', (spec: WorkloadEntrySpec, ctx) => {
  checkWorkloadEntry(ctx, [], spec, undefined, true);
});

/**
 * One workload (a WorkloadEntry, or a STATIC ServiceEntry's endpoint): an IP, a hostname (when
 * `allowFQDN`) or a Unix socket; no address only with a network; ports named like service ports.
 */
function checkWorkloadEntry(ctx: ValidationContext, p: FieldPath, we: WorkloadEntrySpec, servicePorts: ReadonlySet<string> | undefined, allowFQDN: boolean): void {
  const addr = str(we.address);
  if (addr === '') {
    if (!str(we.network)) {
      ctx.error(present(we.address) ? [...p, 'address'] : p, 'address is required');
      return;
    }
    ctx.warning([...p, 'network'], `address is unset with network ${q(str(we.network))}`);
  }
  const unix = addr.startsWith(unixPrefix);
  if (unix) {
    const err = unixAddressError(addr.slice(unixPrefix.length));
    if (err) ctx.error([...p, 'address'], err);
    if (entries(we.ports).length > 0) ctx.error([...p, 'ports'], `unix endpoint ${addr} must not include ports`);
  } else if (addr !== '' && !isIPAddress(addr)) {
    if (!allowFQDN) ctx.error([...p, 'address'], `endpoint address ${q(addr)} is not a valid IP address`);
    else if (fqdnError(addr)) ctx.error([...p, 'address'], `endpoint address ${q(addr)} is not a valid FQDN or an IP address`);
  }
  checkEndpointPorts(ctx, p, we, servicePorts);
  checkLabels(ctx, [...p, 'labels'], we.labels);
  if (unix && servicePorts !== undefined && servicePorts.size !== 1) ctx.error([...p, 'address'], 'exactly 1 service port required for unix endpoints');
}

function checkEndpointPorts(ctx: ValidationContext, p: FieldPath, we: WorkloadEntrySpec, servicePorts: ReadonlySet<string> | undefined): void {
  for (const [name, port] of entries(we.ports)) {
    const at: FieldPath = [...p, 'ports', name];
    if (servicePorts !== undefined && !servicePorts.has(name)) ctx.error(at, `endpoint port ${port} is not defined by the service entry (no port named ${q(name)})`);
    const nameErr = portNameError(name);
    if (nameErr) ctx.error(at, nameErr);
    const err = portError(num(port));
    if (err) ctx.error(at, err);
  }
}

export const serviceEntryValidator = kindValidator('networking.istio.io/ServiceEntry', (spec: ServiceEntrySpec, ctx) => {
  const resolution = spec.resolution ?? 'NONE';
  const hosts = items(spec.hosts);
  const addresses = items(spec.addresses);
  const endpoints = items(spec.endpoints);
  const ports = items(spec.ports);
  const labels = ctx.config.metadata.labels ?? {};

  // Istio stops at a refused selector; later selector advice would only add noise.
  const selectorOk = checkWorkloadSelector(ctx, ['workloadSelector'], spec.workloadSelector, 'service entry');
  if (present(spec.workloadSelector) && present(spec.endpoints)) ctx.error(['endpoints'], 'only one of WorkloadSelector or Endpoints is allowed in Service Entry');

  hosts.forEach((host, i) => {
    if (typeof host !== 'string') return;
    if (host === '*') {
      ctx.error(['hosts', i], `invalid host ${host}`);
      return;
    }
    const err = wildcardDomainError(host);
    if (err) ctx.error(['hosts', i], err);
    const partial = partialWildcardError(host);
    if (partial) ctx.warning(['hosts', i], partial);
  });

  let firstCidr = -1;
  addresses.forEach((address, i) => {
    if (typeof address !== 'string') return;
    if (address.includes('/') && firstCidr < 0) firstCidr = i;
    const err = ipSubnetError(address);
    if (err) ctx.error(['addresses', i], err);
  });
  if (firstCidr >= 0 && resolution !== 'NONE' && resolution !== 'STATIC') {
    ctx.error(present(spec.resolution) ? ['resolution'] : ['addresses', firstCidr], 'CIDR addresses are allowed only for NONE/STATIC resolution types');
  }

  // Istio allocates a VIP itself unless resolution is NONE, addresses are given, or the label opts out.
  const autoAllocation = resolution !== 'NONE' && labels[autoAllocateLabel]?.toLowerCase() !== 'false' && addresses.length === 0;
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  ports.forEach((port, i) => {
    const p: FieldPath = ['ports', i];
    if (!isObject(port)) {
      ctx.error(p, 'service entry port may not be null');
      return;
    }
    const name = str(port.name);
    if (portNames.has(name)) ctx.error([...p, 'name'], `service entry port name ${q(name)} already defined`);
    portNames.add(name);
    if (present(port.number)) {
      if (portNumbers.has(num(port.number))) ctx.error([...p, 'number'], `service entry port ${num(port.number)} already defined`);
      portNumbers.add(num(port.number));
      checkPort(ctx, [...p, 'number'], port.number);
    }
    if (num(port.targetPort) !== 0) checkPort(ctx, [...p, 'targetPort'], port.targetPort);
    if (addresses.length === 0 && !autoAllocation && (!port.protocol || port.protocol === 'TCP')) {
      ctx.warning(present(port.protocol) ? [...p, 'protocol'] : p, 'addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled');
    }
    if (present(port.name)) {
      const err = portNameError(name);
      if (err) ctx.error([...p, 'name'], err);
    }
    const perr = protocolError(port.protocol);
    if (perr) ctx.error([...p, 'protocol'], perr);
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) ctx.error(['endpoints'], 'no endpoints should be provided for resolution type none');
      if (present(spec.workloadSelector) && selectorOk) ctx.warning(['workloadSelector'], 'workloadSelector should not be set when resolution mode is NONE');
      break;
    case 'STATIC':
      endpoints.forEach((ep, i) => {
        if (!isObject(ep)) ctx.error(['endpoints', i], 'endpoint cannot be nil');
        else checkWorkloadEntry(ctx, ['endpoints', i], ep, portNames, false);
      });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        hosts.forEach((host, i) => {
          if (typeof host === 'string' && host !== '*' && fqdnError(host)) ctx.error(['hosts', i], `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution}`);
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) ctx.error(['endpoints'], `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      endpoints.forEach((ep, i) => {
        const p: FieldPath = ['endpoints', i];
        if (!isObject(ep)) {
          ctx.error(p, 'endpoint cannot be nil');
          return;
        }
        const addr = str(ep.address);
        if (!isIPAddress(addr) && fqdnError(addr)) ctx.error(present(ep.address) ? [...p, 'address'] : p, `endpoint address ${q(addr)} is not a valid FQDN or an IP address`);
        checkLabels(ctx, [...p, 'labels'], ep.labels);
        checkEndpointPorts(ctx, p, ep, portNames);
      });
      if (addresses.length > 0 && hosts.length > 1 && ports.some((port) => isObject(port) && isTCPProtocol(parseProtocol(port.protocol)))) {
        ctx.warning(['hosts'], 'service entry can not have more than one host specified simultaneously with address and tcp port');
      }
      break;
    case 'DYNAMIC_DNS':
      checkDynamicDNS(ctx, spec, labels);
      break;
  }

  // Plain TCP cannot tell hosts apart, so several hosts need HTTP (authority) or TLS (SNI) ports.
  if (resolution !== 'NONE' && hosts.length > 1) {
    const i = ports.findIndex((port) => isObject(port) && !isHTTPProtocol(parseProtocol(port.protocol)) && !isTLSProtocol(parseProtocol(port.protocol)));
    if (i >= 0) ctx.error(['ports', i, ...(present(ports[i]?.protocol) ? ['protocol'] : [])], 'multiple hosts provided with non-HTTP, non-TLS ports');
  }

  checkExportTo(ctx, spec.exportTo, { serviceEntry: true });

  items(spec.subjectAltNames).forEach((san, i) => {
    if (san === '') ctx.warning(['subjectAltNames', i], 'empty subjectAltNames entry matches no certificate');
  });
});

/**
 * DYNAMIC_DNS resolves each request's host on demand (Envoy's dynamic forward proxy): the hosts
 * are wildcards, there are no endpoints or VIPs, and ports carry HTTP (Host header) or TLS (SNI).
 */
function checkDynamicDNS(ctx: ValidationContext, spec: ServiceEntrySpec, labels: Record<string, string>): void {
  if (filled(spec.endpoints)) ctx.error(['endpoints'], 'no endpoints should be provided for resolution type DYNAMIC_DNS');
  if (filled(spec.addresses)) ctx.error(['addresses'], 'no addresses should be provided for resolution type DYNAMIC_DNS');
  items(spec.hosts).forEach((host, i) => {
    if (typeof host === 'string' && host !== '*' && !host.startsWith('*.')) ctx.error(['hosts', i], `hosts must be wildcards (*.example.com) for resolution mode DYNAMIC_DNS, got ${q(host)}`);
  });
  items(spec.ports).forEach((port, i) => {
    if (!isObject(port)) return;
    const protocol = parseProtocol(port.protocol);
    if (protocol === 'HTTPS' || (!isHTTPProtocol(protocol) && protocol !== 'TLS')) {
      ctx.error(['ports', i, ...(present(port.protocol) ? ['protocol'] : [])], `resolution mode DYNAMIC_DNS supports only HTTP, HTTP2, GRPC and TLS ports, got ${port.protocol ? q(port.protocol) : 'no protocol'}`);
    }
  });
  if (spec.location === 'MESH_INTERNAL' && labels[useWaypointLabel]) {
    ctx.error(['location'], `resolution mode DYNAMIC_DNS cannot be used for a MESH_INTERNAL service with a waypoint (label ${useWaypointLabel})`);
  }
}
