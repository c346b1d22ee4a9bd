// State of the world (go-control-plane's server/v3/sotw): ACK/NACK by nonce, subscription changes
// by comparing the names a request repeats; Listener and Cluster responses carry the whole set,
// other types only the resources whose bytes changed (what the client holds is not resent).
import { type DiscoveryRequest__Output, TypeUrl } from '@weft/xds';
import type { PushContext } from '../core/types.ts';
import { type Connection, WatchedType } from './connection.ts';
import { type EncodedResource, type Generated, intern, sotwField } from './generation.ts';
import type { RespondOptions, Responder } from './respond.ts';
import { clusterHost, isFullStateType, isWildcardType, shortTypeName } from './types.ts';
import { sotwResourceField, sotwResponse } from './wire.ts';

export function onSotwRequest(r: Responder, conn: Connection, req: DiscoveryRequest__Output, push: PushContext): void {
  const type = req.type_url;
  let w = conn.watched.get(type);

  if (req.error_detail) {
    // A NACK of anything but the last response is stale; the client has since been sent newer config.
    if (!w || req.response_nonce !== w.nonceSent) {
      if (w) r.metrics.expiredNonce.inc({ type: shortTypeName(type) });
      return;
    }
    if (w.nonceNacked !== req.response_nonce) r.recordNack(conn, w, req.error_detail.message || `status ${req.error_detail.code}`);
    // The rejected version is not sent again; a changed subscription is still answered.
    answerChange(r, conn, w, push, setSotwNames(w, req));
    return;
  }

  if (!w || req.response_nonce === '') {
    // First request for the type on this stream (or a client that starts over): answer in full.
    const named = w?.named ?? false;
    w = new WatchedType(type);
    w.named = named;
    conn.watched.set(type, w);
    setSotwNames(w, req);
    if (w.idle) return;
    r.respondToRequest(conn, w, push, undefined);
    if (type === TypeUrl.Cluster) {
      // Envoy warms new clusters by re-requesting EDS with unchanged names; answer that request.
      const eds = conn.watched.get(TypeUrl.ClusterLoadAssignment);
      if (eds) eds.alwaysRespond = true;
    }
    return;
  }

  if (req.response_nonce !== w.nonceSent) {
    r.metrics.expiredNonce.inc({ type: shortTypeName(type) });
    return;
  }

  r.recordAck(conn, w);
  const added = setSotwNames(w, req);
  if (w.alwaysRespond) {
    w.alwaysRespond = false;
    if (!w.idle) r.respondToRequest(conn, w, push, undefined);
    return;
  }
  answerChange(r, conn, w, push, added);
}

/**
 * Answers a changed subscription: LDS/CDS with the whole set (their state of the world), other
 * types with the names added. Unsubscribing from everything is not answered: the client has
 * dropped what it held, and a later subscription starts from nothing.
 */
function answerChange(r: Responder, conn: Connection, w: WatchedType, push: PushContext, added: string[] | undefined): void {
  if (added === undefined) return;
  if (w.idle) {
    w.known.clear();
    return;
  }
  if (isWildcardType(w.typeUrl)) r.respondToRequest(conn, w, push, undefined);
  else if (added.length > 0) r.respondToRequest(conn, w, push, added);
}

/**
 * Applies a SotW request's names to a watch. Returns the names added, or undefined when the
 * subscription did not change.
 */
function setSotwNames(w: WatchedType, req: DiscoveryRequest__Output): string[] | undefined {
  // Most requests are ACKs repeating the subscription byte for byte.
  const key = (req as { namesKey?: string }).namesKey;
  if (key !== undefined && key === w.namesKey) return undefined;
  const names = req.resource_names;
  if (key !== undefined) w.namesKey = key;
  // An empty list is the legacy wildcard only until the client names something; then it unsubscribes.
  const wildcard = isWildcardType(w.typeUrl) && (names.includes('*') || (names.length === 0 && !w.named));
  if (names.length > 0) w.named = true;
  // The common case, an ACK repeating the subscription, changes nothing and allocates nothing.
  const explicit = names.length - (names.includes('*') ? 1 : 0);
  if (wildcard === w.wildcard && explicit === w.names.size && names.every((n) => n === '*' || w.names.has(n))) return undefined;
  const next = new Set<string>();
  for (const n of names) if (n !== '*') next.add(intern(n));
  const added = [...next].filter((n) => !w.names.has(n)).sort();
  // Endpoint pushes find subscribers through the host of each cluster name (push-queue.ts).
  if (w.typeUrl === TypeUrl.ClusterLoadAssignment) for (const n of added) clusterHost(n);
  w.wildcard = wildcard;
  w.names.clear();
  for (const n of next) w.names.add(n);
  return added;
}

/** Sends what the client lacks as a DiscoveryResponse; false when there is nothing to send. */
export function sendSotw(r: Responder, conn: Connection, w: WatchedType, push: PushContext, generated: Generated, options: RespondOptions): boolean {
  let resources: EncodedResource[];
  if (isFullStateType(w.typeUrl)) {
    // Listeners and clusters: every response is the complete set; send only if the set changed.
    const same = !options.force && generated.resources.length === w.known.size && generated.resources.every((e) => w.known.get(e.name) === e.version);
    if (same) return false;
    resources = generated.resources;
    w.known.clear();
    for (const e of resources) w.known.set(e.name, e.version);
  } else {
    // Other types may carry only what changed; what the client was sent and still has is not resent.
    if (!options.force) {
      const changed = generated.resources.filter((e) => w.known.get(e.name) !== e.version);
      if (changed.length === 0) return false;
      // All of it changed: send the shared whole-set response rather than a copy.
      resources = changed.length === generated.resources.length ? generated.resources : changed;
    } else resources = generated.resources;
    for (const e of resources) w.known.set(e.name, e.version);
    if (w.known.size > w.names.size) for (const name of w.known.keys()) if (!w.names.has(name)) w.known.delete(name);
  }
  let nonce: string;
  let bytes: Buffer;
  if (resources === generated.resources) {
    let m = generated.sotwMessage;
    if (m?.version !== push.version) {
      const shared = r.sharedNonce(push.version, generated.id);
      // The resources' own field bytes are not kept for this: the whole set is one message already (6 MB a proxy for 5,000 VirtualServices).
      m = { version: push.version, nonce: shared, bytes: sotwResponse(push.version, resources.map((e) => e.sotwField ?? sotwResourceField(e.any)), w.typeUrl, shared) };
      generated.sotwMessage = m;
    }
    nonce = m.nonce;
    bytes = m.bytes;
  } else {
    nonce = r.nonce();
    bytes = sotwResponse(push.version, resources.map(sotwField), w.typeUrl, nonce);
  }
  r.write(conn, bytes);
  r.recordSent(conn, w, push.version, nonce, resources.length, options.start);
  return true;
}
