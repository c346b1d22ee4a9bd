// Request smuggling through the sidecar, as an attacker writes it: raw bytes on a keep-alive
// connection to the outbound port, each message ambiguous about where the body ends (RFC 9112
// section 6.3, 11.2). A proxy that reads the framing one way while the upstream reads it another
// lets a second request ride inside the first one's body. The sidecar must refuse every ambiguous
// message with 400 and close the connection, and the upstream must never see the hidden request.
// The upstream here is a raw TCP server that records every byte it gets.
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { smuggledPath, smugglingAttacks, wellFramedPipeline } from '@weft/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join, serviceEntry, workloadEntry } from './config.ts';
import { type ProxyProcess, startProxy, startWeftd, type Weftd, writeConfig } from './mesh.ts';

const ip = { app: '127.10.13.1', upstream: '127.10.13.2' };
let dir: string;
let weftd: Weftd;
let sidecar: ProxyProcess;
let upstream: Server;
/** Everything the upstream received, across connections. */
let received = '';

function rawUpstream(): Promise<Server> {
  const server = createServer((socket: Socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      // One answer per request line seen: enough for the valid cases; ambiguous ones never get here.
      const requests = chunk.toString('latin1').match(/^(GET|POST|PUT) [^ ]+ HTTP\/1\.1\r$/gm) ?? [];
      for (const r of requests) {
        const body = `saw ${r.trim()}`;
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\ncontent-type: text/plain\r\n\r\n${body}`);
      }
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, ip.upstream, () => resolve(server)));
}

/** Writes `bytes` on a fresh connection to the sidecar and reads until the sidecar closes it (or 3 s). */
function exchange(bytes: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(15001, ip.app);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, 3000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on('error', () => {});
    socket.write(bytes, 'latin1');
  });
}

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
const authority = 'smuggle.default.svc.cluster.local:9080';

beforeAll(async () => {
  dir = await mkdtemp(joinPath(tmpdir(), 'weft-e2e-smuggling-'));
  upstream = await rawUpstream();
  const port = (upstream.address() as AddressInfo).port;
  await writeConfig(
    dir,
    'smuggle.yaml',
    join(serviceEntry('smuggle', 'smuggle'), workloadEntry({ name: 'smuggle-v1', app: 'smuggle', version: 'v1', address: ip.upstream, port })),
  );
  weftd = await startWeftd(dir);
  sidecar = await startProxy({ xdsPort: weftd.xdsPort, ip: ip.app, pod: 'app-1', labels: 'app=app,version=v1' });
}, 60_000);

afterAll(async () => {
  await sidecar?.proc.stop();
  await weftd?.proc.stop();
  upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('request smuggling: the sidecar refuses ambiguous framing (400, connection closed) and the upstream never sees the hidden request', () => {
  const attacks = smugglingAttacks(authority);
  for (const [name, bytes] of attacks) {
    it(name, async () => {
      received = '';
      const { text, closed } = await exchange(bytes);
      expect(statuses(text), text).toEqual([400]);
      expect(closed).toBe(true);
      expect(received).not.toContain(smuggledPath);
    });
  }

  it('still forwards what is well framed: a chunked POST, then a pipelined GET on the same connection, each answered once', async () => {
    received = '';
    const { text } = await exchange(wellFramedPipeline(authority));
    expect(statuses(text), `${text}\n---\n${received}`).toEqual([200, 200]);
    expect(text).toContain('saw POST /upload HTTP/1.1');
    expect(text).toContain('saw GET /next HTTP/1.1');
    expect(received).toContain('hello');
  });
});
