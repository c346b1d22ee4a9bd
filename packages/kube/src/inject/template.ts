// The sidecar template: what Istio's injection-template.yaml renders, as code. From the pod (its
// annotations choose per-pod settings) and the injection values it builds the init container
// `istio-init` (weft-iptables with istio-iptables' arguments), the container `istio-proxy`
// (weft-proxy in capture mode, xDS over TLS to weftd, the downward-API environment), the volumes
// they mount and the labels and annotations the pod gets. Every annotation it reads is checked, and
// all problems are reported together.
import { parseDuration } from '@weft/mesh';
import { isIP } from 'node:net';
import type { V1Container, V1ContainerPort, V1EnvVar, V1ObjectMeta, V1PodSpec, V1ResourceRequirements, V1Volume } from '@kubernetes/client-node';
import { parseYamlDocuments } from '@weft/model';
import { type InjectionValues, annotations as A, type ResourceList, sidecar } from './values.ts';
import { ownerUri, type WorkloadRef } from './workload.ts';

/** An annotation (or value) the injector cannot honour; the message names it and says why. */
export class InjectionError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'InjectionError';
    this.problems = problems;
  }
}

/** The per-pod settings: the values, overridden by the pod's annotations. */
export interface PodSettings {
  proxyImage: string;
  proxyInitImage: string;
  resources: V1ResourceRequirements | undefined;
  logLevel: InjectionValues['logLevel'];
  rewriteProbes: boolean;
  holdApplicationUntilProxyStarts: boolean;
  /** istio-proxy as a native sidecar (an init container that keeps running), `sidecar.istio.io/nativeSidecar`. */
  nativeSidecar: boolean;
  /** ProxyConfig.terminationDrainDuration (`proxy.istio.io/config`), in ms: the proxy's drain on SIGTERM; undefined: the proxy's default (5 s). */
  terminationDrainMs: number | undefined;
  /** ProxyConfig.discoveryAddress: where the proxy gets its config (xDS); undefined: weftd's, as the CA. */
  discoveryAddress: string | undefined;
  /** ProxyConfig.proxyMetadata: environment variables of istio-proxy (e.g. EXIT_ON_ZERO_ACTIVE_CONNECTIONS). */
  proxyMetadata: Record<string, string>;
  /** The proxy's readiness probe (`readiness.status.sidecar.istio.io/*`; Istio's 0 s, 15 s, 4). */
  readiness: { initialDelaySeconds: number; periodSeconds: number; failureThreshold: number };
  mergeMetrics: boolean;
  includeOutboundIPRanges: string;
  excludeOutboundIPRanges: string;
  includeInboundPorts: string;
  excludeInboundPorts: string;
  includeOutboundPorts: string | undefined;
  excludeOutboundPorts: string | undefined;
  excludeInterfaces: string | undefined;
  kubevirtInterfaces: string | undefined;
}

const quantity = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$/;

function parseBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return false;
  return undefined;
}

function cidrProblem(text: string): string | undefined {
  for (const part of text.split(',')) {
    const c = part.trim();
    if (c === '') continue;
    const [addr, prefix, extra] = c.split('/');
    const family = isIP(addr ?? '');
    if (extra !== undefined || family === 0 || prefix === undefined || !/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return `${JSON.stringify(c)} is not a CIDR (e.g. 10.96.0.0/12)`;
  }
  return undefined;
}

function portsProblem(text: string): string | undefined {
  for (const part of text.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) return `${JSON.stringify(p)} is not a port number (1-65535)`;
  }
  return undefined;
}

const istioLogLevels: Record<string, InjectionValues['logLevel']> = { trace: 'debug', debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error', critical: 'error', off: 'error' };

/** Reads and checks the pod's annotations; throws InjectionError naming every bad one. */
export function podSettings(metadata: V1ObjectMeta | undefined, values: InjectionValues): PodSettings {
  const a = metadata?.annotations ?? {};
  const problems: string[] = [];
  const bad = (name: string, why: string) => problems.push(`annotation ${name}: ${why}`);
  const bool = (name: string, fallback: boolean) => {
    const v = a[name];
    if (v === undefined) return fallback;
    const b = parseBool(v);
    if (b === undefined) bad(name, `${JSON.stringify(v)} is not true or false`);
    return b ?? fallback;
  };
  const checked = (name: string, fallback: string, check: (v: string) => string | undefined, star = false) => {
    const v = a[name] ?? fallback;
    if (star && v.trim() === '*') return v;
    const why = check(v);
    if (why) bad(name, why);
    return v;
  };

  const resources: V1ResourceRequirements = {};
  const requests: ResourceList = {};
  const limits: ResourceList = {};
  for (const [name, target, key] of [
    [A.proxyCPU, requests, 'cpu'],
    [A.proxyMemory, requests, 'memory'],
    [A.proxyCPULimit, limits, 'cpu'],
    [A.proxyMemoryLimit, limits, 'memory'],
  ] as const) {
    const v = a[name];
    if (v === undefined) continue;
    if (!quantity.test(v)) bad(name, `${JSON.stringify(v)} is not a Kubernetes quantity (e.g. 100m, 128Mi)`);
    target[key] = v;
  }
  const annotated = Object.keys(requests).length + Object.keys(limits).length > 0;
  if (Object.keys(requests).length > 0) resources.requests = { ...requests };
  if (Object.keys(limits).length > 0) resources.limits = { ...limits };
  const fromValues: V1ResourceRequirements = {};
  if (values.resources.requests) fromValues.requests = { ...values.resources.requests };
  if (values.resources.limits) fromValues.limits = { ...values.resources.limits };

  let logLevel = values.logLevel;
  if (a[A.logLevel] !== undefined) {
    const l = istioLogLevels[a[A.logLevel]!];
    if (l) logLevel = l;
    else bad(A.logLevel, `${JSON.stringify(a[A.logLevel])} is not one of ${Object.keys(istioLogLevels).join(', ')}`);
  }
  const mode = a[A.interceptionMode];
  if (mode !== undefined && mode !== 'REDIRECT') bad(A.interceptionMode, `${JSON.stringify(mode)}: Weft's sidecars capture with REDIRECT only`);

  let hold = values.holdApplicationUntilProxyStarts;
  let terminationDrainMs: number | undefined;
  let discoveryAddress: string | undefined;
  const proxyMetadata: Record<string, string> = {};
  const proxyConfig = a[A.proxyConfig];
  if (proxyConfig !== undefined) {
    const parsed = parseYamlDocuments(proxyConfig, A.proxyConfig);
    const doc = parsed.documents[0]?.value;
    if (parsed.problems.length > 0 || (doc !== undefined && (typeof doc !== 'object' || doc === null || Array.isArray(doc)))) bad(A.proxyConfig, 'is not a ProxyConfig object (YAML or JSON)');
    else {
      const pc = (doc ?? {}) as Record<string, unknown>;
      const v = pc.holdApplicationUntilProxyStarts;
      if (typeof v === 'boolean') hold = v;
      else if (v !== undefined) bad(A.proxyConfig, `holdApplicationUntilProxyStarts ${JSON.stringify(v)} is not true or false`);
      const drain = pc.terminationDrainDuration;
      if (drain !== undefined) {
        const seconds = typeof drain === 'string' ? parseDuration(drain) : undefined;
        if (seconds === undefined || seconds < 0) bad(A.proxyConfig, `terminationDrainDuration ${JSON.stringify(drain)} is not a duration (e.g. 5s)`);
        else terminationDrainMs = Math.round(seconds * 1000);
      }
      const discovery = pc.discoveryAddress;
      if (discovery !== undefined) {
        if (typeof discovery !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(discovery)) bad(A.proxyConfig, `discoveryAddress ${JSON.stringify(discovery)} is not host:port`);
        else discoveryAddress = discovery;
      }
      const meta = pc.proxyMetadata;
      if (meta !== undefined) {
        if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) bad(A.proxyConfig, 'proxyMetadata is not a map of names to strings');
        else
          for (const [k, val] of Object.entries(meta)) {
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) bad(A.proxyConfig, `proxyMetadata ${JSON.stringify(k)} is not an environment variable name`);
            else if (typeof val !== 'string') bad(A.proxyConfig, `proxyMetadata ${k}: ${JSON.stringify(val)} is not a string`);
            else proxyMetadata[k] = val;
          }
      }
    }
  }
  const probeNumber = (name: string, fallback: number, min: number) => {
    const v = a[name];
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < min) {
      bad(name, `${JSON.stringify(v)} is not a whole number${min > 0 ? ` of at least ${min}` : ''}`);
      return fallback;
    }
    return Number(v);
  };
  const readiness = {
    initialDelaySeconds: probeNumber(A.readinessInitialDelaySeconds, 0, 0),
    periodSeconds: probeNumber(A.readinessPeriodSeconds, 15, 1),
    failureThreshold: probeNumber(A.readinessFailureThreshold, 4, 1),
  };

  const settings: PodSettings = {
    proxyImage: a[A.proxyImage] ?? values.proxyImage,
    proxyInitImage: values.proxyInitImage ?? values.proxyImage,
    resources: annotated ? resources : Object.keys(fromValues).length > 0 ? fromValues : undefined,
    logLevel,
    rewriteProbes: bool(A.rewriteAppHTTPProbers, values.rewriteAppHTTPProbe),
    nativeSidecar: bool(A.nativeSidecar, values.nativeSidecars),
    // A native sidecar is started (and its startup probe passed) before the application anyway.
    holdApplicationUntilProxyStarts: hold && !bool(A.nativeSidecar, values.nativeSidecars),
    terminationDrainMs,
    discoveryAddress,
    proxyMetadata,
    readiness,
    mergeMetrics: bool(A.mergeMetrics, values.enablePrometheusMerge),
    includeOutboundIPRanges: checked(A.includeOutboundIPRanges, values.includeOutboundIPRanges, cidrProblem, true),
    excludeOutboundIPRanges: checked(A.excludeOutboundIPRanges, values.excludeOutboundIPRanges, cidrProblem),
    includeInboundPorts: checked(A.includeInboundPorts, values.includeInboundPorts, portsProblem, true),
    excludeInboundPorts: checked(A.excludeInboundPorts, values.excludeInboundPorts, portsProblem),
    includeOutboundPorts: a[A.includeOutboundPorts] !== undefined ? checked(A.includeOutboundPorts, '', portsProblem) : undefined,
    excludeOutboundPorts: a[A.excludeOutboundPorts] !== undefined || values.excludeOutboundPorts !== '' ? checked(A.excludeOutboundPorts, values.excludeOutboundPorts, portsProblem) : undefined,
    excludeInterfaces: a[A.excludeInterfaces],
    kubevirtInterfaces: a[A.kubevirtInterfaces],
  };
  if (problems.length > 0) throw new InjectionError(problems);
  return settings;
}

/** The inbound ports never captured: Istio's 15090 and 15021, the status port, then the pod's own list. */
function excludedInboundPorts(settings: PodSettings): string {
  const ports = ['15090', '15021', String(sidecar.statusPort)];
  for (const p of settings.excludeInboundPorts.split(',')) if (p.trim() && !ports.includes(p.trim())) ports.push(p.trim());
  return ports.join(',');
}

/** istio-init: weft-iptables with istio-iptables' arguments, as root with NET_ADMIN and NET_RAW only. */
export function initContainer(settings: PodSettings, values: InjectionValues): V1Container {
  const args = [
    '-p',
    String(sidecar.outboundPort),
    '-z',
    String(sidecar.inboundPort),
    '-u',
    String(sidecar.proxyUid),
    '-m',
    'REDIRECT',
    '-i',
    settings.includeOutboundIPRanges,
    '-x',
    settings.excludeOutboundIPRanges,
    '-b',
    settings.includeInboundPorts,
    '-d',
    excludedInboundPorts(settings),
  ];
  if (settings.includeOutboundPorts !== undefined) args.push('-q', settings.includeOutboundPorts);
  if (settings.excludeOutboundPorts !== undefined) args.push('-o', settings.excludeOutboundPorts);
  if (settings.kubevirtInterfaces !== undefined) args.push('-k', settings.kubevirtInterfaces);
  if (settings.excludeInterfaces !== undefined) args.push('-c', settings.excludeInterfaces);
  return {
    name: sidecar.initContainer,
    image: settings.proxyInitImage,
    ...(values.imagePullPolicy ? { imagePullPolicy: values.imagePullPolicy } : {}),
    command: ['weft-iptables'],
    args,
    ...(settings.resources ? { resources: structuredClone(settings.resources) } : {}),
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };
}

const field = (name: string, fieldPath: string): V1EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });

/** A container port as Go's JSON encoding of corev1.ContainerPort writes it (field order, omitted empties), protocol defaulted. */
function portJson(p: V1ContainerPort): string {
  const o: Record<string, unknown> = {};
  if (p.name) o.name = p.name;
  if (p.hostPort) o.hostPort = p.hostPort;
  o.containerPort = p.containerPort;
  o.protocol = p.protocol ?? 'TCP';
  if (p.hostIP) o.hostIP = p.hostIP;
  return JSON.stringify(o);
}

/** istio-proxy: weft-proxy in capture mode as UID/GID 1337, xDS and certificates over TLS from weftd. */
export function proxyContainer(metadata: V1ObjectMeta, spec: V1PodSpec, settings: PodSettings, values: InjectionValues, workload: WorkloadRef): V1Container {
  const appContainers = (spec.containers ?? []).filter((c) => c.name !== sidecar.proxyContainer).map((c) => c.name);
  const podPorts = (spec.containers ?? []).flatMap((c) => c.ports ?? []);
  const env: V1EnvVar[] = [
    { name: 'PILOT_CERT_PROVIDER', value: 'istiod' },
    { name: 'CA_ADDR', value: values.discoveryAddress },
    field('POD_NAME', 'metadata.name'),
    field('POD_NAMESPACE', 'metadata.namespace'),
    field('INSTANCE_IP', 'status.podIP'),
    field('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    field('HOST_IP', 'status.hostIP'),
    { name: 'ISTIO_META_POD_PORTS', value: `[${podPorts.map(portJson).join(',')}]` },
    { name: 'ISTIO_META_APP_CONTAINERS', value: appContainers.join(',') },
    { name: 'ISTIO_META_CLUSTER_ID', value: values.clusterId },
    field('ISTIO_META_NODE_NAME', 'spec.nodeName'),
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: 'REDIRECT' },
  ];
  const workloadName = metadata.labels?.['service.istio.io/workload-name'] ?? workload.name;
  if (workloadName) env.push({ name: 'ISTIO_META_WORKLOAD_NAME', value: workloadName });
  if (workload.name) env.push({ name: 'ISTIO_META_OWNER', value: ownerUri(workload) });
  env.push({ name: 'ISTIO_META_MESH_ID', value: values.trustDomain }, { name: 'TRUST_DOMAIN', value: values.trustDomain });
  // Istio's template sets each of ProxyConfig.proxyMetadata as a variable, after its own.
  for (const [name, value] of Object.entries(settings.proxyMetadata)) {
    const at = env.findIndex((e) => e.name === name);
    if (at >= 0) env.splice(at, 1);
    env.push({ name, value });
  }

  const container: V1Container = {
    name: sidecar.proxyContainer,
    image: settings.proxyImage,
    ...(values.imagePullPolicy ? { imagePullPolicy: values.imagePullPolicy } : {}),
    command: ['weft-proxy'],
    args: [
      '--mode',
      'capture',
      '--xds-tls',
      '--ca-address',
      values.discoveryAddress,
      '--ca-server-name',
      values.discoveryServerName,
      '--ca-root-cert',
      `${sidecar.rootCertDir}/root-cert.pem`,
      '--ca-token-file',
      `${sidecar.tokenDir}/istio-token`,
      '--trust-domain',
      values.trustDomain,
      '--domain-suffix',
      values.domainSuffix,
      '--labels-file',
      `${sidecar.podInfoDir}/labels`,
      '--log-level',
      settings.logLevel,
      ...(settings.discoveryAddress ? ['--xds-address', settings.discoveryAddress] : []),
      ...(settings.terminationDrainMs !== undefined ? ['--drain-ms', String(settings.terminationDrainMs)] : []),
    ],
    ports: [{ containerPort: sidecar.statsPort, protocol: 'TCP', name: 'http-envoy-prom' }],
    env,
    // Istio's: the startup probe polls every second, so the pod is Ready as soon as the proxy is
    // (readiness alone would first look again 15 s after a failed try), and readiness keeps
    // checking at its own pace afterwards.
    startupProbe: {
      httpGet: { path: '/healthz/ready', port: sidecar.healthPort },
      initialDelaySeconds: 0,
      periodSeconds: 1,
      timeoutSeconds: 3,
      failureThreshold: 600,
    },
    readinessProbe: {
      httpGet: { path: '/healthz/ready', port: sidecar.healthPort },
      initialDelaySeconds: settings.readiness.initialDelaySeconds,
      periodSeconds: settings.readiness.periodSeconds,
      timeoutSeconds: 3,
      failureThreshold: settings.readiness.failureThreshold,
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: sidecar.proxyUid,
      runAsNonRoot: true,
      runAsUser: sidecar.proxyUid,
    },
    ...(settings.resources ? { resources: structuredClone(settings.resources) } : {}),
    volumeMounts: [
      { name: sidecar.rootCertVolume, mountPath: sidecar.rootCertDir },
      { name: sidecar.tokenVolume, mountPath: sidecar.tokenDir },
      { name: sidecar.podInfoVolume, mountPath: sidecar.podInfoDir },
    ],
  };
  // The application starts once the proxy answers ready: the kubelet runs the next container only after this hook returns.
  if (settings.holdApplicationUntilProxyStarts) container.lifecycle = { postStart: { exec: { command: ['weft-proxy', 'wait'] } } };
  if (settings.nativeSidecar) {
    // The kubelet keeps it running beside the application, and stops it only once the application
    // has exited; the preStop hook, run when the pod starts terminating, starts the drain then.
    container.restartPolicy = 'Always';
    container.lifecycle = { preStop: { exec: { command: ['weft-proxy', 'drain'] } } };
  }
  return container;
}

/** The volumes the two containers mount: the root certificate, the projected token for the CA, the pod's labels. */
export function sidecarVolumes(values: InjectionValues): V1Volume[] {
  return [
    {
      name: sidecar.podInfoVolume,
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    { name: sidecar.tokenVolume, projected: { sources: [{ serviceAccountToken: { path: 'istio-token', expirationSeconds: 43200, audience: values.tokenAudience } }] } },
    { name: sidecar.rootCertVolume, configMap: { name: sidecar.rootCertConfigMap } },
  ];
}

/** Istio's canonical service labels: the name and revision telemetry reports the workload under. */
export function canonicalLabels(labels: Record<string, string>, workload: WorkloadRef): Record<string, string> {
  const trimmed = (s: string) => s.slice(0, 63).replace(/^[-_.]+|[-_.]+$/g, '');
  return {
    'security.istio.io/tlsMode': labels['security.istio.io/tlsMode'] || 'istio',
    'service.istio.io/canonical-name': trimmed(labels['service.istio.io/canonical-name'] || labels['app.kubernetes.io/name'] || labels.app || workload.name),
    'service.istio.io/canonical-revision': labels['service.istio.io/canonical-revision'] || labels['app.kubernetes.io/version'] || labels.version || 'latest',
  };
}
