// DestinationRule: Istio's ValidateDestinationRule (traffic policies, subsets, load balancing,
// outlier detection, client TLS, exportTo with a workload selector) and the CRD's CEL rules.
import type {
  ClientTLSSettings,
  DestinationRuleSpec,
  FieldPath,
  LoadBalancerSettings,
  LocalityLoadBalancerSetting,
  LocalityLoadBalancerSettingFailover,
  OutlierDetection,
  PortTrafficPolicy,
  TrafficPolicy,
  TunnelSettings,
  ZoneAwareLoadBalancerSetting,
} from '@weft/model';
import { kindValidator, type ValidationContext } from '../context.ts';
import {
  checkConnectionPool,
  checkDuration,
  checkExportTo,
  checkLabels,
  checkPercent,
  checkTypeWorkloadSelector,
  entries,
  filled,
  fqdnError,
  ipAddressError,
  isObject,
  items,
  num,
  portError,
  present,
  q,
  str,
  subsetNameError,
  wildcardDomainError,
} from './shared.ts';

export const destinationRuleValidator = kindValidator('networking.istio.io/DestinationRule', (spec: DestinationRuleSpec, ctx) => {
  const namespace = ctx.config.metadata.namespace ?? '';
  if (typeof spec.host === 'string') {
    const err = wildcardDomainError(spec.host);
    if (err) ctx.error(['host'], err);
  }
  checkTrafficPolicy(ctx, ['trafficPolicy'], spec.trafficPolicy, namespace);

  const names = new Set<string>();
  items(spec.subsets).forEach((subset, i) => {
    const p: FieldPath = ['subsets', i];
    if (!isObject(subset)) {
      ctx.error(p, 'subset may not be null');
      return;
    }
    if (typeof subset.name === 'string') {
      if (names.has(subset.name)) ctx.error([...p, 'name'], `duplicate subset names: ${subset.name}`);
      names.add(subset.name);
      const err = subsetNameError(subset.name);
      if (err) ctx.error([...p, 'name'], err);
    }
    checkLabels(ctx, [...p, 'labels'], subset.labels);
    checkTrafficPolicy(ctx, [...p, 'trafficPolicy'], subset.trafficPolicy, namespace);
  });

  checkExportTo(ctx, spec.exportTo, { drWithSelector: present(spec.workloadSelector) });
  checkTypeWorkloadSelector(ctx, ['workloadSelector'], spec.workloadSelector);
});

function checkTrafficPolicy(ctx: ValidationContext, p: FieldPath, policy: TrafficPolicy | undefined, namespace: string): void {
  if (!isObject(policy)) return;
  const fields = ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'] as const;
  if (!fields.some((f) => (f === 'portLevelSettings' ? filled(policy[f]) : present(policy[f])))) {
    ctx.error(p, 'traffic policy must have at least one field');
    return;
  }
  if (present(policy.tunnel) && present(policy.proxyProtocol)) ctx.error([...p, 'proxyProtocol'], 'tunnel and proxyProtocol must not be set together');
  checkOutlierDetection(ctx, [...p, 'outlierDetection'], policy.outlierDetection);
  checkConnectionPool(ctx, [...p, 'connectionPool'], policy.connectionPool);
  checkLoadBalancer(ctx, [...p, 'loadBalancer'], policy.loadBalancer, policy.outlierDetection);
  checkClientTLS(ctx, [...p, 'tls'], policy.tls, namespace);
  items(policy.portLevelSettings).forEach((pl, i) => {
    checkPortTrafficPolicy(ctx, [...p, 'portLevelSettings', i], pl, namespace);
  });
  checkTunnel(ctx, [...p, 'tunnel'], policy.tunnel);
}

function checkPortTrafficPolicy(ctx: ValidationContext, p: FieldPath, pl: PortTrafficPolicy | undefined, namespace: string): void {
  if (!isObject(pl)) {
    ctx.error(p, 'traffic policy may not be null');
    return;
  }
  if (!present(pl.port)) ctx.error(p, 'portTrafficPolicy must have valid port');
  if (!present(pl.outlierDetection) && !present(pl.connectionPool) && !present(pl.loadBalancer) && !present(pl.tls)) {
    ctx.error(p, 'port traffic policy must have at least one field');
    return;
  }
  checkOutlierDetection(ctx, [...p, 'outlierDetection'], pl.outlierDetection);
  checkConnectionPool(ctx, [...p, 'connectionPool'], pl.connectionPool);
  checkLoadBalancer(ctx, [...p, 'loadBalancer'], pl.loadBalancer, pl.outlierDetection);
  checkClientTLS(ctx, [...p, 'tls'], pl.tls, namespace);
}

function checkTunnel(ctx: ValidationContext, p: FieldPath, tunnel: TunnelSettings | undefined): void {
  if (!isObject(tunnel)) return;
  if (str(tunnel.protocol) && tunnel.protocol !== 'CONNECT' && tunnel.protocol !== 'POST') ctx.error([...p, 'protocol'], 'tunnel protocol must be "CONNECT" or "POST"');
  if (typeof tunnel.targetHost === 'string') {
    const fqdnErr = fqdnError(tunnel.targetHost);
    const ipErr = ipAddressError(tunnel.targetHost);
    if (fqdnErr && ipErr) ctx.error([...p, 'targetHost'], `tunnel target host must be valid FQDN or IP address: ${fqdnErr}; ${ipErr}`);
  }
  if (present(tunnel.targetPort)) {
    const err = portError(num(tunnel.targetPort));
    if (err) ctx.error([...p, 'targetPort'], `tunnel target port is invalid: ${err}`);
  }
}

function checkOutlierDetection(ctx: ValidationContext, p: FieldPath, od: OutlierDetection | undefined): void {
  if (!isObject(od)) return;
  checkDuration(ctx, [...p, 'baseEjectionTime'], od.baseEjectionTime);
  if (num(od.consecutiveErrors) !== 0) {
    ctx.warning([...p, 'consecutiveErrors'], 'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead');
  }
  if (od.splitExternalLocalOriginErrors !== true && num(od.consecutiveLocalOriginFailures) > 0) {
    ctx.error([...p, 'consecutiveLocalOriginFailures'], 'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false');
  }
  checkDuration(ctx, [...p, 'interval'], od.interval);
  checkPercent(ctx, [...p, 'maxEjectionPercent'], od.maxEjectionPercent);
  checkPercent(ctx, [...p, 'minHealthPercent'], od.minHealthPercent);
}

/** Envoy's prime test for maglev table sizes. */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  const limit = Math.floor(Math.sqrt(x));
  for (let f = 3; f <= limit; f += 2) if (x % f === 0) return false;
  return true;
}

function checkLoadBalancer(ctx: ValidationContext, p: FieldPath, lb: LoadBalancerSettings | undefined, outlier: OutlierDetection | undefined): void {
  if (!isObject(lb)) return;
  const ch = lb.consistentHash;
  if (isObject(ch)) {
    const cp: FieldPath = [...p, 'consistentHash'];
    const cookie = ch.httpCookie;
    if (isObject(cookie)) {
      if (cookie.name === '') ctx.error([...cp, 'httpCookie', 'name'], 'name required for HttpCookie');
      const attrs = new Set<string>();
      items(cookie.attributes).forEach((a, i) => {
        if (!isObject(a) || typeof a.name !== 'string') return;
        const at: FieldPath = [...cp, 'httpCookie', 'attributes', i, 'name'];
        if (a.name === '') ctx.error(at, 'cookie attribute name cannot be empty');
        else if (attrs.has(a.name.toLowerCase())) ctx.error(at, `duplicate cookie attribute name: ${a.name}`);
        attrs.add(a.name.toLowerCase());
      });
    }
    if (num(ch.minimumRingSize) !== 0) {
      ctx.warning([...cp, 'minimumRingSize'], "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead");
      if (present(ch.ringHash) || present(ch.maglev)) ctx.error([...cp, 'minimumRingSize'], 'only one of MinimumRingSize or Maglev/Ringhash can be specified');
    }
    if (present(ch.ringHash) && present(ch.maglev)) ctx.error([...cp, 'maglev'], 'only one of ringHash or maglev can be specified');
    if (isObject(ch.maglev)) {
      const size = num(ch.maglev.tableSize);
      const at: FieldPath = present(ch.maglev.tableSize) ? [...cp, 'maglev', 'tableSize'] : [...cp, 'maglev'];
      if (size === 0) ctx.error(at, 'tableSize must be set for maglev');
      if (size >= 5000011) ctx.error(at, 'tableSize must be less than 5000011 for maglev');
      if (!isPrime(size)) ctx.error(at, `tableSize must be a prime number for maglev (got ${size})`);
    }
  }
  if (present(lb.localityLbSetting) && present(lb.zoneAwareLbSetting)) ctx.error([...p, 'zoneAwareLbSetting'], 'only one of localityLbSetting or zoneAwareLbSetting can be set');
  checkLocalityLb(ctx, [...p, 'localityLbSetting'], lb.localityLbSetting, outlier);
  checkZoneAwareLb(ctx, [...p, 'zoneAwareLbSetting'], lb.zoneAwareLbSetting, outlier);
  checkDuration(ctx, [...p, 'warmupDurationSecs'], lb.warmupDurationSecs);
  const warm = lb.warmup;
  if (isObject(warm)) {
    checkDuration(ctx, [...p, 'warmup', 'duration'], warm.duration);
    if (num(warm.minimumPercent) > 100) ctx.error([...p, 'warmup', 'minimumPercent'], 'minimumPercent value should be less than or equal to 100');
    if (typeof warm.aggression === 'number' && warm.aggression < 1) ctx.error([...p, 'warmup', 'aggression'], 'aggression should be greater than or equal to 1');
  }
}

const topologyLabels = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

/** Region failover pairs: different regions, no zones, no wildcards. */
function checkFailover(ctx: ValidationContext, p: FieldPath, failover: readonly LocalityLoadBalancerSettingFailover[], scope: string): void {
  failover.forEach((f, i) => {
    if (!isObject(f)) return;
    const from = str(f.from);
    const to = str(f.to);
    const at: FieldPath = [...p, 'failover', i];
    if (from === to) ctx.error(at, `${scope} failover settings must specify different regions`);
    if (from.includes('/') || to.includes('/')) ctx.error(at, `${scope} failover only specify region`);
    if (from.includes('*') || to.includes('*')) ctx.error(at, `${scope} failover region should not contain '*' wildcard`);
  });
}

function checkLocalityLb(ctx: ValidationContext, p: FieldPath, lb: LocalityLoadBalancerSetting | undefined, outlier: OutlierDetection | undefined): void {
  if (!isObject(lb)) return;
  const distribute = items(lb.distribute);
  const failover = items(lb.failover);
  const priority = items(lb.failoverPriority);
  if (distribute.length > 0 && failover.length > 0) {
    ctx.error(p, "can not simultaneously specify 'distribute' and 'failover'");
    return;
  }
  if (failover.length > 0) {
    const label = priority.find((l) => topologyLabels.has(l));
    if (label !== undefined) {
      ctx.error([...p, 'failoverPriority', priority.indexOf(label)], `can not simultaneously set 'failover' and topology label '${label}' in 'failover_priority'`);
      return;
    }
  }
  const sources: [string, FieldPath][] = [];
  for (let i = 0; i < distribute.length; i++) {
    const d = distribute[i];
    if (!isObject(d)) continue;
    const dp: FieldPath = [...p, 'distribute', i];
    sources.push([str(d.from), [...dp, 'from']]);
    let total = 0;
    const dests: [string, FieldPath][] = [];
    for (const [loc, weight] of entries(d.to)) {
      dests.push([loc, [...dp, 'to', loc]]);
      if (typeof weight !== 'number' || weight <= 0 || weight > 100) {
        ctx.error([...dp, 'to', loc], 'locality weight must be in range [1, 100]');
        return;
      }
      total += weight;
    }
    if (total !== 100) {
      ctx.error([...dp, 'to'], `total locality weight ${total} != 100`);
      return;
    }
    checkLocalities(ctx, dests);
  }
  checkLocalities(ctx, sources);
  if ((failover.length > 0 || priority.length > 0) && !isObject(outlier)) ctx.warning(p, 'outlier detection policy must be provided for failover');
  checkFailover(ctx, p, failover, 'locality lb');
}

/** Localities (`region/zone/subzone`, one trailing `*` allowed) that do not overlap each other; stops at the first problem, as Istio does. */
function checkLocalities(ctx: ValidationContext, localities: readonly [string, FieldPath][]): void {
  const regions = new Map<string, Map<string, Set<string>>>();
  for (const [locality, at] of localities) {
    const stars = locality.split('*').length - 1;
    if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) {
      ctx.error(at, `locality ${locality} wildcard '*' number can not exceed 1 and must be in the end`);
      return;
    }
    const parts = splitN(locality, '/', 3);
    if (!regions.has('*') && parts.some((x) => x === '')) {
      ctx.error(at, `locality ${locality} must not contain empty region/zone/subzone info`);
      return;
    }
    if (regions.has('*') || !addLocality(regions, parts)) {
      ctx.error(at, `locality ${locality} overlap with previous specified ones`);
      return;
    }
  }
}

/** Records `region[/zone[/subzone]]`; false when an earlier locality already covers or equals it. */
function addLocality(regions: Map<string, Map<string, Set<string>>>, parts: readonly string[]): boolean {
  const [region = '', zone = '', subzone = ''] = parts;
  const zones = regions.get(region);
  if (parts.length === 1) {
    if (zones) return false;
    regions.set(region, new Map([['*', new Set(['*'])]]));
    return true;
  }
  if (!zones) {
    regions.set(region, new Map([[zone, new Set([parts.length === 2 ? '*' : subzone])]]));
    return true;
  }
  if (zones.has('*')) return false;
  if (parts.length === 2) {
    if (zones.has(zone)) return false;
    zones.set(zone, new Set(['*']));
    return true;
  }
  const subs = zones.get(zone);
  if (!subs) {
    zones.set(zone, new Set([subzone]));
    return true;
  }
  if (subs.has('*') || subs.has(subzone)) return false;
  subs.add(subzone);
  return true;
}

/** Go's strings.SplitN. */
function splitN(s: string, sep: string, n: number): string[] {
  const parts = s.split(sep);
  return parts.length <= n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join(sep)];
}

/** Zone-aware routing works within a region: failover is between regions, priorities may not use topology labels. */
function checkZoneAwareLb(ctx: ValidationContext, p: FieldPath, za: ZoneAwareLoadBalancerSetting | undefined, outlier: OutlierDetection | undefined): void {
  if (!isObject(za)) return;
  const failover = items(za.failover);
  const priority = items(za.failoverPriority);
  priority.forEach((label, i) => {
    if (typeof label === 'string' && topologyLabels.has(label)) {
      ctx.error([...p, 'failoverPriority', i], `zone aware lb failoverPriority cannot use topology label '${label}'; the locality is already taken into account`);
    }
  });
  checkFailover(ctx, p, failover, 'zone aware lb');
  if ((failover.length > 0 || priority.length > 0) && !isObject(outlier)) ctx.warning(p, 'outlier detection policy must be provided for failover');
}

const configMapPrefix = 'configmap://';

/** Istio's agent.ValidateTLS for upstream (client) TLS. */
function checkClientTLS(ctx: ValidationContext, p: FieldPath, tls: ClientTLSSettings | undefined, namespace: string): void {
  if (!isObject(tls)) return;
  const at = (f: string): FieldPath => [...p, f];
  const credentialName = str(tls.credentialName);
  if (credentialName.startsWith(configMapPrefix)) {
    const ref = credentialName.slice(configMapPrefix.length).split('/');
    if (ref.length > 2 || ref.some((x) => x === '')) ctx.error(at('credentialName'), `invalid configmap:// credentialName: ${q(credentialName)} must be configmap://<name> or configmap://<namespace>/<name>`);
    else if ((ref.length === 2 ? ref[0] : namespace) !== namespace || namespace === '') {
      ctx.error(at('credentialName'), `invalid configmap:// credentialName: namespace must match the configuration namespace ${q(namespace)}`);
    }
  }
  if (tls.insecureSkipVerify === true) {
    if (tls.mode === 'SIMPLE' && (str(tls.caCertificates) || credentialName || filled(tls.subjectAltNames))) {
      ctx.error(at('insecureSkipVerify'), 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true');
    }
    if (tls.mode === 'MUTUAL' && (str(tls.caCertificates) || filled(tls.subjectAltNames))) {
      ctx.error(at('insecureSkipVerify'), 'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true');
    }
  }
  if ((tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && credentialName) {
    const conflicting = (['clientCertificate', 'caCertificates', 'privateKey', 'caCrl'] as const).filter((f) => str(tls[f]));
    if (conflicting.length > 0) ctx.error(at(conflicting[0]!), 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set');
    return;
  }
  if (tls.mode === 'MUTUAL') {
    if (!str(tls.clientCertificate)) ctx.error(present(tls.clientCertificate) ? at('clientCertificate') : at('mode'), 'client certificate required for mutual tls');
    if (!str(tls.privateKey)) ctx.error(present(tls.privateKey) ? at('privateKey') : at('mode'), 'private key required for mutual tls');
  }
}
