// The application's probes through the status port (15020 /app-health/...), as the kubelet runs an
// injected pod's rewritten probes: a real application on a real port behind a real status server.
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDownwardApiLabels, parseProxyFlags, UsageError } from '../runtime/flags.ts';
import { runWaitCommand } from '../runtime/wait.ts';
import { parseAppProbers, probeSourceAddress, runAppProbe } from './app-probe.ts';
import { TelemetryRuntime } from './runtime.ts';

const node = { type: 'sidecar' as const, ip: '127.0.0.1', pod: 'reviews-v1-1', namespace: 'default', labels: {} };
let app: Server;
let appPort: number;
let closedPort: number;
let healthy = true;
let seenHost: string | undefined;
let rt: TelemetryRuntime;
let ready = false;

beforeAll(async () => {
  app = createHttpServer((req, res) => {
    seenHost = req.headers.host;
    if (req.url === '/ready') {
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(healthy ? 'ok' : 'warming up');
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/elsewhere' });
      res.end();
    } else if (req.url === '/slow') {
      setTimeout(() => res.end('late'), 3000).unref();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  appPort = (app.address() as AddressInfo).port;
  const closed = createTcpServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  closedPort = (closed.address() as AddressInfo).port;
  closed.close();
  const probers = parseAppProbers(
    JSON.stringify({
      '/app-health/reviews/readyz': { httpGet: { path: '/ready', port: appPort, scheme: 'HTTP' }, timeoutSeconds: 1 },
      '/app-health/reviews/startupz': { httpGet: { path: '/moved', port: appPort, scheme: 'HTTP' }, timeoutSeconds: 1 },
      '/app-health/reviews/livez': { tcpSocket: { port: appPort }, timeoutSeconds: 1 },
      '/app-health/gone/livez': { tcpSocket: { port: closedPort }, timeoutSeconds: 1 },
      '/app-health/slow/readyz': { httpGet: { path: '/slow', port: appPort }, timeoutSeconds: 1 },
    }),
  );
  rt = new TelemetryRuntime({ node, snapshot: () => undefined });
  await rt.listen({ host: '127.0.0.1', statusPort: 0, ready: () => ready, appProbers: probers, appProbeAddress: '127.0.0.1' });
});
afterAll(async () => {
  await rt?.close();
  await new Promise<void>((r) => app.close(() => r()));
});

const probe = async (path: string) => {
  const r = await fetch(`http://127.0.0.1:${rt.statusPort}${path}`);
  return { status: r.status, text: await r.text() };
};

describe('15020 /app-health', () => {
  it('answers an HTTP probe with the application’s status and body, naming the application’s port in Host', async () => {
    healthy = true;
    expect(await probe('/app-health/reviews/readyz')).toEqual({ status: 200, text: 'ok' });
    expect(seenHost).toBe(`127.0.0.1:${appPort}`);
    healthy = false;
    expect(await probe('/app-health/reviews/readyz')).toEqual({ status: 503, text: 'warming up' });
  });

  it('counts a redirect as success, as the kubelet does', async () => {
    expect((await probe('/app-health/reviews/startupz')).status).toBe(200);
  });

  it('answers a TCP probe 200 when the port accepts, 500 when it refuses', async () => {
    expect((await probe('/app-health/reviews/livez')).status).toBe(200);
    const gone = await probe('/app-health/gone/livez');
    expect(gone.status).toBe(500);
    expect(gone.text).toMatch(new RegExp(`tcp probe to port ${closedPort} failed: .*ECONNREFUSED`));
  });

  it('gives up after the probe’s timeout with 500', async () => {
    const t0 = Date.now();
    const r = await probe('/app-health/slow/readyz');
    expect(r.status).toBe(500);
    expect(r.text).toMatch(/no answer within 1000 ms/);
    expect(Date.now() - t0).toBeLessThan(2900);
  });

  it('refuses a path it has no probe for', async () => {
    expect(await probe('/app-health/other/readyz')).toEqual({ status: 400, text: 'no application probe is configured for /app-health/other/readyz\n' });
  });
});

describe('what an injected pod gives weft-proxy', () => {
  it('ISTIO_KUBE_APP_PROBERS becomes the probes; a malformed value is a usage error naming it', () => {
    const o = parseProxyFlags(['--mode', 'capture'], { ISTIO_KUBE_APP_PROBERS: '{"/app-health/a/readyz":{"httpGet":{"path":"/r","port":8080,"scheme":"HTTP"},"timeoutSeconds":1}}' }, 'sidecar');
    expect(o !== 'help' && [...(o.appProbers?.keys() ?? [])]).toEqual(['/app-health/a/readyz']);
    expect(() => parseProxyFlags(['--mode', 'capture'], { ISTIO_KUBE_APP_PROBERS: '{"/app-health/a/readyz":{"exec":{}}}' }, 'sidecar')).toThrow(
      new UsageError('ISTIO_KUBE_APP_PROBERS /app-health/a/readyz: needs httpGet or tcpSocket with a numeric port'),
    );
  });

  it('--labels-file reads the downward-API labels file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-labels-'));
    const file = join(dir, 'labels');
    writeFileSync(file, 'app="reviews"\npod-template-hash="5d9f7c"\nservice.istio.io/canonical-name="reviews"\nversion="v1"');
    const o = parseProxyFlags(['--mode', 'capture', '--labels-file', file], {}, 'sidecar');
    expect(o !== 'help' && o.node.labels).toEqual({ app: 'reviews', 'pod-template-hash': '5d9f7c', 'service.istio.io/canonical-name': 'reviews', version: 'v1' });
    expect(() => parseDownwardApiLabels('app=reviews')).toThrow('line 1 is not key="value"');
    expect(() => parseProxyFlags(['--labels-file', join(dir, 'nope')], {}, 'sidecar')).toThrow(/--labels-file .*nope: no such file/);
  });

  it('weft-proxy wait returns once the proxy is ready, and fails after its timeout', async () => {
    const io = { out: () => {}, err: () => {} };
    ready = false;
    setTimeout(() => (ready = true), 300).unref();
    expect(await runWaitCommand(['--url', `http://127.0.0.1:${rt.statusPort}/healthz/ready`, '--period-ms', '50', '--timeout-seconds', '5'], io)).toBe(0);
    ready = false;
    let err = '';
    expect(await runWaitCommand(['--url', `http://127.0.0.1:${rt.statusPort}/healthz/ready`, '--period-ms', '50', '--timeout-seconds', '0.3'], { out: () => {}, err: (s) => (err += s) })).toBe(1);
    expect(err).toMatch(/not ready within 0.3 s/);
  });
});

// A pod's own address, as in a pod: the first non-loopback IPv4 address this machine has, if any.
const podLikeAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

describe('the source of an application probe', () => {
  it("is Istio's inbound-passthrough address for the pod's own IP, and nothing special on loopback", () => {
    expect(probeSourceAddress('10.244.0.12')).toBe('127.0.0.6');
    expect(probeSourceAddress('fd00::12')).toBe('::6');
    expect(probeSourceAddress('127.0.0.1')).toBeUndefined();
    expect(probeSourceAddress('localhost')).toBeUndefined();
  });

  // The capture rules let exactly this source reach the application directly (-s 127.0.0.6 -o lo -j RETURN);
  // from any other, the proxy's own connection to its pod's address is sent to the inbound listener.
  it.skipIf(!podLikeAddress)(`reaches the application from 127.0.0.6 when it probes the pod's address (${podLikeAddress ?? 'no non-loopback IPv4 here'})`, async () => {
    const seen: string[] = [];
    const target = createHttpServer((req, res) => {
      seen.push(req.socket.remoteAddress ?? '');
      res.end('ok');
    });
    target.listen(0, podLikeAddress);
    await once(target, 'listening');
    try {
      const port = (target.address() as AddressInfo).port;
      expect(await runAppProbe({ httpGet: { path: '/', port } }, podLikeAddress!, undefined)).toMatchObject({ status: 200 });
      expect(await runAppProbe({ tcpSocket: { port } }, podLikeAddress!, undefined)).toMatchObject({ status: 200 });
      expect(seen).toEqual(['127.0.0.6']);
    } finally {
      target.close();
    }
  });
});
