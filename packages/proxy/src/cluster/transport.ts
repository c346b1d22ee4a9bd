// Opening one upstream connection: plain TCP or TLS (Envoy's transport sockets), with the
// cluster's connect timeout, bind address and keepalive. TLS takes its certificates from SDS
// secrets (`default`, `ROOTCA`) or inline/file data sources and verifies the peer's SANs against
// match_subject_alt_names, replacing hostname checks (mesh certificates carry only a SPIFFE URI).
import { parseSubjectAltNames } from '@weft/mesh';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { createSecureContext, type PeerCertificate, type SecureContext, connect as tlsConnect } from 'node:tls';
import { compileRe2, re2Problem } from '@weft/model';
import type { DataSource__Output, Secret__Output, UpstreamTlsContext__Output } from '@weft/xds';
import type { TransportChoice } from './config.ts';

export type SecretLookup = (name: string) => Secret__Output | undefined;

type StringMatcher = NonNullable<NonNullable<NonNullable<UpstreamTlsContext__Output['common_tls_context']>['validation_context']>['match_subject_alt_names']>[number];

/** What a TLS connection needs, resolved from the context and the current secrets. */
export interface TlsMaterial {
  readonly context: SecureContext;
  readonly servername: string | undefined;
  readonly alpn: readonly string[];
  /** Whether the peer chain is verified (a trusted CA is configured). */
  readonly verify: boolean;
  readonly sans: readonly StringMatcher[];
}

/** The TLS material of a transport choice, or the name of the first secret that is not there yet. */
export type TlsResolution = { material: TlsMaterial } | { missing: string };

function dataOf(d: DataSource__Output | null | undefined): Buffer | undefined {
  if (!d) return undefined;
  if (d.inline_bytes) return Buffer.from(d.inline_bytes);
  if (d.inline_string) return Buffer.from(d.inline_string);
  if (d.filename) return readFileSync(d.filename);
  if (d.environment_variable) {
    const v = process.env[d.environment_variable];
    return v === undefined ? undefined : Buffer.from(v);
  }
  return undefined;
}

interface Cached {
  certSecret: Secret__Output | undefined;
  caSecret: Secret__Output | undefined;
  material: TlsMaterial;
}

// Keyed by the decoded context: a cluster's choice lives as long as its definition.
const cache = new WeakMap<UpstreamTlsContext__Output, Cached>();

/**
 * Resolves an UpstreamTlsContext against the secrets. Cached per context and secret objects, so a
 * new connection costs two map lookups unless a secret rotated (then the new material is built).
 */
export function resolveTls(ctx: UpstreamTlsContext__Output, secrets: SecretLookup): TlsResolution {
  const common = ctx.common_tls_context;
  const certName = common?.tls_certificate_sds_secret_configs?.[0]?.name;
  const combined = common?.combined_validation_context;
  const caName = combined?.validation_context_sds_secret_config?.name;
  const certSecret = certName ? secrets(certName) : undefined;
  if (certName && !certSecret?.tls_certificate) return { missing: certName };
  const caSecret = caName ? secrets(caName) : undefined;
  if (caName && !caSecret?.validation_context) return { missing: caName };
  const hit = cache.get(ctx);
  if (hit && hit.certSecret === certSecret && hit.caSecret === caSecret) return { material: hit.material };

  const cert = certSecret?.tls_certificate ?? common?.tls_certificates?.[0];
  const validation = caSecret?.validation_context ?? combined?.default_validation_context ?? common?.validation_context;
  const ca = dataOf(caSecret?.validation_context?.trusted_ca ?? validation?.trusted_ca ?? combined?.default_validation_context?.trusted_ca);
  const sanSources = [combined?.default_validation_context, common?.validation_context, caSecret?.validation_context];
  const sans: StringMatcher[] = [];
  for (const v of sanSources) {
    for (const m of v?.match_subject_alt_names ?? []) sans.push(m);
    for (const m of v?.match_typed_subject_alt_names ?? []) if (m.matcher) sans.push(m.matcher);
  }
  const key = dataOf(cert?.private_key);
  const chain = dataOf(cert?.certificate_chain);
  const context = createSecureContext({
    ...(chain && key ? { cert: chain, key } : {}),
    ...(ca ? { ca } : {}),
    ...(common?.tls_params?.tls_minimum_protocol_version === 'TLSv1_3' ? { minVersion: 'TLSv1.3' as const } : { minVersion: 'TLSv1.2' as const }),
  });
  const material: TlsMaterial = {
    context,
    servername: ctx.sni || undefined,
    alpn: common?.alpn_protocols ?? [],
    verify: ca !== undefined,
    sans,
  };
  cache.set(ctx, { certSecret, caSecret, material });
  return { material };
}

function matches(m: StringMatcher, value: string): boolean {
  const v = m.ignore_case ? value.toLowerCase() : value;
  const norm = (s: string) => (m.ignore_case ? s.toLowerCase() : s);
  switch (m.match_pattern) {
    case 'exact':
      return v === norm(m.exact ?? '');
    case 'prefix':
      return v.startsWith(norm(m.prefix ?? ''));
    case 'suffix':
      return v.endsWith(norm(m.suffix ?? ''));
    case 'contains':
      return v.includes(norm(m.contains ?? ''));
    case 'safe_regex':
      // RE2, as Envoy's SAN matcher (compiled once per pattern); one RE2 refuses matches nothing (the cluster was NACKed for it).
      return re2Problem(m.safe_regex?.regex ?? '') === undefined && compileRe2(m.safe_regex?.regex ?? '').fullMatch(value);
    default:
      return false;
  }
}

/** `URI:spiffe://..., DNS:a.b` -> the SAN values. */
function subjectAltNames(cert: PeerCertificate): string[] {
  return parseSubjectAltNames(cert.subjectaltname).map((e) => e.value);
}

/** The peer's certificate is valid but names none of the identities the cluster expects. */
export class SanMismatchError extends Error {
  // No `code`: undici treats ERR_TLS_CERT_ALTNAME_INVALID specially and would replace this reason.
  override readonly name = 'SanMismatchError';
}

/** Null when a SAN of the peer satisfies one matcher (or none are configured), else the reason. */
export function checkSans(sans: readonly StringMatcher[], cert: PeerCertificate): Error | undefined {
  if (sans.length === 0) return undefined;
  const names = subjectAltNames(cert);
  for (const n of names) for (const m of sans) if (matches(m, n)) return undefined;
  return new SanMismatchError(`upstream certificate SANs [${names.join(', ')}] match none of the configured subject alt names`);
}

export interface DialOptions {
  connectTimeoutMs: number;
  bindAddress: string | undefined;
  keepaliveTimeS: number | undefined;
  tls: TlsMaterial | undefined;
  /** HTTP/2 by configuration: undici then speaks h2 on the socket whatever ALPN said (h2c has no ALPN). */
  h2: boolean;
}

export class ConnectTimeoutError extends Error {
  readonly code = 'UND_ERR_CONNECT_TIMEOUT';
  constructor(ms: number) {
    super(`connect timeout after ${ms} ms`);
    this.name = 'ConnectTimeoutError';
  }
}

type AlpnSocket = Socket & { alpnProtocol?: string | false | null };

/**
 * TLS sessions to resume, by the TLS material they were made with (its context, trust, SANs and
 * ALPN: new certificates or a new trust bundle make new material, so nothing resumes across them)
 * and then by endpoint. A full mTLS handshake costs both sidecars an RSA signature and a chain
 * verification, ~2-4 ms of one event loop: after any pause the pool opens connections for the
 * requests that piled up, and their handshakes made the next pause longer (the mesh hop's p99).
 * A resumed handshake (TLS 1.3 PSK with ECDHE, as Envoy resumes by default) skips both; the peer's
 * certificate is kept in the session, so the SAN check and the server's identity checks still run.
 */
const sessions = new WeakMap<TlsMaterial, Map<string, Buffer>>();
/** Endpoints remembered per TLS material (the oldest is forgotten first). */
const sessionsPerMaterial = 1024;

function sessionCache(tls: TlsMaterial): Map<string, Buffer> {
  let m = sessions.get(tls);
  if (!m) {
    m = new Map();
    sessions.set(tls, m);
  }
  return m;
}

/** Opens one connection; `done` runs exactly once, with the connected socket or the error. */
export function dial(address: string, port: number, o: DialOptions, done: (err: Error | null, socket: Socket | null) => void): void {
  let settled = false;
  const tls = o.tls;
  const endpoint = `${address}|${port}`;
  const resumable = tls ? sessionCache(tls) : undefined;
  const session = resumable?.get(endpoint);
  const socket: AlpnSocket = tls
    ? tlsConnect({
        host: address,
        port,
        ...(o.bindAddress ? { localAddress: o.bindAddress } : {}),
        secureContext: tls.context,
        ...(tls.servername ? { servername: tls.servername } : {}),
        ALPNProtocols: [...tls.alpn],
        rejectUnauthorized: tls.verify,
        checkServerIdentity: (_host, cert) => checkSans(tls.sans, cert),
        ...(session ? { session } : {}),
      })
    : netConnect({ host: address, port, noDelay: true, ...(o.bindAddress ? { localAddress: o.bindAddress } : {}) });
  if (resumable) {
    // TLS 1.3 sends tickets after the handshake; the newest is the one to offer next time.
    socket.on('session', (ticket: Buffer) => {
      resumable.delete(endpoint);
      resumable.set(endpoint, ticket);
      if (resumable.size > sessionsPerMaterial) resumable.delete(resumable.keys().next().value as string);
    });
  }
  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.destroy();
    // A session that did not lead to a connection is not offered again.
    if (session && resumable?.get(endpoint) === session) resumable.delete(endpoint);
    done(err, null);
  };
  const timer = setTimeout(() => fail(new ConnectTimeoutError(o.connectTimeoutMs)), o.connectTimeoutMs);
  socket.once('error', fail);
  socket.once(tls ? 'secureConnect' : 'connect', () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeListener('error', fail);
    if (tls) socket.setNoDelay(true);
    if (o.keepaliveTimeS !== undefined) socket.setKeepAlive(true, o.keepaliveTimeS * 1000);
    socket.alpnProtocol = o.h2 ? 'h2' : false;
    done(null, socket);
  });
}

/** Errors of a TLS dial that are the peer's certificate (Envoy's ssl.fail_verify_error). */
const verifyErrors = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE']);

/** Wraps a TLS dial's callback to count handshakes and failures by cause (SAN mismatch, untrusted chain, other). */
export function countTls(stats: Record<'ssl.handshake' | 'ssl.fail_verify_san' | 'ssl.fail_verify_error' | 'ssl.connection_error', number>, done: (err: Error | null, socket: Socket | null) => void): (err: Error | null, socket: Socket | null) => void {
  return (err, socket) => {
    if (!err) stats['ssl.handshake']++;
    else if (err instanceof SanMismatchError) stats['ssl.fail_verify_san']++;
    else if (verifyErrors.has((err as { code?: string }).code ?? '')) stats['ssl.fail_verify_error']++;
    else if (!(err instanceof ConnectTimeoutError) && (err as { code?: string }).code !== 'ECONNREFUSED') stats['ssl.connection_error']++;
    done(err, socket);
  };
}

/** Whether a transport choice is TLS. */
export function isTls(choice: TransportChoice | undefined): choice is TransportChoice & { tls: UpstreamTlsContext__Output } {
  return choice?.tls !== undefined;
}
