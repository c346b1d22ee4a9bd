// The admission webhook server on 15017 (istiod's port): HTTPS with a serving certificate from
// the mesh CA (renewed without a restart), `/validate` and `/inject` taking AdmissionReview v1.
// Input is bounded and checked before any handler sees it: a body over the limit, a body that is
// not an AdmissionReview, a wrong method or content type each get an HTTP error naming the problem;
// a handler that throws answers 500 with the reason. Nothing a caller sends stops the server.
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLogger, type Logger } from '@weft/model';
import { type AdmissionHandler, admissionReview, parseAdmissionReview } from './webhook-admission.ts';

/** The largest AdmissionReview accepted (the API server caps objects at 3 MiB in etcd; a review may hold two). */
export const defaultMaxAdmissionBytes = 4 * 1024 * 1024;

export interface WebhookServerOptions {
  /** Default 127.0.0.1 (in a pod: 0.0.0.0). */
  host?: string;
  /** Default 15017; 0 picks a free port. */
  port?: number;
  /** The serving certificate chain and key (PEM); `setCertificate` replaces them without a restart. */
  certificate: { certChainPem: string; privateKeyPem: string };
  /** Path -> handler, e.g. `/validate`, `/inject`. A path also serves its subpaths (`/inject/...`, as Istio's). */
  handlers: Record<string, AdmissionHandler>;
  maxBodyBytes?: number;
  logger?: Logger;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * Reads the rest of a refused body without keeping it, so that the client, still sending, reads
 * the refusal instead of a reset; a body many times the limit is cut off.
 */
function discardRest(req: IncomingMessage, limit: number, seen: number): void {
  let size = seen;
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > 4 * limit) req.socket.destroy();
  });
  req.resume();
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    discardRest(req, limit, 0);
    return Promise.reject(new HttpError(413, `AdmissionReview of ${declared} bytes refused: the limit is ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        discardRest(req, limit, size);
        reject(new HttpError(413, `AdmissionReview refused: more than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export class WebhookServer {
  readonly port: number;
  readonly host: string;
  readonly #server: Server;

  private constructor(server: Server, host: string, port: number) {
    this.#server = server;
    this.host = host;
    this.port = port;
  }

  static async start(o: WebhookServerOptions): Promise<WebhookServer> {
    const log = o.logger ?? createLogger({ scope: 'webhook' });
    const limit = o.maxBodyBytes ?? defaultMaxAdmissionBytes;
    const server = createServer({ cert: o.certificate.certChainPem, key: o.certificate.privateKeyPem, minVersion: 'TLSv1.2' }, (req, res) => {
      void handle(req, res).catch((err: unknown) => {
        log.error('webhook request failed', { path: req.url, error: err });
        if (!res.headersSent) send(res, 500, `webhook error: ${err instanceof Error ? err.message : String(err)}\n`);
        else res.destroy();
      });
    });
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;

    const send = (res: ServerResponse, status: number, text: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    const handlerFor = (path: string): AdmissionHandler | undefined => {
      for (const [prefix, h] of Object.entries(o.handlers)) if (path === prefix || path.startsWith(`${prefix}/`)) return h;
      return undefined;
    };
    const handle = async (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const handler = handlerFor(path);
      if (!handler) return send(res, 404, `no webhook at ${path}; try ${Object.keys(o.handlers).join(' or ')}\n`);
      if (req.method !== 'POST') return send(res, 405, `${req.method} ${path}: webhooks take POST\n`);
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== 'application/json') return send(res, 415, `content type ${JSON.stringify(type)}: webhooks take application/json\n`);
      let body: string;
      try {
        body = await readBody(req, limit);
      } catch (e) {
        if (e instanceof HttpError) {
          log.warn('admission request refused', { path, status: e.status, reason: e.message });
          return send(res, e.status, `${e.message}\n`);
        }
        throw e;
      }
      const parsed = parseAdmissionReview(body);
      if ('error' in parsed) {
        log.warn('malformed AdmissionReview refused', { path, reason: parsed.error });
        return send(res, 400, `malformed AdmissionReview: ${parsed.error}\n`);
      }
      const { request } = parsed;
      let response: ReturnType<AdmissionHandler>;
      try {
        response = handler(request);
      } catch (err) {
        // A bug decides nothing: the API server applies the webhook's failure policy to a denial it can read.
        log.error('admission handler failed', { path, uid: request.uid, kind: request.kind.kind, error: err });
        response = { allowed: false, status: { code: 500, message: `internal error in the Weft webhook: ${err instanceof Error ? err.message : String(err)}` } };
      }
      const text = JSON.stringify(admissionReview(request.uid, response));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
    };

    const host = o.host ?? '127.0.0.1';
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? 15017, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
    server.on('tlsClientError', (err) => log.debug('webhook TLS handshake failed', { error: err.message }));
    log.info('webhooks listening', { address: host, port, paths: Object.keys(o.handlers) });
    return new WebhookServer(server, host, port);
  }

  /** A renewed certificate (or one from a new root) for the next handshakes. */
  setCertificate(certificate: { certChainPem: string; privateKeyPem: string }): void {
    this.#server.setSecureContext({ cert: certificate.certChainPem, key: certificate.privateKeyPem, minVersion: 'TLSv1.2' });
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
