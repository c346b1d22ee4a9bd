// The ports a sidecar serves inbound: one per target port of the services that select its
// workload (Istio's ServiceTargets), the first service winning a shared port; or, when its Sidecar
// resource lists `ingress` listeners, exactly those ports, each forwarded to its `defaultEndpoint`.
import { type IstioIngressListener, type Protocol, protocolOf, type Service, type ServicePort } from '@weft/model';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';

export interface InboundPort {
  /** The port inbound traffic arrives on (where the application listens, unless `endpoint` says otherwise). */
  targetPort: number;
  servicePort: ServicePort;
  service: Service;
  protocol: Protocol;
  /** A Sidecar ingress listener's `defaultEndpoint` (`127.0.0.1:8080`, `unix:///var/run/app.sock`): where the inbound cluster sends. */
  endpoint?: { address: string; port: number };
}

export function inboundPorts(push: PushContext, proxy: MeshProxy): InboundPort[] {
  const ingress = push.sidecarScope(proxy).config?.spec.ingress;
  if (ingress?.length) return sidecarIngressPorts(push, proxy, ingress);
  const workload = push.workload(proxy);
  const ips = new Set(proxy.ipAddresses);
  if (workload) ips.add(workload.address);
  const byPort = new Map<number, InboundPort>();
  for (const service of push.servicesOf(proxy)) {
    for (const sp of service.ports) {
      if (sp.protocol === 'UDP') continue;
      const own = push.endpoints(service, sp.port).find((e) => ips.has(e.address));
      const targetPort = own?.port ?? workload?.ports[sp.name] ?? sp.targetPort ?? sp.port;
      if (!byPort.has(targetPort)) byPort.set(targetPort, { targetPort, servicePort: sp, service, protocol: sp.protocol });
    }
  }
  return [...byPort.values()].sort((a, b) => a.targetPort - b.targetPort);
}

/**
 * `defaultEndpoint` as Istio reads it: `unix://path`, `host:port` (`0.0.0.0` meaning the
 * instance's own address), `:port` or nothing (loopback, the listener's port).
 */
export function parseDefaultEndpoint(text: string | undefined, port: number, instanceIp: string | undefined): { address: string; port: number } {
  if (!text) return { address: '127.0.0.1', port };
  if (text.startsWith('unix://')) return { address: text, port: 0 };
  const colon = text.lastIndexOf(':');
  const host = (colon < 0 ? text : text.slice(0, colon)).replace(/^\[|\]$/g, '');
  const p = colon < 0 ? port : Number(text.slice(colon + 1));
  const address = !host ? '127.0.0.1' : host === '0.0.0.0' || host === '::' ? (instanceIp ?? '127.0.0.1') : host;
  return { address, port: Number.isInteger(p) && p > 0 ? p : port };
}

/** Istio's Sidecar ingress: the service behind each listener port found among the workload's (else one named after the Sidecar). */
function sidecarIngressPorts(push: PushContext, proxy: MeshProxy, ingress: readonly IstioIngressListener[]): InboundPort[] {
  const sidecar = push.sidecarScope(proxy).config!;
  const services = push.servicesOf(proxy);
  const out: InboundPort[] = [];
  for (const l of ingress) {
    const number = l.port.number;
    if (!number || out.some((p) => p.targetPort === number)) continue;
    const protocol = protocolOf({ protocol: l.port.protocol, name: l.port.name });
    const servicePort: ServicePort = { name: l.port.name ?? `${protocol.toLowerCase()}-${number}`, port: number, protocol };
    const service =
      services.find((s) => s.ports.some((sp) => sp.port === number || sp.targetPort === number)) ??
      ({
        hostname: `${sidecar.metadata.name}.${sidecar.metadata.namespace}`,
        namespace: sidecar.metadata.namespace,
        origin: { kind: 'Sidecar', namespace: sidecar.metadata.namespace, name: sidecar.metadata.name },
        ports: [servicePort],
        addresses: [],
        resolution: 'STATIC',
        location: 'MESH_INTERNAL',
        exportTo: new Set(['.']),
        serviceAccounts: [],
        labels: {},
      } satisfies Service);
    out.push({ targetPort: number, servicePort, service, protocol, endpoint: parseDefaultEndpoint(l.defaultEndpoint, number, proxy.ipAddresses[0]) });
  }
  return out.sort((a, b) => a.targetPort - b.targetPort);
}
