// A small backend for the proxy tests, run as its own process. HTTP: answers with its name and
// version and echoes the request (method, authority, path, headers) as JSON. Behaviour on demand:
//   ?delay=MS       wait before answering
//   ?status=N       answer with status N
//   ?fail=N         answer 503 to the first N attempts of one x-request-id (retries then succeed)
//   POST /control?status=N   answer N to everything from now on (0: back to normal)
//   ?call=HOST[:PORT][/PATH] first call that service through the sidecar (--sidecar ORIGIN), passing
//                   on the trace headers as Istio's BookInfo apps do; its reply is echoed as `called`
// TCP (--tcp): echoes every byte back after a `<name>:` greeting line.
//
//   node echo-backend.ts --name reviews --version v1 --address 127.10.1.11 [--port 0] [--tcp] [--sidecar http://127.10.1.11:15001]
// Prints one JSON line {"msg":"listening","port":N} on stdout once it listens.
import { createServer as createHttpServer, type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    version: { type: 'string', default: 'v1' },
    address: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    tcp: { type: 'boolean', default: false },
    sidecar: { type: 'string' },
  },
});
const name = values.name ?? 'echo';
const version = values.version ?? 'v1';
let forcedStatus = 0;
const attempts = new Map<string, number>();

/** The headers BookInfo's apps pass from an incoming request to the requests it causes. */
const propagated = [
  'x-request-id',
  'traceparent',
  'tracestate',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  'x-ot-span-context',
  'end-user',
  'user-agent',
];

/** `?call=`: one request to another service through this workload's sidecar; resolves with its status and JSON body. */
function callThroughSidecar(target: string, incoming: IncomingMessage): Promise<{ status: number; body: unknown }> {
  const slash = target.indexOf('/');
  const host = slash < 0 ? target : target.slice(0, slash);
  const path = slash < 0 ? '/' : target.slice(slash);
  const headers: Record<string, string> = { host };
  for (const h of propagated) {
    const v = incoming.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const sidecar = new URL(values.sidecar ?? 'http://127.0.0.1:15001');
  return new Promise((resolve) => {
    const r = httpRequest({ host: sidecar.hostname, port: sidecar.port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    r.on('error', (err) => resolve({ status: 0, body: err.message }));
    r.end();
  });
}

function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const call = new URL(req.url ?? '/', 'http://backend').searchParams.get('call');
  if (call) {
    void callThroughSidecar(call, req).then((called) => answer(req, res, body, called));
    return;
  }
  answer(req, res, body, undefined);
}

function answer(req: IncomingMessage, res: ServerResponse, body: Buffer, called: { status: number; body: unknown } | undefined): void {
  const url = new URL(req.url ?? '/', 'http://backend');
  if (url.pathname === '/control' && req.method === 'POST') {
    forcedStatus = Number(url.searchParams.get('status') ?? 0);
    res.end('ok\n');
    return;
  }
  const id = String(req.headers['x-request-id'] ?? '');
  const attempt = (attempts.get(id) ?? 0) + 1;
  if (id) attempts.set(id, attempt);
  if (attempts.size > 10_000) attempts.clear();
  const fail = Number(url.searchParams.get('fail') ?? 0);
  let status = forcedStatus || Number(url.searchParams.get('status') ?? 200);
  if (attempt <= fail) status = 503;
  const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
  const payload = JSON.stringify({ name, version, method: req.method, authority: req.headers.host, path: req.url, headers: req.headers, attempt, peer, body: body.toString('utf8'), ...(called ? { called } : {}) });
  const send = () => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', 'x-echo-name': name, 'x-echo-version': version, 'x-echo-attempt': String(attempt) });
    res.end(payload);
  };
  const delay = Number(url.searchParams.get('delay') ?? 0);
  if (delay > 0) setTimeout(send, delay);
  else send();
}

const server = values.tcp
  ? createTcpServer((socket) => {
      socket.on('error', () => {});
      socket.write(`${name}:\n`);
      socket.pipe(socket);
    })
  : createHttpServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handle(req, res, Buffer.concat(chunks)));
    });
server.listen(Number(values.port), values.address, () => {
  process.stdout.write(`${JSON.stringify({ msg: 'listening', name, version, address: values.address, port: (server.address() as AddressInfo).port })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
