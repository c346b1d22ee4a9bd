// Semantic rules for the built-in Kubernetes kinds Weft reads: Service, Deployment, Pod, Namespace,
// ServiceAccount, ConfigMap and Secret. They follow the API server's validation (k8s.io/kubernetes
// pkg/apis/core/validation, apps/validation) for the fields the mesh relies on. Metadata is
// checked for every kind by metadata.ts.
import { labelSelectorMatches } from '@weft/model';
import type { FieldPath, K8sConfigMapBody, K8sDeploymentSpec, K8sLabelSelector, K8sNamespaceSpec, K8sPodSpec, K8sSecretBody, K8sServiceAccountBody, K8sServiceSpec } from '@weft/model';
import { cidrError, dns1123LabelError, isDns1123Subdomain, isIP, isString, labelKeyError, labelValueError } from './common.ts';
import { type KindValidator, kindValidator, type ValidationContext } from './context.ts';

function items<T>(v: readonly T[] | undefined | null): readonly T[] {
  return Array.isArray(v) ? v : [];
}
/** A present, non-list object; keeps the schema type of typed values. */
function isObject<T>(v: T | null | undefined): v is T {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const present = (v: unknown): boolean => v !== undefined && v !== null;

/** IANA_SVC_NAME: what a named port may be called (at most 15 characters, at least one letter). */
function ianaSvcNameError(name: string): string | undefined {
  if (name.length > 15) return `${JSON.stringify(name)} is longer than 15 characters`;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) return `${JSON.stringify(name)} must contain only lowercase letters, digits and '-', starting and ending with a letter or digit`;
  if (name.includes('--')) return `${JSON.stringify(name)} must not contain consecutive '-'`;
  if (!/[a-z]/.test(name)) return `${JSON.stringify(name)} must contain at least one letter`;
  return undefined;
}

function validateLabelMap(labels: Record<string, string> | undefined, path: FieldPath, ctx: ValidationContext): void {
  if (!isObject(labels)) return;
  for (const [k, v] of Object.entries(labels)) {
    const e = labelKeyError(k) ?? (isString(v) ? labelValueError(v) : undefined);
    if (e) ctx.error([...path, k], e);
  }
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

function validateService(spec: K8sServiceSpec, ctx: ValidationContext): void {
  const type = spec.type ?? 'ClusterIP';
  const headless = spec.clusterIP === 'None';
  const ports = items(spec.ports);

  if (type === 'ExternalName') {
    if (!isString(spec.externalName) || spec.externalName === '') ctx.error(['type'], 'an ExternalName service requires spec.externalName');
    else if (!isDns1123Subdomain(spec.externalName.replace(/\.$/, ''))) ctx.error(['externalName'], `externalName ${JSON.stringify(spec.externalName)} must be a lowercase DNS name (RFC 1123)`);
    if (isString(spec.clusterIP) && spec.clusterIP !== '') ctx.error(['clusterIP'], 'clusterIP must not be set for an ExternalName service');
  } else {
    if (isString(spec.externalName) && spec.externalName !== '') ctx.warning(['externalName'], `externalName is ignored unless type is ExternalName (type is ${type})`);
    if (ports.length === 0 && !headless) ctx.error(Array.isArray(spec.ports) ? ['ports'] : [], 'a service needs at least one port (only headless services, clusterIP: None, may have none)');
  }
  if (headless && (type === 'NodePort' || type === 'LoadBalancer')) ctx.error(['clusterIP'], `clusterIP None (headless) is not allowed for type ${type}`);
  if (isString(spec.clusterIP) && spec.clusterIP !== '' && spec.clusterIP !== 'None' && !isIP(spec.clusterIP)) {
    ctx.error(['clusterIP'], `clusterIP ${JSON.stringify(spec.clusterIP)} must be an IP address, "None" or empty`);
  }
  const ips = items(spec.clusterIPs);
  if (ips.length > 0 && isString(spec.clusterIP) && spec.clusterIP !== '' && ips[0] !== spec.clusterIP) {
    ctx.error(['clusterIPs', 0], `clusterIPs[0] must equal clusterIP (${spec.clusterIP})`);
  }
  ips.forEach((ip, i) => {
    if (isString(ip) && ip !== 'None' && !isIP(ip)) ctx.error(['clusterIPs', i], `${JSON.stringify(ip)} must be an IP address`);
  });

  const names = new Map<string, number>();
  const portProtocols = new Map<string, number>();
  ports.forEach((p, i) => {
    if (!isObject(p)) return;
    const path: FieldPath = ['ports', i];
    if (!isString(p.name) || p.name === '') {
      if (ports.length > 1) ctx.error(path, 'port name is required when a service has more than one port');
    } else {
      const e = dns1123LabelError(p.name);
      if (e) ctx.error([...path, 'name'], `invalid port name: ${e}`);
      const first = names.get(p.name);
      if (first !== undefined) ctx.error([...path, 'name'], `duplicate port name ${JSON.stringify(p.name)} (also ports[${first}])`);
      else names.set(p.name, i);
    }
    const key = `${String(p.port)}/${p.protocol ?? 'TCP'}`;
    const same = portProtocols.get(key);
    if (same !== undefined && typeof p.port === 'number') ctx.error([...path, 'port'], `duplicate port ${key} (also ports[${same}])`);
    else portProtocols.set(key, i);
    const target = p.targetPort;
    if (typeof target === 'number') {
      if (!Number.isInteger(target) || target < 1 || target > 65535) ctx.error([...path, 'targetPort'], `targetPort ${target} must be between 1 and 65535`);
    } else if (isString(target)) {
      if (/^\d+$/.test(target)) {
        const n = Number(target);
        if (n < 1 || n > 65535) ctx.error([...path, 'targetPort'], `targetPort ${target} must be between 1 and 65535`);
      } else {
        const e = ianaSvcNameError(target);
        if (e) ctx.error([...path, 'targetPort'], `targetPort must be a port number or a container port name (IANA_SVC_NAME): ${e}`);
      }
    }
    if (present(p.nodePort)) {
      if (type !== 'NodePort' && type !== 'LoadBalancer') ctx.error([...path, 'nodePort'], `nodePort may not be used when type is ${type}`);
      else if (typeof p.nodePort === 'number' && (p.nodePort < 0 || p.nodePort > 65535)) ctx.error([...path, 'nodePort'], `nodePort ${p.nodePort} must be between 1 and 65535`);
    }
    if (isString(p.appProtocol) && p.appProtocol !== '') {
      const e = labelKeyError(p.appProtocol);
      if (e) ctx.error([...path, 'appProtocol'], e.replace(/^label key/, 'appProtocol'));
    }
  });

  validateLabelMap(spec.selector, ['selector'], ctx);
  items(spec.externalIPs).forEach((ip, i) => {
    if (isString(ip) && !isIP(ip)) ctx.error(['externalIPs', i], `${JSON.stringify(ip)} must be an IP address`);
  });
  items(spec.loadBalancerSourceRanges).forEach((r, i) => {
    if (isString(r)) {
      const e = cidrError(r);
      if (e) ctx.error(['loadBalancerSourceRanges', i], e);
    }
  });
  if (present(spec.externalTrafficPolicy) && type !== 'NodePort' && type !== 'LoadBalancer') {
    ctx.error(['externalTrafficPolicy'], `externalTrafficPolicy may only be set for NodePort and LoadBalancer services (type is ${type})`);
  }
  if (present(spec.healthCheckNodePort) && !(type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local')) {
    ctx.error(['healthCheckNodePort'], 'healthCheckNodePort may only be set for a LoadBalancer service with externalTrafficPolicy Local');
  }
  const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (present(spec.sessionAffinityConfig)) {
    if (spec.sessionAffinity !== 'ClientIP') ctx.error(['sessionAffinityConfig'], 'sessionAffinityConfig may only be set when sessionAffinity is ClientIP');
    else if (typeof timeout === 'number' && (timeout < 1 || timeout > 86400)) ctx.error(['sessionAffinityConfig', 'clientIP', 'timeoutSeconds'], `timeoutSeconds ${timeout} must be between 1 and 86400`);
  }
  const families = items(spec.ipFamilies);
  if (families.length > 2) ctx.error(['ipFamilies'], 'at most two ipFamilies (IPv4 and IPv6) may be given');
  if (families.length === 2 && families[0] === families[1]) ctx.error(['ipFamilies', 1], `duplicate ip family ${String(families[1])}`);
  if (families.length === 2 && spec.ipFamilyPolicy === 'SingleStack') ctx.error(['ipFamilies'], 'two ipFamilies need ipFamilyPolicy PreferDualStack or RequireDualStack, not SingleStack');
}

// ---------------------------------------------------------------------------------------------
// Pods and Deployments
// ---------------------------------------------------------------------------------------------

function validatePodSpec(spec: K8sPodSpec, path: FieldPath, ctx: ValidationContext): void {
  const containers = items(spec.containers);
  if (containers.length === 0) ctx.error(Array.isArray(spec.containers) ? [...path, 'containers'] : path, 'a pod needs at least one container');
  const names = new Map<string, string>();
  for (const field of ['containers', 'initContainers'] as const) {
    items(spec[field]).forEach((c, i) => {
      if (!isObject(c)) return;
      const at: FieldPath = [...path, field, i];
      if (isString(c.name)) {
        const e = dns1123LabelError(c.name);
        if (e) ctx.error([...at, 'name'], `invalid container name: ${e}`);
        const first = names.get(c.name);
        if (first !== undefined) ctx.error([...at, 'name'], `duplicate container name ${JSON.stringify(c.name)} (also ${first})`);
        else names.set(c.name, `${field}[${i}]`);
      }
      if (!isString(c.image) || c.image.trim() === '') ctx.error(isString(c.image) ? [...at, 'image'] : at, 'container image is required');
      const portNames = new Map<string, number>();
      items(c.ports).forEach((p, k) => {
        if (!isObject(p)) return;
        if (isString(p.name) && p.name !== '') {
          const e = ianaSvcNameError(p.name);
          if (e) ctx.error([...at, 'ports', k, 'name'], `invalid port name: ${e}`);
          const first = portNames.get(p.name);
          if (first !== undefined) ctx.error([...at, 'ports', k, 'name'], `duplicate port name ${JSON.stringify(p.name)} (also ports[${first}])`);
          else portNames.set(p.name, k);
        }
        if (typeof p.hostPort === 'number' && (p.hostPort < 0 || p.hostPort > 65535)) ctx.error([...at, 'ports', k, 'hostPort'], `hostPort ${p.hostPort} must be between 1 and 65535`);
        if (isString(p.hostIP) && p.hostIP !== '' && !isIP(p.hostIP)) ctx.error([...at, 'ports', k, 'hostIP'], `hostIP ${JSON.stringify(p.hostIP)} must be an IP address`);
      });
    });
  }
  for (const field of ['serviceAccountName', 'serviceAccount'] as const) {
    const sa = spec[field];
    if (isString(sa) && sa !== '' && !isDns1123Subdomain(sa)) ctx.error([...path, field], `${JSON.stringify(sa)} is not a valid service account name (DNS-1123 subdomain)`);
  }
  if (isString(spec.serviceAccount) && isString(spec.serviceAccountName) && spec.serviceAccount !== '' && spec.serviceAccountName !== '' && spec.serviceAccount !== spec.serviceAccountName) {
    ctx.warning([...path, 'serviceAccount'], `serviceAccount (deprecated) is ${JSON.stringify(spec.serviceAccount)} but serviceAccountName is ${JSON.stringify(spec.serviceAccountName)}; serviceAccountName wins`);
  }
}

/** Validates a label selector's syntax; returns whether it is usable for matching. */
function validateSelector(sel: K8sLabelSelector, path: FieldPath, ctx: ValidationContext): boolean {
  let ok = true;
  if (isObject(sel.matchLabels)) {
    for (const [k, v] of Object.entries(sel.matchLabels)) {
      const e = labelKeyError(k) ?? (isString(v) ? labelValueError(v) : undefined);
      if (e) {
        ctx.error([...path, 'matchLabels', k], e);
        ok = false;
      }
    }
  }
  items(sel.matchExpressions).forEach((req, i) => {
    if (!isObject(req)) return;
    const at: FieldPath = [...path, 'matchExpressions', i];
    if (isString(req.key)) {
      const e = labelKeyError(req.key);
      if (e) {
        ctx.error([...at, 'key'], e);
        ok = false;
      }
    }
    const values = items(req.values);
    if ((req.operator === 'In' || req.operator === 'NotIn') && values.length === 0) {
      ctx.error(present(req.values) ? [...at, 'values'] : at, `values must be non-empty when operator is ${req.operator}`);
      ok = false;
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && values.length > 0) {
      ctx.error([...at, 'values'], `values must be empty when operator is ${req.operator}`);
      ok = false;
    }
    values.forEach((v, k) => {
      const e = isString(v) ? labelValueError(v) : undefined;
      if (e) {
        ctx.error([...at, 'values', k], e);
        ok = false;
      }
    });
  });
  return ok;
}

function validateDeployment(spec: K8sDeploymentSpec, ctx: ValidationContext): void {
  const sel = spec.selector;
  const template = isObject(spec.template) ? spec.template : undefined;
  const labels = template && isObject(template.metadata) && isObject(template.metadata.labels) ? template.metadata.labels : {};
  if (template && isObject(template.metadata)) validateLabelMap(template.metadata.labels, ['template', 'metadata', 'labels'], ctx);
  if (isObject(sel)) {
    const empty = (!isObject(sel.matchLabels) || Object.keys(sel.matchLabels).length === 0) && items(sel.matchExpressions).length === 0;
    if (empty) ctx.error(['selector'], 'empty selector is invalid for a deployment: it must select the pods of its template');
    else if (validateSelector(sel, ['selector'], ctx) && template && !labelSelectorMatches(sel, labels)) {
      ctx.error(['selector'], '`selector` does not match template `labels`: the deployment would not own the pods it creates');
    }
  }
  if (template) {
    if (isObject(template.spec)) validatePodSpec(template.spec, ['template', 'spec'], ctx);
    else ctx.error(['template'], 'template.spec is required: the pods a deployment creates need containers');
  }
  const strategy = spec.strategy;
  if (isObject(strategy)) {
    if (strategy.type !== undefined && strategy.type !== 'RollingUpdate' && strategy.type !== 'Recreate') ctx.error(['strategy', 'type'], `${JSON.stringify(strategy.type)} is not one of RollingUpdate, Recreate`);
    if (strategy.type === 'Recreate' && present(strategy.rollingUpdate)) ctx.error(['strategy', 'rollingUpdate'], 'rollingUpdate may not be set when strategy type is Recreate');
  }
  for (const field of ['minReadySeconds', 'revisionHistoryLimit', 'progressDeadlineSeconds'] as const) {
    const v = spec[field];
    if (typeof v === 'number' && v < 0) ctx.error([field], `${field} must be greater than or equal to 0`);
  }
  if (typeof spec.progressDeadlineSeconds === 'number' && typeof spec.minReadySeconds === 'number' && spec.progressDeadlineSeconds <= spec.minReadySeconds) {
    ctx.error(['progressDeadlineSeconds'], `progressDeadlineSeconds (${spec.progressDeadlineSeconds}) must be greater than minReadySeconds (${spec.minReadySeconds})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Namespace, ServiceAccount, ConfigMap, Secret
// ---------------------------------------------------------------------------------------------

function validateNamespace(spec: K8sNamespaceSpec, ctx: ValidationContext): void {
  items(spec.finalizers).forEach((f, i) => {
    if (!isString(f)) return;
    if (f !== 'kubernetes' && !f.includes('/')) ctx.error(['finalizers', i], `finalizer ${JSON.stringify(f)} must be fully qualified (e.g. example.com/cleanup)`);
    else {
      const e = labelKeyError(f);
      if (e) ctx.error(['finalizers', i], e.replace(/^label key/, 'finalizer'));
    }
  });
}

function validateServiceAccount(body: K8sServiceAccountBody, ctx: ValidationContext): void {
  items(body.imagePullSecrets).forEach((s, i) => {
    if (!isObject(s)) return;
    if (!isString(s.name) || s.name === '') ctx.error(['imagePullSecrets', i], 'imagePullSecrets entries need the name of a Secret');
    else if (!isDns1123Subdomain(s.name)) ctx.error(['imagePullSecrets', i, 'name'], `${JSON.stringify(s.name)} is not a valid Secret name`);
  });
}

const configKey = /^[-._a-zA-Z0-9]+$/;
/** ConfigMap and Secret keys: letters, digits, '-', '_' and '.', at most 253, not `.` or `..`. */
function configKeyError(key: string): string | undefined {
  if (key.length > 253) return `key ${JSON.stringify(`${key.slice(0, 30)}…`)} is longer than 253 characters`;
  if (!configKey.test(key) || key === '.' || key === '..') return `key ${JSON.stringify(key)} must consist of letters, digits, '-', '_' or '.' (and not be "." or "..")`;
  return undefined;
}

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const maxDataBytes = 1024 * 1024;

/** Keys of `fields`, checked and cross-checked; `base64Fields` values must be base64. Returns all keys seen. */
function validateDataMaps(body: Record<string, unknown>, fields: readonly string[], base64Fields: readonly string[], kind: string, ctx: ValidationContext): Set<string> {
  const keys = new Map<string, string>();
  let bytes = 0;
  for (const field of fields) {
    const map = body[field];
    if (!isRecord(map)) continue;
    for (const [k, v] of Object.entries(map)) {
      const e = configKeyError(k);
      if (e) ctx.error([field, k], e);
      const first = keys.get(k);
      // Secret.stringData is merged into data, so the same key in both is allowed there.
      if (first !== undefined && !(kind === 'Secret' && (field === 'stringData' || first === 'stringData'))) ctx.error([field, k], `key ${JSON.stringify(k)} is also in ${first}; a key may appear only once`);
      else keys.set(k, field);
      if (!isString(v)) continue;
      bytes += v.length;
      if (base64Fields.includes(field) && !base64.test(v.replace(/\s+/g, ''))) ctx.error([field, k], `value of ${JSON.stringify(k)} is not valid base64 (${field} holds base64; use ${kind === 'Secret' ? 'stringData' : 'data'} for plain text)`);
    }
  }
  if (bytes > maxDataBytes) ctx.error([], `${kind} data is ${bytes} bytes; the limit is ${maxDataBytes} (1 MiB)`);
  return new Set(keys.keys());
}

function validateConfigMap(body: K8sConfigMapBody, ctx: ValidationContext): void {
  validateDataMaps(body as Record<string, unknown>, ['data', 'binaryData'], ['binaryData'], 'ConfigMap', ctx);
}

/** Keys each well-known Secret type must carry. */
const secretTypeKeys: Record<string, readonly string[]> = {
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
};

function validateSecret(body: K8sSecretBody, ctx: ValidationContext): void {
  const keys = validateDataMaps(body as Record<string, unknown>, ['data', 'stringData'], ['data'], 'Secret', ctx);
  const type = isString(body.type) ? body.type : 'Opaque';
  for (const key of secretTypeKeys[type] ?? []) {
    if (!keys.has(key)) ctx.error(isString(body.type) ? ['type'] : [], `a Secret of type ${type} must have the key ${JSON.stringify(key)} in data or stringData`);
  }
  if (type === 'kubernetes.io/basic-auth' && !keys.has('username') && !keys.has('password')) {
    ctx.error(['type'], 'a Secret of type kubernetes.io/basic-auth must have the key "username" or "password"');
  }
  if (type === 'kubernetes.io/service-account-token' && !isString(ctx.config.metadata.annotations?.['kubernetes.io/service-account.name'])) {
    ctx.error(['type'], 'a Secret of type kubernetes.io/service-account-token needs the annotation kubernetes.io/service-account.name');
  }
}

function validatePod(spec: K8sPodSpec, ctx: ValidationContext): void {
  validatePodSpec(spec, [], ctx);
}

export const kubernetesValidators: readonly KindValidator[] = [
  kindValidator('/Service', validateService),
  kindValidator('apps/Deployment', validateDeployment),
  kindValidator('/Pod', validatePod),
  kindValidator('/Namespace', validateNamespace),
  kindValidator('/ServiceAccount', validateServiceAccount),
  kindValidator('/ConfigMap', validateConfigMap),
  kindValidator('/Secret', validateSecret),
];
