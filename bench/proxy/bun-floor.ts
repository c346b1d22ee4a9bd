// A floor for stack (a) of issue 14: Bun's own HTTP server and client (Bun.serve + fetch, keep-alive
// pooled by Bun), forwarding only, no routing, filters or telemetry. Needs Bun (`bun` from npm).
//   bun bun-floor.ts --address A --port P --upstream HOST:PORT
// Prints one JSON line {"msg":"listening","port":N} once it listens.
import { parseArgs } from 'node:util';

interface BunServer {
  port: number;
}
interface BunApi {
  serve(options: { hostname: string; port: number; fetch(req: Request): Promise<Response> | Response }): BunServer;
}
const bun = (globalThis as unknown as { Bun?: BunApi }).Bun;
if (!bun) throw new Error('bun-floor.ts runs on Bun');
const { values } = parseArgs({ options: { address: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' }, upstream: { type: 'string' } } });
if (!values.upstream) throw new Error('--upstream HOST:PORT is required');
const upstream = `http://${values.upstream}`;
const server = bun.serve({
  hostname: values.address,
  port: Number(values.port),
  async fetch(req) {
    const url = new URL(req.url);
    const resp = await fetch(upstream + url.pathname + url.search, { method: req.method, headers: req.headers, body: req.body, redirect: 'manual', decompress: false } as RequestInit);
    return new Response(resp.body, { status: resp.status, headers: resp.headers });
  },
});
console.log(JSON.stringify({ msg: 'listening', port: server.port }));
process.on('SIGTERM', () => process.exit(0));
