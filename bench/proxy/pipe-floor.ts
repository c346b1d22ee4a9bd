// Layer 4: bytes piped both ways over node:net, no HTTP at all. The cheapest any forwarder on this
// runtime can be; beside the HTTP floors it shows what parsing and forwarding HTTP costs.
//   node pipe-floor.ts --address A --port P --upstream HOST:PORT [--workers N]
// Prints one JSON line {"msg":"listening","port":N} once it listens.
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { listenOnLoops } from './event-loops.ts';

const { values } = parseArgs({ options: { address: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' }, upstream: { type: 'string' }, workers: { type: 'string', default: '1' } } });
if (!values.upstream) throw new Error('--upstream HOST:PORT is required');
const i = values.upstream.lastIndexOf(':');
const server = createServer({ noDelay: true }, (down) => {
  const up = connect(Number(values.upstream!.slice(i + 1)), values.upstream!.slice(0, i));
  up.setNoDelay(true);
  down.pipe(up).pipe(down);
  const close = () => {
    down.destroy();
    up.destroy();
  };
  down.on('error', close).on('close', close);
  up.on('error', close).on('close', close);
});
await listenOnLoops(server, new URL(import.meta.url), { address: values.address, port: Number(values.port), workers: Number(values.workers) });
process.on('SIGTERM', () => process.exit(0));
