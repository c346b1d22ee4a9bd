// Delta xDS (go-control-plane's server/v3/delta): every resource carries a version (the hash of its
// bytes); a response carries only what the client lacks plus `removed_resources`; subscribe and
// unsubscribe lists change the watch; `initial_resource_versions` on reconnect means what the
// client already holds is not resent.
import { type DeltaDiscoveryRequest__Output, TypeUrl } from '@weft/xds';
import type { PushContext } from '../core/types.ts';
import { absentVersion, type Connection, WatchedType } from './connection.ts';
import { deltaField, type EncodedResource, type Generated, intern, type SharedMessage } from './generation.ts';
import type { RespondOptions, Responder } from './respond.ts';
import { clusterHost, isWildcardType, shortTypeName } from './types.ts';
import { deltaResponse } from './wire.ts';

/** ACK/NACK by nonce; subscribe and unsubscribe lists change the watch. */
export function onDeltaRequest(r: Responder, conn: Connection, req: DeltaDiscoveryRequest__Output, push: PushContext): void {
  const type = req.type_url;
  let w = conn.watched.get(type);

  if (!w) {
    w = new WatchedType(type);
    conn.watched.set(type, w);
    const subscribe = req.resource_names_subscribe;
    w.wildcard = subscribe.includes('*') || (isWildcardType(type) && subscribe.length === 0);
    for (const n of subscribe) if (n !== '*') w.names.add(intern(n));
    // Endpoint pushes find subscribers through the host of each cluster name (push-queue.ts).
    if (type === TypeUrl.ClusterLoadAssignment) for (const n of w.names) clusterHost(n);
    // A reconnecting client says what it has; only differences are sent.
    for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) w.known.set(intern(name), version);
    if (w.idle) return;
    r.respondToRequest(conn, w, push, undefined);
    if (type === TypeUrl.Cluster) {
      // The server must follow a CDS answer with EDS, whether or not the client asks (Envoy issue 33607).
      const eds = conn.watched.get(TypeUrl.ClusterLoadAssignment);
      if (eds && !eds.idle) r.respondToRequest(conn, eds, push, undefined);
    }
    return;
  }

  if (req.resource_names_subscribe.length > 0 || req.resource_names_unsubscribe.length > 0) materialize(w);
  if (req.response_nonce !== '') {
    if (req.response_nonce !== w.nonceSent) r.metrics.expiredNonce.inc({ type: shortTypeName(type) });
    else if (req.error_detail) {
      if (w.nonceNacked !== req.response_nonce) r.recordNack(conn, w, req.error_detail.message || `status ${req.error_detail.code}`);
    } else if (w.nonceAcked !== req.response_nonce) r.recordAck(conn, w);
  }

  // Subscription changes are deltas, so they are applied even on a stale nonce (unlike SotW, the
  // next request would not repeat them).
  const added: string[] = [];
  let wildcardAdded = false;
  for (const n of req.resource_names_subscribe) {
    if (n === '*') {
      wildcardAdded ||= !w.wildcard;
      w.wildcard = true;
      continue;
    }
    const name = intern(n);
    w.names.add(name);
    if (type === TypeUrl.ClusterLoadAssignment) clusterHost(name);
    // An explicit (re)subscription is answered even if we believe the client has the resource.
    w.known.delete(name);
    added.push(name);
  }
  for (const n of req.resource_names_unsubscribe) {
    if (n === '*') w.wildcard = false;
    else {
      w.names.delete(n);
      if (!w.wildcard) w.known.delete(n);
    }
  }
  if (wildcardAdded) r.respondToRequest(conn, w, push, undefined);
  else if (added.length > 0) r.respondToRequest(conn, w, push, added.sort());
  else if (w.alwaysRespond && !w.idle) {
    w.alwaysRespond = false;
    r.respondToRequest(conn, w, push, undefined);
  }
}

/** What one generated set lacks of another: shared by every proxy that held `from` and is sent `to`. */
interface SetDiff {
  changed: EncodedResource[];
  removed: string[];
  /** The response carrying it, encoded once for every proxy that gets it (with one nonce). */
  message?: SharedMessage;
}

const diffs = new WeakMap<Generated, WeakMap<Generated, SetDiff>>();

/** What a client holds before its first answer: the whole set is the diff from it. */
const nothing: Generated = { id: 0, resources: [], byName: new Map() };

function diffOf(from: Generated, to: Generated): SetDiff {
  let byTo = diffs.get(from);
  if (!byTo) {
    byTo = new WeakMap();
    diffs.set(from, byTo);
  }
  let d = byTo.get(to);
  if (!d) {
    d = { changed: to.resources.filter((e) => from.byName.get(e.name)?.version !== e.version), removed: [] };
    for (const e of from.resources) if (!to.byName.has(e.name)) d.removed.push(e.name);
    d.removed.sort();
    byTo.set(to, d);
  }
  return d;
}

/** `known` as a map again (a subscription change or a named response needs it). */
function materialize(w: WatchedType): void {
  const held = w.knownSet;
  if (!held) return;
  w.knownSet = undefined;
  w.known.clear();
  for (const e of held.resources) w.known.set(e.name, e.version);
}

/** Sends the resources whose versions the client lacks and the names it holds that are gone; false when there are none. */
export function sendDelta(r: Responder, conn: Connection, w: WatchedType, push: PushContext, generated: Generated, options: RespondOptions, names: readonly string[] | undefined): boolean {
  let changed: EncodedResource[];
  const removed: string[] = [];
  // A response every proxy holding the same set gets alike: encoded once, shared (as SotW's whole-set responses).
  let shared: { slot: { message?: SharedMessage }; id: string } | undefined;
  if (names === undefined && w.knownSet) {
    const from = w.knownSet;
    const d = diffOf(from, generated);
    if (!options.force && d.changed.length === 0 && d.removed.length === 0) {
      w.knownSet = generated;
      return false;
    }
    changed = d.changed;
    removed.push(...d.removed);
    shared = { slot: d, id: `${generated.id.toString(36)}.${from.id.toString(36)}` };
  } else {
    materialize(w);
    changed = generated.resources.filter((e) => w.known.get(e.name) !== e.version);
    if (names === undefined) {
      for (const [name, version] of w.known) {
        if (generated.byName.has(name)) continue;
        if (version !== absentVersion) removed.push(name);
        w.known.delete(name);
      }
    } else {
      // A named resource that does not exist is reported as removed, once.
      for (const name of names) {
        if (generated.byName.has(name) || w.known.get(name) === absentVersion) continue;
        removed.push(name);
        w.known.set(name, absentVersion);
      }
    }
    if (!options.force && changed.length === 0 && removed.length === 0) return false;
    removed.sort();
    // The whole set to a client that holds none of it (a new stream's first answer).
    if (changed.length === generated.resources.length && removed.length === 0) shared = { slot: diffOf(nothing, generated), id: generated.id.toString(36) };
  }
  if (names === undefined) {
    // The client now holds exactly the generated set.
    w.knownSet = generated;
    w.known.clear();
  } else for (const e of changed) w.known.set(e.name, e.version);
  let nonce: string;
  let bytes: Buffer;
  if (shared) {
    let m = shared.slot.message;
    if (m?.version !== push.version) {
      const n = `${r.sharedNonce(push.version, 0)}d${shared.id}`;
      m = { version: push.version, nonce: n, bytes: deltaResponse(push.version, changed.map(deltaField), w.typeUrl, removed, n) };
      shared.slot.message = m;
    }
    nonce = m.nonce;
    bytes = m.bytes;
  } else {
    nonce = r.nonce();
    bytes = deltaResponse(push.version, changed.map(deltaField), w.typeUrl, removed, nonce);
  }
  r.write(conn, bytes);
  r.recordSent(conn, w, push.version, nonce, changed.length, options.start);
  return true;
}
