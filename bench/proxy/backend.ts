// The bench's backend: answers every request with the same 1 KB body, nothing else.
//   node backend.ts --address 127.20.0.2
// Prints one JSON line {"msg":"listening","port":N} once it listens.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { address: { type: 'string', default: '127.0.0.1' } } });
const body = Buffer.alloc(1024, 'x');
const headers = { 'content-type': 'application/octet-stream', 'content-length': String(body.length) };
const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.listen(0, values.address, () => {
  console.log(JSON.stringify({ msg: 'listening', port: (server.address() as AddressInfo).port }));
});
process.on('SIGTERM', () => process.exit(0));
