// The request-smuggling cases e2e/proxy sends weft-proxy (@weft/testing's smugglingAttacks: raw bytes on one
// connection, as an attacker writes them), sent through the native byte path prototype (native-floor.ts) to a raw upstream
// that records every byte: each must get a 400 with nothing reaching the upstream, and a chunked request
// followed by a pipelined one must reach it as those two requests. hop.ts runs it before measuring the
// prototype, in each mode it measures, and leaves the prototype's rows out if any case fails.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { smugglingAttacks, wellFramedPipeline } from '@weft/testing';

const refused = smugglingAttacks('smuggle');
const pipelined = wellFramedPipeline('smuggle');

function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(port, '127.0.0.1', () => socket.end(raw));
    socket.on('data', (d) => (text += d));
    socket.on('error', () => {});
    socket.on('close', () => resolve(text));
    setTimeout(() => socket.destroy(), 2000);
  });
}

/** Runs every case through a fresh prototype (`runtime native-floor.ts ...args`); the failures, or []. */
export async function nativeSmugglingFailures(runtime: string, args: readonly string[]): Promise<string[]> {
  const seen: string[] = [];
  const upstream = createServer((s) => s.on('data', (d) => {
    seen.push(d.toString('latin1'));
    s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  }));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const floor = fileURLToPath(new URL('./native-floor.ts', import.meta.url));
  const child = spawn(runtime, [floor, ...args, '--address', '127.0.0.1', '--upstream', `127.0.0.1:${(upstream.address() as AddressInfo).port}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const failures: string[] = [];
  try {
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = (JSON.parse(line.toString().split('\n')[0]!) as { port: number }).port;
    const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]).join(',');
    for (const [name, raw] of refused) {
      seen.length = 0;
      const text = await exchange(port, raw);
      if (statuses(text) !== '400' || seen.length > 0) failures.push(`${name}: client got ${statuses(text) || 'nothing'}, upstream got ${JSON.stringify(seen.join(''))}`);
    }
    seen.length = 0;
    const text = await exchange(port, pipelined);
    const requests = seen.join('').match(/^(GET|POST) \S+/gm)?.join(' ');
    if (statuses(text) !== '200,200' || requests !== 'POST /upload GET /next') failures.push(`chunked then pipelined: client got ${statuses(text) || 'nothing'}, upstream got ${requests ?? 'nothing'}`);
  } finally {
    child.kill();
    upstream.close();
  }
  return failures;
}
