// N event loops for a floor (--workers N), the way Envoy's --concurrency N runs: one process, one
// thread per loop, each loop with its own listening socket on the same address and port
// (SO_REUSEPORT, so the kernel spreads new connections over the loops by address hash, as Envoy's
// listeners do on Linux) and its own upstream connections; nothing is handed between loops. The main
// thread is loop 1 and starts N-1 worker threads running the same file with the same arguments; the
// process's CPU and RSS (/proc/<pid>) count every loop. node:cluster would be N processes behind one
// accepting primary, closer to nginx's workers than to Envoy's.
// Measured 2026-12-07 (hop.ts, closed loop, 32 connections, 2 cores shared with the load generator and backend;
// 14 rounds, each pair in the same round): 2 loops gave the llhttp codec floor 1.00x its one-loop saturation
// (median), on Bun 0.94x, the L4 pipe 0.89x, for +3-20% CPU per request and +30 MB RSS on Node (+10-15 on Bun).
// At saturation one floor loop is 30-60% busy: the machine's cores are the limit, not the event loop.
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** Listens on every loop, then (main thread) prints {"msg":"listening","port":N} once all of them do. */
export async function listenOnLoops(server: Server, file: string | URL, options: { address: string; port: number; workers: number }): Promise<void> {
  const reusePort = options.workers > 1;
  const port = isMainThread ? options.port : (workerData as { port: number }).port;
  server.listen({ host: options.address, port, reusePort });
  await once(server, 'listening');
  if (!isMainThread) {
    parentPort!.postMessage('listening');
    return;
  }
  const bound = (server.address() as AddressInfo).port;
  const workers = Array.from({ length: options.workers - 1 }, () => new Worker(file, { argv: process.argv.slice(2), workerData: { port: bound } }));
  await Promise.all(workers.map((w) => once(w, 'message')));
  console.log(JSON.stringify({ msg: 'listening', port: bound, loops: options.workers }));
}
