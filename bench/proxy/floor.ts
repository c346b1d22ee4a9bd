// The platform's floor: the smallest forwarding proxy on the stack weft-proxy is built from
// (node:http server, undici Client, the same V8 flags), with no routing, filters, telemetry or
// resilience. Measured beside weft-proxy, it separates what Weft's own code costs from what Node's
// HTTP stack and the kernel cost: no proxy on this stack can do better than this row.
//   node --max-semi-space-size=4 --min-semi-space-size=4 floor.ts --address A --port P --upstream HOST:PORT
// Prints one JSON line {"msg":"listening","port":N} once it listens.
import { createServer, type OutgoingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Client as UndiciClient, Dispatcher } from 'undici';

const { values } = parseArgs({ options: { address: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' }, upstream: { type: 'string' } } });
if (!values.upstream) throw new Error('--upstream HOST:PORT is required');
// As weft-proxy loads it: the Client alone, not the package index.
const Client = createRequire(import.meta.url)('undici/lib/dispatcher/client.js') as typeof UndiciClient;
const clients = Array.from({ length: 16 }, () => new Client(`http://${values.upstream}`));
let next = 0;
const hopByHop = new Set(['connection', 'keep-alive', 'host', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const k in req.headers) if (!hopByHop.has(k)) headers[k] = req.headers[k]!;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {},
    onResponseStart(_controller, status, h) {
      const out: OutgoingHttpHeaders = {};
      for (const k in h) if (!hopByHop.has(k)) out[k] = h[k];
      res.writeHead(status, out);
    },
    onResponseData(_controller, chunk) {
      res.write(chunk);
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError(_controller, err) {
      if (!res.headersSent) res.writeHead(503);
      res.end(String(err));
    },
  };
  clients[next++ % clients.length]!.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers, body: null }, handler);
  req.resume();
});
server.listen(Number(values.port), values.address, () => {
  console.log(JSON.stringify({ msg: 'listening', port: (server.address() as AddressInfo).port }));
});
process.on('SIGTERM', () => process.exit(0));
