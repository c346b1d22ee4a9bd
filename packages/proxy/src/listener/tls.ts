// Downstream TLS for filter chains with a `DownstreamTlsContext` (gateway servers in SIMPLE or
// MUTUAL mode): certificates inline, from files, or from SDS secrets in the snapshot (gateway
// credentials `kubernetes://<name>`, which local mode loads from files). Mesh mTLS (the `default`
// and `ROOTCA` secrets from the agent's SDS) plugs in through `TlsSecretSource` in issue 6.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { DownstreamTlsContext__Output, Secret__Output } from '@weft/xds';

type DataSource = NonNullable<NonNullable<Secret__Output['tls_certificate']>['certificate_chain']>;
type TlsCertificate = NonNullable<Secret__Output['tls_certificate']>;

/** Secrets by SDS name (the snapshot's, plus whatever a secret provider adds). */
export type TlsSecretSource = (name: string) => Secret__Output | undefined;

export interface ServerTls {
  context: SecureContext;
  alpn: string[];
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

function readSource(d: DataSource | null | undefined, what: string): Buffer | undefined {
  if (!d) return undefined;
  switch (d.specifier) {
    case 'filename':
      return readFileSync(d.filename!);
    case 'inline_bytes':
      return Buffer.from(d.inline_bytes!);
    case 'inline_string':
      return Buffer.from(d.inline_string!, 'utf8');
    case 'environment_variable': {
      const v = process.env[d.environment_variable!];
      if (v === undefined) throw new Error(`${what}: environment variable ${d.environment_variable} is not set`);
      return Buffer.from(v, 'utf8');
    }
    default:
      return undefined;
  }
}

const protocolVersions: Record<string, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' | undefined> = {
  TLSv1_0: 'TLSv1',
  TLSv1_1: 'TLSv1.1',
  TLSv1_2: 'TLSv1.2',
  TLSv1_3: 'TLSv1.3',
};

/**
 * The secure context of a chain's TLS settings. Throws when a certificate it names is missing
 * (an SDS secret not yet available, a file that cannot be read): the connection is then closed.
 */
export function serverTls(ctx: DownstreamTlsContext__Output, secret: TlsSecretSource): ServerTls {
  const common = ctx.common_tls_context;
  const certs: TlsCertificate[] = [...(common?.tls_certificates ?? [])];
  for (const sds of common?.tls_certificate_sds_secret_configs ?? []) {
    const s = secret(sds.name);
    if (!s?.tls_certificate) throw new Error(`TLS certificate secret ${JSON.stringify(sds.name)} is not available`);
    certs.push(s.tls_certificate);
  }
  if (certs.length === 0) throw new Error('the TLS context has no certificate');
  const chains = certs.map((c, i) => readSource(c.certificate_chain, `certificate ${i}`)!);
  const options: SecureContextOptions = {
    cert: chains,
    key: certs.map((c, i) => readSource(c.private_key, `private key ${i}`)!),
  };
  const params = common?.tls_params;
  const min = params ? protocolVersions[params.tls_minimum_protocol_version] : undefined;
  const max = params ? protocolVersions[params.tls_maximum_protocol_version] : undefined;
  if (min) options.minVersion = min;
  if (max) options.maxVersion = max;
  if (params?.cipher_suites.length) options.ciphers = params.cipher_suites.join(':');
  // Client certificates: a CA from the validation context (inline, file, or an SDS secret).
  let ca: Buffer | undefined;
  const vc = common?.validation_context ?? common?.combined_validation_context?.default_validation_context;
  if (vc?.trusted_ca) ca = readSource(vc.trusted_ca, 'trusted CA');
  const vcSds = common?.validation_context_sds_secret_config ?? common?.combined_validation_context?.validation_context_sds_secret_config;
  if (!ca && vcSds) {
    const s = secret(vcSds.name);
    if (!s?.validation_context?.trusted_ca) throw new Error(`validation context secret ${JSON.stringify(vcSds.name)} is not available`);
    ca = readSource(s.validation_context.trusted_ca, 'trusted CA');
  }
  if (ca) options.ca = ca;
  const requireClient = ctx.require_client_certificate?.value ?? false;
  // Sessions resume only under the same certificates and the same client verification, as Envoy
  // derives its session ID context from them. Without one, OpenSSL refuses (internal_error) any
  // session offered while client certificates are requested: every resumed mesh connection failed.
  const digest = createHash('sha256');
  for (const part of [...chains, ca ?? Buffer.alloc(0), Buffer.from(requireClient ? 'require' : 'optional')]) digest.update(part).update('\0');
  options.sessionIdContext = digest.digest('hex').slice(0, 32);
  return {
    context: createSecureContext(options),
    alpn: common?.alpn_protocols.length ? [...common.alpn_protocols] : ['h2', 'http/1.1'],
    requestCert: requireClient || !!ca,
    rejectUnauthorized: requireClient,
  };
}

/** Caches `serverTls` per TLS context object and the secret objects it used. */
export class ServerTlsCache {
  readonly #cache = new WeakMap<DownstreamTlsContext__Output, { secrets: (Secret__Output | undefined)[]; tls: ServerTls }>();

  get(ctx: DownstreamTlsContext__Output, secret: TlsSecretSource): ServerTls {
    const common = ctx.common_tls_context;
    const names = [
      ...(common?.tls_certificate_sds_secret_configs ?? []).map((s) => s.name),
      ...[common?.validation_context_sds_secret_config ?? common?.combined_validation_context?.validation_context_sds_secret_config].filter((s) => !!s).map((s) => s.name),
    ];
    const secrets = names.map(secret);
    const hit = this.#cache.get(ctx);
    if (hit && hit.secrets.length === secrets.length && hit.secrets.every((s, i) => s === secrets[i])) return hit.tls;
    const tls = serverTls(ctx, secret);
    this.#cache.set(ctx, { secrets, tls });
    return tls;
  }
}

type HandleWithVerify = { _handle?: { verifyError?: () => (Error & { code?: string }) | null } | null };

/**
 * What `tls.Server` does for its sockets (onServerSocketSecure) and a server TLSSocket made from an
 * accepted socket does not: applies the client certificate's verification result. OpenSSL already
 * refused a missing certificate when one is required; this refuses an untrusted one (returns false
 * when the connection must close) and sets `authorized`/`authorizationError` for what follows.
 */
export function verifyClientCertificate(socket: TLSSocket, reject: boolean): boolean {
  const handle = (socket as unknown as HandleWithVerify)._handle;
  if (!handle?.verifyError && process.versions.bun !== undefined) {
    // Bun's server TLSSocket has no handle.verifyError but does what tls.Server does itself: an
    // untrusted client certificate fails the handshake under rejectUnauthorized, and otherwise
    // `authorized`/`authorizationError` hold the result (false with no certificate). Without this
    // every mTLS connection to a proxy on Bun was refused as unverified.
    return socket.authorized === true || !reject;
  }
  const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
  // Without the internal check, fail closed: no client is taken as verified.
  const error = handle?.verifyError ? handle.verifyError() : new Error('client certificate verification is unavailable');
  if (!presented || error) {
    socket.authorized = false;
    if (error) socket.authorizationError = error;
    return !reject;
  }
  socket.authorized = true;
  return true;
}
