// How `weftctl apply` waits for a change to be in force, and what it refuses to take, against a stand-in weftd (node:http) that
// reads the config directory the apply writes, as weftd does; the real weftd and proxies:
// bench/pilot/bulk-apply.ts and e2e/bookinfo.
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultKindRegistry, keyOf, loadPaths, specDigest } from '@weft/model';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type MeshState, processStart, writeState } from '../up/state.ts';
import { apply, remove } from './apply.ts';
import { applyLimits } from './apply-limits.ts';

let dir: string;
let server: Server;
const paths: string[] = [];

/** What the stand-in weftd holds: the config directory as it reads it now. */
async function held(configDir: string) {
  const load = await loadPaths([configDir], { registry: defaultKindRegistry(), defaultNamespace: 'default' });
  const objects: Record<string, [string, string]> = {};
  for (const r of load.resources) if (r.config) objects[keyOf(r.config)] = [r.source.file, specDigest(r.config.spec)];
  return objects;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weftctl-apply-wait-'));
  const configDir = join(dir, 'config');
  await mkdir(configDir);
  // The store revision is the number of objects held; a push follows each revision at once.
  server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    paths.push(path);
    void held(configDir).then((objects) => {
      const revision = Object.keys(objects).length;
      const version = String(1 + revision);
      const body: Record<string, unknown> = {
        '/debug/config_versions': { revision, objects },
        '/debug/push_status': { version, configRevision: revision },
        '/debug/syncz': [{ id: 'sidecar~127.0.0.10~productpage-v1.default~default.svc.cluster.local', authenticated: true, pushVersion: version, types: { rds: { status: 'ACKED' } } }],
        '/debug/configz': [],
      };
      if (!(path in body)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body[path]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const state: MeshState = {
    pid: process.pid,
    ...(processStart(process.pid) ? { pidStart: processStart(process.pid)! } : {}),
    startedAt: new Date().toISOString(),
    stateDir: dir,
    configDir,
    caDir: join(dir, 'ca'),
    weftd: { pid: process.pid, xdsPort: 1, caPort: 1, monitoringPort: (server.address() as { port: number }).port, logFile: join(dir, 'weftd.log') },
    proxies: [],
    apps: [],
  };
  await writeState(state);
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

it('waits on per-object digests (/debug/config_versions), not the whole config, then on the push and every ACK', async () => {
  const docs: string[] = [];
  for (let i = 0; i < 300; i++) docs.push(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: api-${i}}\nspec:\n  hosts: [api-${i}.example.com]\n  http:\n  - route:\n    - destination: {host: reviews}\n`);
  const file = join(dir, 'many.yaml');
  await writeFile(file, docs.join('---\n'));
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) };
  const o = { stateDir: dir, files: [file], namespace: 'default', waitMs: 10_000 };

  paths.length = 0;
  expect(await apply(o, io)).toBe(0);
  expect(err.join('')).not.toMatch(/not in force|internal error/);
  expect(out).toHaveLength(300);
  expect(paths).toContain('/debug/config_versions');
  // configz (every object in full) at most once: the analysis of what the apply brings, before writing.
  expect(paths.filter((p) => p === '/debug/configz').length).toBeLessThanOrEqual(1);

  paths.length = 0;
  expect(await remove(o, io)).toBe(0);
  expect(paths).toContain('/debug/config_versions');
  expect(paths).not.toContain('/debug/configz');
});

it('refuses up front, naming the limit, an input over 8 MiB (from its size, unread) or over 10,000 objects', async () => {
  const err: string[] = [];
  const io = { out: () => {}, err: (s: string) => void err.push(s) };
  const o = (file: string) => ({ stateDir: dir, files: [file], namespace: 'default', waitMs: 10_000 });
  // 50 MB of input in 13 files (each under the loader's 4 MiB): a sparse file costs no disk.
  const big = join(dir, 'big');
  await mkdir(big);
  for (let i = 0; i < 13; i++) {
    await writeFile(join(big, `part-${i}.yaml`), '');
    await truncate(join(big, `part-${i}.yaml`), 4_000_000);
  }
  paths.length = 0;
  const started = performance.now();
  expect(await apply(o(big), io)).toBe(1);
  expect(performance.now() - started).toBeLessThan(2000);
  expect(err.join('')).toBe(`weftctl: the input is 49.6 MiB in 13 files; one apply takes at most ${(applyLimits.bytes / 1048576).toFixed(1)} MiB (split it into several applies): nothing applied\n`);
  expect(paths).toEqual([]);

  err.length = 0;
  const docs: string[] = [];
  for (let i = 0; i <= applyLimits.objects; i++) docs.push(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v${i}}\nspec: {hosts: [v${i}.example.com]}\n`);
  await writeFile(join(dir, 'many.yaml'), docs.join('---\n'));
  expect(await remove(o(join(dir, 'many.yaml')), io)).toBe(1);
  expect(await apply(o(join(dir, 'many.yaml')), io)).toBe(1);
  expect(err).toEqual([
    `weftctl: ${applyLimits.objects + 1} objects in the input; one apply takes at most ${applyLimits.objects} (split it into several applies): nothing deleted\n`,
    `weftctl: ${applyLimits.objects + 1} objects in the input; one apply takes at most ${applyLimits.objects} (split it into several applies): nothing applied\n`,
  ]);
  expect(paths).toEqual([]);
}, 60_000);
