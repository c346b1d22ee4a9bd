// N event loops for a floor (--workers N), the way Envoy's --concurrency N runs: one process, one
// thread per loop, each loop with its own listening socket on the same address and port
// (SO_REUSEPORT, so the kernel spreads new connections over the loops by address hash, as Envoy's
// listeners do on Linux) and its own upstream connections; nothing is handed between loops. The main
// thread is loop 1 and starts N-1 worker threads running the same file with the same arguments; the
// process's CPU and RSS (/proc/<pid>) count every loop. node:cluster would be N processes behind one
// accepting primary, closer to nginx's workers than to Envoy's.
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
