// Sidecar: Istio's ValidateSidecar (ingress and egress listeners, outbound traffic policy,
// connection pools) and the CRD's rules.
import type { FieldPath, IstioEgressListener, IstioIngressListener, OutboundTrafficPolicy, SidecarPort, SidecarSpec } from '@weft/model';
import { kindValidator, type ValidationContext } from '../context.ts';
import {
  checkConnectionPool,
  checkDestination,
  checkPort,
  checkServerTLS,
  checkWorkloadSelector,
  filled,
  fqdnError,
  ipAddressError,
  isHTTPProtocol,
  isObject,
  isTLSProtocol,
  items,
  namespaceSlashHostErrors,
  num,
  parseProtocol,
  portError,
  portNameError,
  present,
  protocolError,
  q,
  str,
  unixAddressError,
  unixPrefix,
} from './shared.ts';

export const sidecarValidator = kindValidator('networking.istio.io/Sidecar', (spec: SidecarSpec, ctx) => {
  checkWorkloadSelector(ctx, ['workloadSelector'], spec.workloadSelector, 'sidecar');
  if (!filled(spec.egress) && !filled(spec.ingress) && !present(spec.outboundTrafficPolicy) && !present(spec.inboundConnectionPool)) {
    ctx.error([], 'sidecar: empty configuration provided');
    return;
  }

  const ingressPorts = new Set<number>();
  items(spec.ingress).forEach((listener, i) => {
    const p: FieldPath = ['ingress', i];
    if (!isObject(listener)) {
      ctx.error(p, 'sidecar: ingress may not be null');
      return;
    }
    if (!isObject(listener.port)) return; // required: the loader reports it
    if (num(listener.port.targetPort) > 0) ctx.error([...p, 'port', 'targetPort'], 'targetPort has no impact on Sidecars');
    checkListenerPort(ctx, [...p, 'port'], listener.port);
    if (str(listener.bind)) {
      const err = ipAddressError(str(listener.bind));
      if (err) ctx.error([...p, 'bind'], err);
    }
    const number = num(listener.port.number);
    if (ingressPorts.has(number)) ctx.error([...p, 'port', 'number'], 'sidecar: ports on IP bound listeners must be unique');
    ingressPorts.add(number);
    checkDefaultEndpoint(ctx, [...p, 'defaultEndpoint'], listener.defaultEndpoint);
    checkIngressTLS(ctx, p, listener);
    checkConnectionPool(ctx, [...p, 'connectionPool'], listener.connectionPool);
    if (isObject(listener.connectionPool) && present(listener.connectionPool.http) && !isHTTPProtocol(parseProtocol(listener.port.protocol))) {
      ctx.warning(
        [...p, 'connectionPool', 'http'],
        `sidecar: HTTP connection pool settings are configured for port ${number} (${q(str(listener.port.name))}) but its protocol is not HTTP (${str(listener.port.protocol)}); only TCP settings will apply`,
      );
    }
  });

  checkConnectionPool(ctx, ['inboundConnectionPool'], spec.inboundConnectionPool);

  const egressPorts = new Set<number>();
  const udsBinds = new Set<string>();
  let catchAllFound = false;
  const egress = items(spec.egress);
  egress.forEach((listener, i) => {
    const p: FieldPath = ['egress', i];
    if (!isObject(listener)) {
      ctx.error(p, 'egress listener may not be null');
      return;
    }
    // One catch-all listener (no port) at most, and it comes last.
    if (!present(listener.port)) {
      if (catchAllFound) {
        ctx.error(p, 'sidecar: egress can have only one listener with empty port');
        return;
      }
      if (i === egress.length - 1) catchAllFound = true;
      else ctx.error(p, 'sidecar: the egress listener with empty port should be the last listener in the list');
    } else if (isObject(listener.port)) {
      if (num(listener.port.targetPort) > 0) ctx.error([...p, 'port', 'targetPort'], 'targetPort has no impact on Sidecars');
      checkEgressPortBindAndCaptureMode(ctx, p, listener);
      const bind = str(listener.bind);
      const number = num(listener.port.number);
      if (number === 0) {
        if (udsBinds.has(bind)) ctx.error([...p, 'bind'], 'sidecar: unix domain socket values for listeners must be unique');
        udsBinds.add(bind);
      } else {
        if (egressPorts.has(number)) ctx.error([...p, 'port', 'number'], 'sidecar: ports on IP bound listeners must be unique');
        egressPorts.add(number);
      }
    }
    checkEgressHosts(ctx, p, listener, ctx.config.metadata.namespace ?? '');
  });

  checkOutboundTrafficPolicy(ctx, ['outboundTrafficPolicy'], spec.outboundTrafficPolicy);
});

/** Name (optional, DNS label), protocol and number of a listener port. */
function checkListenerPort(ctx: ValidationContext, p: FieldPath, port: SidecarPort): void {
  if (str(port.name)) {
    const err = portNameError(str(port.name));
    if (err) ctx.error([...p, 'name'], err);
  }
  const perr = protocolError(port.protocol);
  if (perr) ctx.error([...p, 'protocol'], perr);
  checkPort(ctx, [...p, 'number'], port.number, p);
}

/** Where inbound traffic is forwarded: `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>` or `unix://<path>`. */
function checkDefaultEndpoint(ctx: ValidationContext, p: FieldPath, endpoint: string | undefined): void {
  if (typeof endpoint !== 'string' || endpoint === '') return;
  if (endpoint.startsWith(unixPrefix)) {
    const err = unixAddressError(endpoint.slice(unixPrefix.length));
    if (err) ctx.error(p, err);
    return;
  }
  const { host, port, error } = splitHostPort(endpoint);
  if (error) {
    ctx.error(p, error);
    return;
  }
  if (host !== '' && host !== '127.0.0.1' && host !== '0.0.0.0' && host !== '::1' && host !== '::') {
    ctx.error(p, 'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset');
  }
  if (!/^[+-]?\d+$/.test(port)) ctx.error(p, `sidecar: defaultEndpoint port (${port}) is not a number: strconv.Atoi: parsing ${q(port)}: invalid syntax`);
  else {
    const err = portError(Number(port));
    if (err) ctx.error(p, err);
  }
}

/** Go's net.SplitHostPort. */
function splitHostPort(hostport: string): { host: string; port: string; error?: string } {
  const missing = { host: '', port: '', error: `address ${hostport}: missing port in address` };
  const i = hostport.lastIndexOf(':');
  if (i < 0) return missing;
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0) return { host: '', port: '', error: `address ${hostport}: missing ']' in address` };
    if (end + 1 === hostport.length) return missing;
    if (end + 1 !== i) return { host: '', port: '', error: `address ${hostport}: ${hostport[end + 1] === ':' ? 'too many colons' : 'missing port'} in address` };
    return { host: hostport.slice(1, end), port: hostport.slice(i + 1) };
  }
  const host = hostport.slice(0, i);
  if (host.includes(':')) return { host: '', port: '', error: `address ${hostport}: too many colons in address` };
  if (host.includes('[') || host.includes(']')) return { host: '', port: '', error: `address ${hostport}: unexpected '[' or ']' in address` };
  return { host, port: hostport.slice(i + 1) };
}

function checkIngressTLS(ctx: ValidationContext, p: FieldPath, listener: IstioIngressListener): void {
  const tls = listener.tls;
  if (!isObject(tls)) return;
  const tp: FieldPath = [...p, 'tls'];
  if (filled(tls.subjectAltNames)) ctx.error([...tp, 'subjectAltNames'], 'sidecar: subjectAltNames is not supported in ingress tls');
  if (tls.httpsRedirect === true) ctx.error([...tp, 'httpsRedirect'], 'sidecar: httpsRedirect is not supported');
  if (str(tls.credentialName)) ctx.error([...tp, 'credentialName'], 'sidecar: credentialName is not currently supported');
  if (filled(tls.credentialNames)) ctx.error([...tp, 'credentialNames'], 'sidecar: credentialNames is not currently supported');
  if (filled(tls.tlsCertificates)) ctx.error([...tp, 'tlsCertificates'], 'sidecar: tls_certificates is not currently supported');
  if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'AUTO_PASSTHROUGH') ctx.error([...tp, 'mode'], `configuration is invalid: cannot set mode to ${tls.mode} in sidecar ingress tls`);
  if (!isTLSProtocol(parseProtocol(listener.port.protocol))) ctx.error(tp, 'server cannot have TLS settings for non HTTPS/TLS ports');
  checkServerTLS(ctx, tp, tls);
}

/** Port 0 means a Unix domain socket listener: the bind must be `unix://` and capture DEFAULT or NONE. */
function checkEgressPortBindAndCaptureMode(ctx: ValidationContext, p: FieldPath, listener: IstioEgressListener): void {
  const port = listener.port!;
  const bind = str(listener.bind);
  if (str(port.name)) {
    const err = portNameError(str(port.name));
    if (err) ctx.error([...p, 'port', 'name'], err);
  }
  const perr = protocolError(port.protocol);
  if (perr) ctx.error([...p, 'port', 'protocol'], perr);
  if (num(port.number) === 0) {
    if (!bind.startsWith(unixPrefix)) {
      ctx.error(present(listener.bind) ? [...p, 'bind'] : [...p, 'port'], 'sidecar: ports with 0 value must have a unix domain socket bind address');
    } else {
      const err = unixAddressError(bind.slice(unixPrefix.length));
      if (err) ctx.error([...p, 'bind'], err);
    }
    if (listener.captureMode !== undefined && listener.captureMode !== 'DEFAULT' && listener.captureMode !== 'NONE') {
      ctx.error([...p, 'captureMode'], 'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners');
    }
  } else {
    checkPort(ctx, [...p, 'port', 'number'], port.number);
    if (bind !== '') {
      const err = ipAddressError(bind);
      if (err) ctx.error([...p, 'bind'], err);
    }
  }
}

/** `namespace/dnsName` hosts; duplicates and hosts shadowed by a wildcard draw warnings. */
function checkEgressHosts(ctx: ValidationContext, p: FieldPath, listener: IstioEgressListener, namespace: string): void {
  const hosts = items(listener.hosts);
  if (hosts.length === 0) {
    if (present(listener.hosts)) ctx.error([...p, 'hosts'], 'sidecar: egress listener must contain at least one host');
    return;
  }
  const byNamespace = new Map<string, Set<string>>();
  hosts.forEach((hostname, j) => {
    if (typeof hostname !== 'string') return;
    const at: FieldPath = [...p, 'hosts', j];
    const slash = hostname.indexOf('/');
    if (slash >= 0) {
      const ns = hostname.slice(0, slash) === '.' ? namespace : hostname.slice(0, slash);
      const svc = hostname.slice(slash + 1);
      const svcs = byNamespace.get(ns) ?? new Set<string>();
      byNamespace.set(ns, svcs);
      if (svc !== '*' ? svcs.has(svc) || svcs.has('*') : svcs.size !== 0) ctx.warning(at, `duplicated egress host: ${hostname}`);
      svcs.add(svc);
    }
    for (const err of new Set(namespaceSlashHostErrors(hostname, false, false))) ctx.error(at, err);
  });
  if (byNamespace.get('*')?.has('*') && [...byNamespace.keys()].filter((ns) => !ns.startsWith('~')).length !== 1) {
    ctx.warning([...p, 'hosts'], '`*/*` host select all resources, no other hosts can be added');
  }
}

function checkOutboundTrafficPolicy(ctx: ValidationContext, p: FieldPath, tp: OutboundTrafficPolicy | undefined): void {
  if (!isObject(tp) || !isObject(tp.egressProxy)) return;
  const proxy = tp.egressProxy;
  if (tp.mode !== 'ALLOW_ANY') {
    ctx.error([...p, 'egressProxy'], 'sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode');
    return;
  }
  const fqdn = fqdnError(str(proxy.host));
  if (fqdn && present(proxy.host)) ctx.error([...p, 'egressProxy', 'host'], fqdn);
  if (!present(proxy.port)) {
    ctx.error([...p, 'egressProxy'], 'sidecar: egress_proxy port must be non-nil');
    return;
  }
  // The host was checked as an FQDN above (stricter than a destination host).
  checkDestination(ctx, [...p, 'egressProxy'], proxy, { skipHost: true });
}
