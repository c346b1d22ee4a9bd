// One ADS stream (go-control-plane's server/v3/stream): authenticate the caller, turn the first
// request's node into a Connection, then hand each request to state of the world or delta, under
// flow control. Refused streams never become connections.
import { type ServerDuplexStream, status } from '@grpc/grpc-js';
import type { Logger } from '@weft/model';
import type { DeltaDiscoveryRequest__Output, DiscoveryRequest__Output } from '@weft/xds';
import type { Proxy as MeshProxy, PushContext } from '../core/types.ts';
import type { ProxyParser } from './api.ts';
import { checkProxyIdentity, type XdsAuthentication, type XdsAuthenticator } from './authentication.ts';
import type { Connection, XdsMode } from './connection.ts';
import { onDeltaRequest } from './delta.ts';
import type { FlowControl } from './flow.ts';
import type { PilotMetrics } from './metrics.ts';
import type { Responder } from './respond.ts';
import { onSotwRequest } from './sotw.ts';

export type AdsCall = ServerDuplexStream<DiscoveryRequest__Output, unknown> | ServerDuplexStream<DeltaDiscoveryRequest__Output, unknown>;
type AnyRequest = DiscoveryRequest__Output | DeltaDiscoveryRequest__Output;

/** What a stream needs from the server. */
export interface StreamHost {
  readonly metrics: PilotMetrics;
  readonly log: Logger;
  readonly responder: Responder;
  readonly flow: FlowControl;
  readonly proxyFromNode: ProxyParser;
  /** The push context requests are answered from; undefined before the server started. */
  push(): PushContext | undefined;
  /** Registers a new connection (syncz, pushes, the connect event). */
  connect(init: { proxy: MeshProxy; mode: XdsMode; peer: string; identity?: string; authn?: string; write: (message: Buffer, done: () => void) => void }): Connection;
  close(conn: Connection): void;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Serves an ADS stream; with `authenticate` (the TLS port) only once the caller proved an identity its node matches. */
export function openStream(host: StreamHost, call: AdsCall, mode: XdsMode, authenticate: XdsAuthenticator | undefined): void {
  if (!authenticate) {
    serveStream(host, call, mode, undefined);
    return;
  }
  let result: ReturnType<XdsAuthenticator>;
  try {
    result = authenticate(call);
  } catch (err) {
    result = { reason: `authenticator failed: ${errorMessage(err)}` };
  }
  if (!(result instanceof Promise)) {
    serveStream(host, call, mode, result);
    return;
  }
  // No 'data' listener until the answer: the stream buffers the client's requests meanwhile.
  let gone = false;
  call.once('cancelled', () => {
    gone = true;
  });
  void result
    .catch((err: unknown): XdsAuthentication => ({ reason: `authenticator failed: ${errorMessage(err)}` }))
    .then((r) => {
      if (!gone) serveStream(host, call, mode, r);
    });
}

/** Serves a stream once its caller is known: `authentication` undefined on an unauthenticated port. */
function serveStream(host: StreamHost, call: AdsCall, mode: XdsMode, authentication: XdsAuthentication | undefined): void {
  let conn: Connection | undefined;
  let ended = false;
  const fail = (code: status, details: string) => {
    ended = true;
    host.log.warn('closing xDS stream', { peer: call.getPeer(), code: status[code], reason: details, ...(conn ? { proxy: conn.proxy.id } : {}) });
    call.emit('error', { code, details });
  };
  // Refused streams never become connections: nothing is generated for them and they are not in syncz.
  const refuse = (code: status.UNAUTHENTICATED | status.PERMISSION_DENIED, details: string, fields: Record<string, unknown>) => {
    ended = true;
    const reason = code === status.UNAUTHENTICATED ? 'unauthenticated' : 'permission_denied';
    host.metrics.refused.inc({ reason });
    host.log.warn(code === status.UNAUTHENTICATED ? 'xDS stream refused: client not authenticated' : 'xDS stream refused: node does not match the authenticated identity', {
      peer: call.getPeer(),
      code: status[code],
      ...fields,
    });
    call.emit('error', { code, details });
  };
  let identities: readonly string[] | undefined;
  let authn: string | undefined;
  if (authentication) {
    const result = authentication;
    if (result.identities === undefined || result.identities.length === 0) {
      // Refused either way; the first request only tells the log which node it claimed to be.
      const reason = result.identities === undefined ? result.reason : 'no identity';
      const timer = setTimeout(() => {
        if (!ended) refuse(status.UNAUTHENTICATED, 'authentication failure', { reason });
      }, 1000);
      const stop = () => {
        ended = true;
        clearTimeout(timer);
      };
      call.once('data', (req: AnyRequest) => {
        clearTimeout(timer);
        if (!ended) refuse(status.UNAUTHENTICATED, 'authentication failure', { node: req.node?.id ?? '', reason });
      });
      call.on('cancelled', stop);
      call.on('end', stop);
      return;
    }
    identities = result.identities;
    authn = result.via;
  }
  const close = () => {
    if (conn) host.close(conn);
  };
  const write = (message: Buffer, done: () => void) => (call as ServerDuplexStream<unknown, Buffer>).write(message, done);
  const handle = (req: AnyRequest) => {
    if (ended || conn?.closed) return;
    try {
      const push = host.push();
      if (!conn) {
        if (!push) return fail(status.UNAVAILABLE, 'server is not ready to serve discovery information');
        const node = req.node;
        if (!node?.id) return fail(status.INVALID_ARGUMENT, 'missing node information');
        let proxy: MeshProxy;
        try {
          proxy = host.proxyFromNode(node);
        } catch (err) {
          return fail(status.INVALID_ARGUMENT, `invalid node: ${errorMessage(err)}`);
        }
        // Per-virtual-host routes need delta (a removed virtual host must be said); on SotW the client gets whole route configurations.
        if (proxy.vhds && mode !== 'delta') {
          const { vhds: _, ...whole } = proxy;
          proxy = whole;
        }
        let identity: string | undefined;
        if (identities) {
          const checked = checkProxyIdentity(proxy, identities);
          if (checked.identity === undefined) {
            return refuse(status.PERMISSION_DENIED, `authorization failed: ${checked.reason}`, {
              node: node.id,
              identities,
              namespace: proxy.namespace,
              ...(proxy.serviceAccount ? { serviceAccount: proxy.serviceAccount } : {}),
              reason: checked.reason,
            });
          }
          identity = checked.identity;
        }
        conn = host.connect({ proxy, mode, peer: call.getPeer(), ...(identity !== undefined ? { identity } : {}), ...(authn !== undefined ? { authn } : {}), write });
      }
      if (!req.type_url) return fail(status.INVALID_ARGUMENT, 'request without type_url');
      if (mode === 'sotw') onSotwRequest(host.responder, conn, req as DiscoveryRequest__Output, push!);
      else onDeltaRequest(host.responder, conn, req as DeltaDiscoveryRequest__Output, push!);
    } catch (err) {
      host.log.error('xDS request failed', { error: errorMessage(err), ...(conn ? { proxy: conn.proxy.id } : {}) });
      fail(status.INTERNAL, errorMessage(err));
    }
  };
  // While slow readers hold too many response bytes, requests wait their turn (in order).
  call.on('data', (req: AnyRequest) => host.flow.admit(() => handle(req)));
  call.on('end', () => {
    close();
    call.end();
  });
  call.on('cancelled', close);
  call.on('error', close);
  call.on('close', close);
}
