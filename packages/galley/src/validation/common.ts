// Name, host, port and pattern rules shared by every kind's validator, as Istio applies them.
import { parseDurationNanos } from '@weft/mesh';
import { compileRe2, re2MaxProgramSize, re2Problem } from '@weft/model';

const dns1123Label = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const lowerDns1123Label = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const wildcardLabel = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

/** A DNS-1123 label as Kubernetes names use it: lowercase, digits and '-', at most 63. */
export function isDns1123Label(s: string): boolean {
  return s.length > 0 && s.length <= 63 && lowerDns1123Label.test(s);
}

/** A DNS-1123 subdomain (Kubernetes object names): dot-separated lowercase labels, at most 253. */
export function isDns1123Subdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every((l) => l.length <= 63 && lowerDns1123Label.test(l));
}

/** Explains why `s` is not a valid DNS-1123 label, or returns undefined. */
export function dns1123LabelError(s: string): string | undefined {
  if (s === '') return 'must not be empty';
  if (s.length > 63) return `${JSON.stringify(s)} is longer than 63 characters`;
  if (!lowerDns1123Label.test(s)) return `${JSON.stringify(s)} is not a valid DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)`;
  return undefined;
}

/** Labels of a domain, allowing one trailing dot (FQDN). Host labels may have upper case, as in Istio. */
function labelsError(domain: string, labels: string[]): string | undefined {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (i === labels.length - 1 && l === '' && i > 0) return undefined;
    if (l.length > 63 || !dns1123Label.test(l)) return `domain name ${JSON.stringify(domain)} is invalid (label ${JSON.stringify(l)} is not a DNS-1123 label)`;
  }
  return undefined;
}

/** A host that may start with a wildcard label (`*.example.com`, `*`, `*-foo.com`), as in VirtualService hosts. */
export function wildcardDomainError(domain: string): string | undefined {
  if (domain === '') return 'domain name must not be empty';
  if (domain.length > 255) return `domain name ${JSON.stringify(domain.slice(0, 30))}… is longer than 255 characters`;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (first.length > 63 || !wildcardLabel.test(first)) return `domain name ${JSON.stringify(domain)} is invalid (label ${JSON.stringify(first)} is not a DNS-1123 label or a wildcard)`;
  if (dot >= 0) return labelsError(domain, domain.slice(dot + 1).split('.'));
  return undefined;
}

/** A fully qualified domain without wildcards (`reviews.default.svc.cluster.local`). */
export function fqdnError(domain: string): string | undefined {
  if (domain === '') return 'domain name must not be empty';
  if (domain.length > 255) return `domain name ${JSON.stringify(domain.slice(0, 30))}… is longer than 255 characters`;
  return labelsError(domain, domain.split('.'));
}

export function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

export function portError(n: number | undefined): string | undefined {
  if (n === undefined) return 'port number is required';
  if (!isPort(n)) return `port number ${n} must be in the range 1..65535`;
  return undefined;
}

/**
 * Regexes are RE2, compiled by @weft/model as the proxies compile them (Istio validates with Go's
 * regexp, whose syntax re2js shares): what RE2 refuses is an error quoting the pattern and naming
 * the construct (backreferences, lookaround, `\C`, repeat counts over 1000, bad syntax).
 */
export function regexError(pattern: string): string | undefined {
  return re2Problem(pattern, { maxProgramSize: Number.POSITIVE_INFINITY });
}

/**
 * A regex RE2 compiles to a program larger than proxies accept (`re2.max_program_size.error_level`).
 * Istio's validation does not measure it (it caps the length at 1024 instead) and accepts it, but
 * every proxy then rejects the routes that carry it: worth a warning.
 */
export function regexSizeWarning(pattern: string): string | undefined {
  if (regexError(pattern)) return undefined;
  const size = compileRe2(pattern, { maxProgramSize: Number.POSITIVE_INFINITY }).programSize;
  if (size <= re2MaxProgramSize) return undefined;
  return `regex ${JSON.stringify(pattern)} compiles to an RE2 program of ${size} instructions, more than the ${re2MaxProgramSize} proxies accept (re2.max_program_size.error_level): every proxy will reject the routes that carry it`;
}

const labelKeyName = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const labelValue = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** A Kubernetes label key: optional DNS-1123 subdomain prefix and '/', then a name of at most 63. */
export function labelKeyError(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) return `label key ${JSON.stringify(key)} has an invalid prefix (must be a DNS-1123 subdomain)`;
  if (name === '' || name.length > 63 || !labelKeyName.test(name)) return `label key ${JSON.stringify(key)} is invalid (a name of at most 63 letters, digits, '-', '_' or '.', optionally prefixed by a DNS subdomain and '/')`;
  return undefined;
}

export function labelValueError(value: string): string | undefined {
  if (value.length > 63 || !labelValue.test(value)) return `label value ${JSON.stringify(value)} is invalid (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)`;
  return undefined;
}

const ipv4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isIPv4(s: string): boolean {
  return ipv4.test(s);
}

export function isIPv6(s: string): boolean {
  if (!s.includes(':')) return false;
  let t = s;
  const lastColon = t.lastIndexOf(':');
  const tail = t.slice(lastColon + 1);
  let groupsMax = 8;
  if (tail.includes('.')) {
    if (!isIPv4(tail)) return false;
    t = `${t.slice(0, lastColon + 1)}0`;
    groupsMax = 7;
  }
  const dbl = t.split('::');
  if (dbl.length > 2) return false;
  const parts = (x: string) => (x === '' ? [] : x.split(':'));
  const groups = [...parts(dbl[0]!), ...(dbl.length === 2 ? parts(dbl[1]!) : [])];
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return dbl.length === 2 ? groups.length < groupsMax + (groupsMax === 7 ? 1 : 0) : groups.length === groupsMax + (groupsMax === 7 ? 1 : 0);
}

export function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/** An IP address or CIDR block (`10.0.0.0/8`, `2001:db8::/32`). */
export function cidrError(s: string): string | undefined {
  const slash = s.indexOf('/');
  const ip = slash < 0 ? s : s.slice(0, slash);
  if (!isIP(ip)) return `${JSON.stringify(s)} is not a valid IP address or CIDR block`;
  if (slash >= 0) {
    const bits = s.slice(slash + 1);
    const max = isIPv4(ip) ? 32 : 128;
    if (!/^\d+$/.test(bits) || Number(bits) > max) return `${JSON.stringify(s)} has an invalid prefix length (0..${max})`;
  }
  return undefined;
}

/** `ns/name` or `name` as Istio gateway references are written; returns the parts or an error. */
export function parseGatewayRef(ref: string): { namespace?: string; name: string } | { error: string } {
  if (ref === 'mesh') return { name: 'mesh' };
  const parts = ref.split('/');
  if (parts.length > 2) return { error: `gateway ${JSON.stringify(ref)} is invalid: write <namespace>/<name> or <name>` };
  const [a, b] = parts;
  const name = (b ?? a)!;
  const namespace = b !== undefined ? a : undefined;
  if (namespace !== undefined && !isDns1123Label(namespace)) return { error: `gateway ${JSON.stringify(ref)} has an invalid namespace ${JSON.stringify(namespace)}` };
  // Istio accepts dotted gateway names (a legacy `name.namespace.svc.cluster.local` form).
  if (!isDns1123Subdomain(name)) return { error: `gateway ${JSON.stringify(ref)} has an invalid name ${JSON.stringify(name)} (must be a DNS-1123 name)` };
  return namespace !== undefined ? { namespace, name } : { name };
}

export const isString = (v: unknown): v is string => typeof v === 'string';
export const nonEmpty = <T>(xs: readonly T[] | undefined | null): xs is readonly T[] => Array.isArray(xs) && xs.length > 0;

// ---------------------------------------------------------------------------------------------
// Appended for the networking kinds (usable by any kind).
// ---------------------------------------------------------------------------------------------

/**
 * Istio's `ValidateDuration` for proto durations: at least 1ms and a whole number of milliseconds.
 * Undefined when fine or when the text is not a duration at all (the loader reports that).
 */
export function istioDurationError(text: string): string | undefined {
  const ns = parseDurationNanos(text);
  if (ns === undefined) return undefined;
  if (ns < 1_000_000n) return `duration must be greater than 1ms (got ${text})`;
  if (ns % 1_000_000n !== 0n) return `only durations to ms precision are supported (got ${text})`;
  return undefined;
}

const anyCaseDns1123Label = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

/** Istio's `labels.IsDNS1123Label`: like Kubernetes' but upper case letters are accepted (namespaces, subset and port names). */
export function isIstioDns1123Label(s: string): boolean {
  return s.length > 0 && s.length <= 63 && anyCaseDns1123Label.test(s);
}
