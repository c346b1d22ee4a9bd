// A minimal capturing sidecar for tests: listens where the capture rules send traffic (15001
// outbound, 15006 inbound), reads each connection's original destination and forwards the TCP
// stream there. Run it as the proxy UID (1337) so that its own connections are not captured again.
// It logs one JSON line per connection and, when the stream starts with an HTTP/1 request line,
// adds an `x-weft-capture: <pod>/<listener> <original destination>` header, so the app can show
// which sidecars a request went through.
//
//   node capture-proxy.ts --pod NAME [--outbound-port 15001] [--inbound-port 15006]
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { getOriginalDst } from '../original-dst.ts';

export interface CaptureProxyOptions {
  pod: string;
  outboundPort?: number;
  inboundPort?: number;
  /** Where JSON lines go; default stdout. */
  log?: (line: string) => void;
}

export interface CaptureProxy {
  close(): Promise<void>;
}

type Listener = 'outbound' | 'inbound';

// Inbound passthrough source: the capture rules never redirect traffic from it (see rules.ts).
const passthroughV4 = '127.0.0.6';
const passthroughV6 = '::6';
const requestLine = /^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/;

function tagRequest(head: Buffer, tag: string): Buffer {
  const text = head.toString('latin1');
  if (!requestLine.test(text)) return head;
  const end = text.indexOf('\r\n') + 2;
  return Buffer.concat([head.subarray(0, end), Buffer.from(`x-weft-capture: ${tag}\r\n`, 'latin1'), head.subarray(end)]);
}

export async function startCaptureProxy(options: CaptureProxyOptions): Promise<CaptureProxy> {
  const log = options.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const emit = (msg: string, fields: Record<string, unknown>): void =>
    log(JSON.stringify({ time: new Date().toISOString(), level: 'info', scope: 'capture-proxy', msg, pod: options.pod, ...fields }));

  const handle = (listener: Listener, client: net.Socket): void => {
    client.on('error', () => client.destroy());
    const original = getOriginalDst(client);
    if (!original) {
      // Reached directly rather than redirected: forwarding to our own address would loop.
      emit('connection was not redirected; closing', { listener, local: `${client.localAddress}:${client.localPort}` });
      client.destroy();
      return;
    }
    const dst = `${original.address}:${original.port}`;
    emit('captured', { listener, originalDst: dst, peer: `${client.remoteAddress}:${client.remotePort}` });
    const v6 = original.address.includes(':');
    const upstream = net.connect({
      host: original.address,
      port: original.port,
      ...(listener === 'inbound' ? { localAddress: v6 ? passthroughV6 : passthroughV4 } : {}),
    });
    upstream.on('error', (err) => {
      emit('upstream failed', { listener, originalDst: dst, error: err.message });
      client.destroy();
    });
    let first = true;
    client.on('data', (chunk: Buffer) => {
      // Tagging only the first chunk is enough for the single small request a test sends.
      const out = first ? tagRequest(chunk, `${options.pod}/${listener} ${dst}`) : chunk;
      first = false;
      if (!upstream.write(out)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    client.on('end', () => upstream.end());
    client.on('close', () => upstream.destroy());
    upstream.pipe(client);
  };

  const servers: net.Server[] = [];
  const listen = (listener: Listener, port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const server = net.createServer((s) => handle(listener, s));
      server.once('error', reject);
      server.listen(port, '0.0.0.0', () => {
        servers.push(server);
        resolve();
      });
    });
  await listen('outbound', options.outboundPort ?? 15001);
  await listen('inbound', options.inboundPort ?? 15006);
  emit('ready', { outboundPort: options.outboundPort ?? 15001, inboundPort: options.inboundPort ?? 15006, uid: process.getuid?.() });
  return {
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  };
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const pod = arg(argv, '--pod') ?? 'pod';
  await startCaptureProxy({
    pod,
    outboundPort: Number(arg(argv, '--outbound-port') ?? 15001),
    inboundPort: Number(arg(argv, '--inbound-port') ?? 15006),
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
}
