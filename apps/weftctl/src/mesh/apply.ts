// `weftctl apply -f` and `weftctl delete -f` against the running local mesh: resources are checked
// with galley first (one invalid resource and nothing is applied, every problem reported at its
// file:line:column), then written into (or removed from) the config directory weftd watches, one
// file per object. The command then waits until weftd holds the change and every proxy has ACKed
// the push that carries it, so that the next request already sees it.
import { nodeIdWorkload } from '@weft/mesh';
import { type Config, formatProblem, keyOf, type Problem, specDigest } from '@weft/model';
import { sortProblems } from '@weft/galley';
import { objectFile, objectName, originOf, readAndValidate, removeObjects, writeObjects } from '../up/config-dir.ts';
import { type HeldObject, reportAnalysis } from './apply-analysis.ts';
import { inputTooBig, tooManyObjects } from './apply-limits.ts';
import type { MeshState } from '../up/state.ts';
import { getJson, runningMesh, weftdUrl } from './client.ts';
import type { SynczEntry } from './proxy-status.ts';

export interface ApplyOptions {
  stateDir: string;
  files: readonly string[];
  namespace: string;
  /** How long to wait for the change to reach every proxy; 0: do not wait. */
  waitMs: number;
}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

function subjectOf(kind: string | undefined, namespace: string | undefined, name: string | undefined): string | undefined {
  if (!kind) return undefined;
  return name ? `${kind} ${namespace ? `${namespace}/` : ''}${name}` : kind;
}

/** Reads and validates; prints problems; returns the valid configs, or undefined when anything is invalid. */
export async function checked(o: Pick<ApplyOptions, 'files' | 'namespace'>, io: Io, verb: string): Promise<{ config: Config; bodyAtTopLevel: boolean; crd: boolean; origin: string }[] | undefined> {
  const tooBig = await inputTooBig(o.files);
  if (tooBig) {
    io.err(`weftctl: ${tooBig}: nothing ${verb}\n`);
    return undefined;
  }
  const input = await readAndValidate(o.files, o.namespace);
  const tooMany = tooManyObjects(input.resources.length);
  if (tooMany) {
    io.err(`weftctl: ${tooMany}: nothing ${verb}\n`);
    return undefined;
  }
  let errors = 0;
  for (const r of input.reports) {
    const all: Problem[] = [...r.errors, ...r.warnings];
    sortProblems(all);
    for (const p of all) io.err(`${formatProblem(p, subjectOf(r.kind, r.namespace, r.name))}\n`);
    errors += r.errors.length;
  }
  if (input.resources.length === 0 && errors === 0) {
    io.err(`weftctl: no resources in ${o.files.join(', ')}\n`);
    return undefined;
  }
  if (!input.valid) {
    io.err(`${errors} error${errors === 1 ? '' : 's'}: nothing ${verb}\n`);
    return undefined;
  }
  // The same object twice: the later one wins, as applying the files one after the other would leave it.
  const byKey = new Map<string, { config: Config; bodyAtTopLevel: boolean; crd: boolean; origin: string }>();
  for (const r of input.resources) {
    if (!r.config) continue;
    byKey.delete(keyOf(r.config));
    byKey.set(keyOf(r.config), { config: r.config, bodyAtTopLevel: r.kind?.bodyAtTopLevel === true, crd: r.kind?.crd === true, origin: originOf(r) });
  }
  return [...byKey.values()];
}

async function lastPushVersion(s: MeshState): Promise<string> {
  const p = await getJson<{ version?: string }>(weftdUrl(s, '/debug/push_status'));
  return p.version ?? '';
}

/** How the wait reads one weftd: local mode's monitoring port, or a replica on a cluster through the API server. */
export interface WeftdReader {
  /** A JSON debug endpoint (`/debug/syncz`). */
  get<T>(path: string): Promise<T>;
  /** The file weftd reads an object from ('' for an object from the cluster). */
  fileOf(c: Config): string;
  /** Where to look when weftd does not take an object (its log). */
  logHint: string;
}

function localReader(s: MeshState): WeftdReader {
  return { get: (path) => getJson(weftdUrl(s, path)), fileOf: (c) => objectFile(s.configDir, c), logHint: `see ${s.weftd!.logFile}` };
}

/** weftd's /debug/config_versions: per object key, the file it was read from and specDigest of its spec. */
interface ConfigVersions {
  revision: number;
  objects: Record<string, [file: string, digest: string]>;
}

/**
 * Waits until weftd's store matches `present` (each object read from its file, equal spec) and
 * holds none of `absent`, then until a push of that store (or a later one) has reached every
 * proxy and been ACKed. It polls /debug/config_versions (a digest per object), not the whole
 * config: with thousands of objects, serialising configz every 100 ms kept weftd from reading them.
 */
export async function waitForSync(w: WeftdReader, present: readonly Config[], absent: readonly Config[], before: string, waitMs: number): Promise<string | undefined> {
  const deadline = Date.now() + waitMs;
  const sleep = () => new Promise((r) => setTimeout(r, 100));
  const wanted = present.map((c) => ({ c, key: keyOf(c), file: w.fileOf(c), digest: specDigest(c.spec) }));
  const unwanted = absent.map((c) => ({ c, key: keyOf(c) }));
  let why = '';
  let held = -1;
  for (;;) {
    if (Date.now() > deadline) return why;
    if (held < 0) {
      const v = await w.get<ConfigVersions>('/debug/config_versions');
      const missing = wanted.find((w) => {
        const got = v.objects[w.key];
        return !got || got[0] !== w.file || got[1] !== w.digest;
      });
      const lingering = unwanted.find((u) => v.objects[u.key] !== undefined);
      if (missing || lingering) {
        why = missing ? `weftd does not hold ${objectName(missing.c)} yet (${w.logHint})` : `weftd still holds ${objectName(lingering!.c)}`;
        await sleep();
        continue;
      }
      held = v.revision;
    }
    const push = await w.get<{ version?: string; configRevision?: number }>('/debug/push_status');
    const version = push.version ?? '';
    // Only proxies that proved their identity count: anyone may open an unauthenticated stream (when
    // the plaintext port is open) and never ACK.
    const syncz = (await w.get<SynczEntry[]>('/debug/syncz')).filter((e) => e.authenticated === true);
    const behind = syncz.filter((e) => e.pushVersion !== version || Object.values(e.types).some((t) => t.status !== 'ACKED'));
    // The push must come from a store holding the whole change (a push from part of it, while files were still read, is not enough).
    const pushed = version !== before && (push.configRevision ?? Number.POSITIVE_INFINITY) >= held;
    if (pushed && behind.length === 0) return undefined;
    why = !pushed ? 'weftd has not pushed the change yet' : `not yet ACKed by ${behind.map((e) => nodeIdWorkload(e.id)).join(', ')}`;
    await sleep();
  }
}

export async function apply(o: ApplyOptions, io: Io): Promise<number> {
  const s = await runningMesh(o.stateDir);
  const items = await checked(o, io, 'applied');
  if (!items) return 1;
  const before = await lastPushVersion(s);
  // What weftd holds now: the creation times of objects written before files carried them, and the base of the analysis.
  const held = await getJson<HeldObject[]>(weftdUrl(s, '/debug/configz')).catch(() => undefined);
  const heldTimes = new Map(held?.map((h) => [keyOf(h as Config), h.metadata.creationTimestamp]));
  const results = await writeObjects(
    s.configDir,
    items.map((i) => ({ ...i, knownCreationTimestamp: heldTimes.get(keyOf(i.config)) })),
  );
  for (const r of results) io.out(`${r.name} ${r.action}\n`);
  if (held) reportAnalysis(held, items.map((i, n) => ({ ...i.config, metadata: { ...i.config.metadata, creationTimestamp: results[n]!.creationTimestamp } })), io.err);
  if (o.waitMs > 0 && results.some((r) => r.action !== 'unchanged')) {
    const why = await waitForSync(localReader(s), items.map((i) => i.config), [], before, o.waitMs);
    if (why !== undefined) {
      io.err(`weftctl: applied, but not in force everywhere after ${o.waitMs / 1000} s: ${why}\n`);
      return 1;
    }
  }
  return 0;
}

export async function remove(o: ApplyOptions, io: Io): Promise<number> {
  const s = await runningMesh(o.stateDir);
  const tooBig = await inputTooBig(o.files);
  if (tooBig) {
    io.err(`weftctl: ${tooBig}: nothing deleted\n`);
    return 1;
  }
  const input = await readAndValidate(o.files, o.namespace);
  // Deleting needs only what names an object; structural problems elsewhere do not matter.
  const configs = input.resources.filter((r) => r.config).map((r) => r.config!);
  const tooMany = tooManyObjects(input.resources.length);
  if (tooMany) {
    io.err(`weftctl: ${tooMany}: nothing deleted\n`);
    return 1;
  }
  const unreadable = input.reports.filter((r) => !r.kind || !r.name);
  for (const r of unreadable) for (const p of r.errors) io.err(`${formatProblem(p, undefined)}\n`);
  if (configs.length === 0) {
    io.err(`weftctl: no resources in ${o.files.join(', ')}\n`);
    return 1;
  }
  const before = await lastPushVersion(s);
  const results = await removeObjects(s.configDir, configs);
  let missing = 0;
  for (const r of results) {
    if (r.deleted) io.out(`${r.name} deleted\n`);
    else {
      missing++;
      io.err(`weftctl: ${r.name} not found in namespace ${r.namespace}\n`);
    }
  }
  const gone = configs.filter((_, i) => results[i]!.deleted);
  if (o.waitMs > 0 && gone.length > 0) {
    const why = await waitForSync(localReader(s), [], gone, before, o.waitMs);
    if (why !== undefined) {
      io.err(`weftctl: deleted, but not in force everywhere after ${o.waitMs / 1000} s: ${why}\n`);
      return 1;
    }
  }
  return missing > 0 || unreadable.length > 0 ? 1 : 0;
}
