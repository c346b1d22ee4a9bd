// A tiny HTTP app for capture tests: answers every request with JSON describing what it received
// (method, URL, headers, the peer address), so a test can see what the sidecars did to it.
//
//   node echo-app.ts --pod NAME [--port 8000]
import http from 'node:http';
import { pathToFileURL } from 'node:url';

export function startEchoApp(pod: string, port: number, host = '0.0.0.0'): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const body = JSON.stringify({
      pod,
      method: req.method,
      url: req.url,
      headers: req.headers,
      peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      local: `${req.socket.localAddress}:${req.socket.localPort}`,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const at = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const pod = at('--pod') ?? 'app';
  const port = Number(at('--port') ?? 8000);
  await startEchoApp(pod, port);
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', scope: 'echo-app', msg: 'listening', pod, port })}\n`);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
}
