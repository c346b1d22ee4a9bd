// x-forwarded-client-cert, as Envoy's connection manager sets it (forward_client_cert_details and
// set_current_client_cert_details; pilot configures APPEND_FORWARD with Subject, URI and DNS on
// every sidecar inbound chain). On an mTLS connection the proxy adds one element,
//   By=<own URI SAN>;Hash=<sha256 hex of the peer certificate>;Subject="<peer subject>";URI=<peer URI SAN>
// appended to what came in (APPEND_FORWARD) or replacing it (SANITIZE_SET). Without a client
// certificate the header is removed, so a plaintext client cannot claim an identity. SANITIZE
// (the default) is the router's: it drops the header for every request.
import { createHash } from 'node:crypto';
import type { HttpConnectionManager__Output } from '@weft/xds';
import type { ConnectionManagerFilterFactory, DownstreamConnection, HttpFilter, HttpFilterContext, HttpStreamHooks } from '../core/filters.ts';
import { peerCertificateNames } from '../core/peer.ts';

type Mode = HttpConnectionManager__Output['forward_client_cert_details'];

interface Details {
  cert: boolean;
  chain: boolean;
  subject: boolean;
  uri: boolean;
  dns: boolean;
}

interface PeerFacts {
  hash: string;
  subject: string;
  uris: readonly string[];
  dns: readonly string[];
  pem: string;
  /** The element last built for this connection, and for which details (a filter's, constant). */
  element?: string;
  elementFor?: Details;
}

// One parse per connection, whatever the number of requests on it.
const peers = new WeakMap<DownstreamConnection, PeerFacts>();

/** `CN=a\nO=b` (Node) in RFC 2253 order and form, as Envoy prints a subject: `O=b,CN=a`. */
function rfc2253(subject: string): string {
  if (!subject) return '';
  return subject
    .split('\n')
    .filter((l) => l.length > 0)
    .reverse()
    .map((l) => {
      const eq = l.indexOf('=');
      const value = l.slice(eq + 1).replace(/([,+"\\<>;])/g, '\\$1');
      return `${l.slice(0, eq)}=${value}`;
    })
    .join(',');
}

function peerFacts(c: DownstreamConnection): PeerFacts | undefined {
  const der = c.peerCertificate;
  if (!der) return undefined;
  let f = peers.get(c);
  if (!f) {
    const p = peerCertificateNames(c);
    if (!p) return undefined;
    f = {
      hash: createHash('sha256').update(der).digest('hex'),
      subject: rfc2253(p.cert.subject),
      uris: p.uris,
      dns: p.dns,
      pem: p.cert.toString(),
    };
    peers.set(c, f);
  }
  return f;
}

/** The element this hop adds for the connection's client certificate (Envoy's field order). */
export function clientCertElement(c: DownstreamConnection, details: Details): string | undefined {
  const peer = peerFacts(c);
  if (!peer) return undefined;
  // Everything in it is the connection's: built once per connection, not per request.
  if (peer.elementFor === details && peer.element !== undefined) return peer.element;
  const parts: string[] = [];
  if (c.localPrincipal) parts.push(`By=${c.localPrincipal}`);
  parts.push(`Hash=${peer.hash}`);
  if (details.cert) parts.push(`Cert="${encodeURIComponent(peer.pem)}"`);
  if (details.chain) parts.push(`Chain="${encodeURIComponent(peer.pem)}"`);
  if (details.subject) parts.push(`Subject="${peer.subject}"`);
  if (details.uri) {
    if (peer.uris.length === 0) parts.push('URI=');
    for (const u of peer.uris) parts.push(`URI=${u}`);
  }
  if (details.dns) for (const d of peer.dns) parts.push(`DNS=${d}`);
  peer.element = parts.join(';');
  peer.elementFor = details;
  return peer.element;
}

class XfccFilter implements HttpFilter {
  readonly name = 'x-forwarded-client-cert';
  readonly #mode: Mode;
  readonly #details: Details;
  readonly #hooks: HttpStreamHooks;

  constructor(mode: Mode, details: Details) {
    this.#mode = mode;
    this.#details = details;
    this.#hooks = { onRequest: (ctx) => this.#onRequest(ctx) };
  }

  begin(): HttpStreamHooks {
    return this.#hooks;
  }

  #onRequest(ctx: HttpFilterContext): undefined {
    const h = ctx.requestHeaders;
    const c = ctx.connection;
    if (!c.peerCertificate) {
      // Not mutual TLS: the header cannot be trusted.
      delete h['x-forwarded-client-cert'];
      return undefined;
    }
    if (this.#mode === 'FORWARD_ONLY') return undefined;
    const element = clientCertElement(c, this.#details);
    if (!element) return undefined;
    const prior = h['x-forwarded-client-cert'];
    if (this.#mode === 'APPEND_FORWARD' && prior !== undefined) {
      const joined = Array.isArray(prior) ? prior.join(',') : prior;
      h['x-forwarded-client-cert'] = joined ? `${joined},${element}` : element;
    } else {
      h['x-forwarded-client-cert'] = element;
    }
    return undefined;
  }
}

/**
 * The connection-manager filter: for APPEND_FORWARD, SANITIZE_SET and FORWARD_ONLY chains (SANITIZE,
 * the default, is the router's; ALWAYS_FORWARD_ONLY leaves the header alone).
 */
export const xfccFilterFactory: ConnectionManagerFilterFactory = (hcm) => {
  const mode = hcm.forward_client_cert_details;
  if (mode !== 'APPEND_FORWARD' && mode !== 'SANITIZE_SET' && mode !== 'FORWARD_ONLY') return undefined;
  const d = hcm.set_current_client_cert_details;
  return new XfccFilter(mode, {
    cert: d?.cert ?? false,
    chain: d?.chain ?? false,
    subject: d?.subject?.value ?? false,
    uri: d?.uri ?? false,
    dns: d?.dns ?? false,
  });
};
