// Istio's conflict semantics in a running local mesh (issue 11, finding 6): a VirtualService
// `ghost` for host reviews, applied after BookInfo's reviews VirtualService, does not take reviews
// over (the older one keeps the host, whatever the names), and `weftctl apply` says so with
// IST0109 at ghost's file and line, without failing. Real processes: startLocalMesh on a loopback
// net of its own, weftctl's own command line, page loads through the ingress gateway.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseYamlDocuments } from '@weft/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWeftctlCommand } from '../testing.ts';
import { type LocalMesh, repoRoot, startLocalMesh } from '../up/mesh.ts';

const networking = join(repoRoot, 'examples/bookinfo/networking');

const weftctl = (stateDir: string, ...args: string[]) => runWeftctlCommand(args, stateDir);

/** Which reviews version rendered the page: v2 shows black stars, v3 red ones, v1 none. */
function reviewsVersion(html: string): string {
  expect(html).toContain('Book Reviews');
  expect(html).not.toContain('Error fetching product reviews');
  return html.includes('gap-x-1 text-black-500') ? 'v2' : html.includes('gap-x-1 text-red-500') ? 'v3' : 'v1';
}

const ghost = `# Everything for reviews to v2, applied after reviews (virtual-service-all-v1.yaml) sends it to v1.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ghost
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
`;

async function createdIn(file: string): Promise<string> {
  const doc = parseYamlDocuments(await readFile(file, 'utf8'), file).documents[0]!.value as { metadata: { creationTimestamp: string } };
  return doc.metadata.creationTimestamp;
}

describe('conflicting VirtualServices in a running mesh', () => {
  let dir: string;
  let stateDir: string;
  let mesh: LocalMesh | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weftctl-conflicts-'));
    stateDir = join(dir, 'state');
    mesh = await startLocalMesh({ stateDir, loopbackNet: '127.0.64', ingressPort: 0, timeoutMs: 150_000, addons: false });
  }, 180_000);

  afterAll(async () => {
    await mesh?.stop(3000);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('keeps the older reviews VirtualService when ghost claims its host, and apply says so (IST0109) with exit 0', async () => {
    const first = await weftctl(stateDir, 'apply', '-f', join(networking, 'destination-rule-all.yaml'), '-f', join(networking, 'virtual-service-all-v1.yaml'));
    // Only warnings (subsets for versions the local topology does not run, IST0173).
    expect(first.err).not.toContain(': error: ');
    expect(first.code).toBe(0);
    const page = async () => (await fetch(mesh!.url, { signal: AbortSignal.timeout(15_000) })).text();
    for (let i = 0; i < 5; i++) expect(reviewsVersion(await page())).toBe('v1');

    const ghostFile = join(dir, 'ghost.yaml');
    await writeFile(ghostFile, ghost);
    const r = await weftctl(stateDir, 'apply', '-f', ghostFile);
    expect(r.out).toBe('virtualservice.networking.istio.io/ghost created\n');
    expect(r.code).toBe(0);
    const lines = r.err.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `${ghostFile}:8:5: error: VirtualService default/ghost: spec.hosts[0]: The VirtualServices default/ghost and default/reviews are both bound to the mesh gateway and define the same host reviews.default.svc.cluster.local: only the oldest, default/reviews, applies to it and this one is ignored for it; merge them into one VirtualService [IST0109]`,
    );
    expect(lines.at(-1)).toMatch(/^weftctl: analysis of the config in force: 2 errors, 0 warnings \(applied all the same/);

    // The files say why: ghost is younger than reviews, though its name sorts first.
    const configDir = mesh!.state.configDir;
    const reviewsCreated = await createdIn(join(configDir, 'virtualservice.networking.istio.io_default_reviews.yaml'));
    const ghostCreated = await createdIn(join(configDir, 'virtualservice.networking.istio.io_default_ghost.yaml'));
    expect(Date.parse(ghostCreated)).toBeGreaterThan(Date.parse(reviewsCreated));

    // apply returned once every proxy ACKed the push with ghost in it: reviews still goes to v1
    // (with ghost in force every page would show black stars, v2).
    const seen: string[] = [];
    for (let i = 0; i < 20; i++) seen.push(reviewsVersion(await page()));
    expect(new Set(seen)).toEqual(new Set(['v1']));

    // Changing reviews (an update) keeps its creation time, so it stays the older one and its new
    // route (v3, red stars) is the one in force, not ghost's (v2).
    const again = await weftctl(stateDir, 'apply', '-f', join(networking, 'virtual-service-reviews-v3.yaml'));
    expect(again.code).toBe(0);
    expect(await createdIn(join(configDir, 'virtualservice.networking.istio.io_default_reviews.yaml'))).toBe(reviewsCreated);
    for (let i = 0; i < 5; i++) expect(reviewsVersion(await page())).toBe('v3');
  }, 120_000);
});
