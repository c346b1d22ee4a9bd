// The cost of local mode's owner check: one sock_diag exact-socket query per accepted connection.
// Prints microseconds per lookup for a live loopback connection (IPv4 and IPv6) and for a 4-tuple
// with no socket, and the time of a whole owner-only accept (connect, check, served) beside an
// unguarded one.
import net from 'node:net';
import { lookupPeerUid, OwnerGuard } from '@weft/guard';

const n = Number(process.env.GUARD_BENCH_LOOKUPS ?? 20_000);

async function connectedPair(host: string): Promise<{ server: net.Server; client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, host);
  return { server, client, accepted: await accepted };
}

function perLookup(label: string, local: { address: string; port: number }, remote: { address: string; port: number }, expectUid: number | undefined): void {
  for (let i = 0; i < 1000; i++) lookupPeerUid(local, remote);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = lookupPeerUid(local, remote);
    if (r.uid !== expectUid) throw new Error(`${label}: lookup gave ${JSON.stringify(r)}`);
  }
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(`guard: sock_diag lookup, ${label}: ${us.toFixed(2)} µs (${n} lookups)`);
}

async function acceptLoop(guarded: boolean, count: number): Promise<number> {
  const server = net.createServer((s) => s.end('x'));
  if (guarded) new OwnerGuard({ ownerUid: process.getuid!() }).protect(server, 'bench');
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', reject);
      c.on('data', () => {});
      c.on('end', () => resolve());
    });
  }
  const us = Number(process.hrtime.bigint() - t0) / 1000 / count;
  await new Promise((r) => server.close(r));
  return us;
}

const uid = process.getuid!();
for (const host of ['127.0.0.1', '::1']) {
  const p = await connectedPair(host);
  perLookup(`live ${host} connection`, { address: p.accepted.localAddress!, port: p.accepted.localPort! }, { address: p.accepted.remoteAddress!, port: p.accepted.remotePort! }, uid);
  p.client.destroy();
  p.accepted.destroy();
  p.server.close();
}
perLookup('no such socket', { address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 2 }, undefined);
const accepts = 2000;
const plain = await acceptLoop(false, accepts);
const owner = await acceptLoop(true, accepts);
console.log(`guard: connect + accept + answer, ${accepts} sequential connections: ${plain.toFixed(1)} µs unguarded, ${owner.toFixed(1)} µs owner-only`);
