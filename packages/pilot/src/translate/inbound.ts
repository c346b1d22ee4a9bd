// The ports a sidecar serves inbound: one per target port of the services that select its
// workload (Istio's ServiceTargets), the first service winning a shared port.
import type { Protocol, Service, ServicePort } from '@weft/model';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';

export interface InboundPort {
  /** Where the application listens: the workload's port for this service port. */
  targetPort: number;
  servicePort: ServicePort;
  service: Service;
  protocol: Protocol;
}

export function inboundPorts(push: PushContext, proxy: MeshProxy): InboundPort[] {
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
