// The config directory a local mesh's weftd watches. Every object lives in a file of its own,
// named by its group, kind, namespace and name, so that applying an object replaces it and
// deleting it removes exactly it, whatever file it first came from (as `kubectl apply` and
// `kubectl delete` act on objects, not files).
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Config, defaultKindRegistry, formatTimestamp, groupOf, type LoadedResource, loadPaths, originHeader, type Problem, parseOriginHeader, parseTimestamp, parseYamlDocuments, toYaml } from '@weft/model';
import { fileProblemReport, type ResourceReport, validateLoaded } from '@weft/galley';

/** `virtualservice.networking.istio.io/reviews`, as kubectl names objects. */
export function objectName(c: Pick<Config, 'apiVersion' | 'kind' | 'metadata'>): string {
  const group = groupOf(c.apiVersion);
  return `${c.kind.toLowerCase()}${group ? `.${group}` : ''}/${c.metadata.name}`;
}

/** The file that holds an object in the config directory. */
export function objectFile(dir: string, c: Pick<Config, 'apiVersion' | 'kind' | 'metadata'>): string {
  const group = groupOf(c.apiVersion) || 'core';
  return join(dir, `${c.kind.toLowerCase()}.${group}_${c.metadata.namespace || '_'}_${c.metadata.name}.yaml`);
}

/** The object as it is written: the envelope, the identifying metadata, its creation time, and the spec as given. */
export function objectYaml(c: Config, bodyAtTopLevel = false, origin?: string): string {
  const m = c.metadata;
  const metadata: Record<string, unknown> = { name: m.name };
  if (m.namespace) metadata.namespace = m.namespace;
  if (m.creationTimestamp) metadata.creationTimestamp = m.creationTimestamp;
  if (m.labels && Object.keys(m.labels).length > 0) metadata.labels = m.labels;
  if (m.annotations && Object.keys(m.annotations).length > 0) metadata.annotations = m.annotations;
  const body = bodyAtTopLevel ? { ...(c.spec as Record<string, unknown>) } : { spec: c.spec };
  const header = origin ? originHeader(objectName(c), m.namespace, origin) : '';
  return header + toYaml({ apiVersion: c.apiVersion, kind: c.kind, metadata, ...body });
}

export type WriteAction = 'created' | 'configured' | 'unchanged';

export interface ObjectToWrite {
  config: Config;
  bodyAtTopLevel?: boolean;
  /** Where it came from, for the file's header comment (`file.yaml:12`). */
  origin?: string;
  /** The creation time weftd gave the object, for a file written before files carried one. */
  knownCreationTimestamp?: string;
}

/** The creationTimestamp of the object a config-directory file holds, if it has a valid one. */
function storedCreationTimestamp(text: string, file: string): string | undefined {
  const doc = parseYamlDocuments(text, file).documents[0]?.value as { metadata?: { creationTimestamp?: unknown } } | undefined;
  const t = doc?.metadata?.creationTimestamp;
  return typeof t === 'string' && parseTimestamp(t) !== undefined ? t : undefined;
}

/**
 * Writes objects (each atomically: a temporary file renamed into place); says what happened to each.
 * As the Kubernetes API server does, the writer owns metadata.creationTimestamp: an object created
 * now gets `now` (one time for all objects of a call, so their names order them), an object that
 * exists keeps its time, and a creationTimestamp in the input is ignored either way.
 */
export async function writeObjects(dir: string, objects: readonly ObjectToWrite[], now = Date.now()): Promise<{ name: string; file: string; action: WriteAction; creationTimestamp: string }[]> {
  const out: { name: string; file: string; action: WriteAction; creationTimestamp: string }[] = [];
  const created = formatTimestamp(now);
  for (const o of objects) {
    const file = objectFile(dir, o.config);
    const before = await readFile(file, 'utf8').catch(() => undefined);
    const stored = before === undefined ? undefined : storedCreationTimestamp(before, file);
    const creationTimestamp = stored ?? (before === undefined ? undefined : o.knownCreationTimestamp) ?? created;
    const as = (t: string | undefined) => objectYaml({ ...o.config, metadata: { ...o.config.metadata, creationTimestamp: t } }, o.bodyAtTopLevel, o.origin);
    const text = as(creationTimestamp);
    const strip = (s: string) => s.replace(/^#.*\n/, '');
    let action: WriteAction = before === undefined ? 'created' : strip(before) === strip(text) ? 'unchanged' : 'configured';
    const write = action !== 'unchanged';
    // A file from before files carried the time is written again to record it, though nothing else changed.
    if (action === 'configured' && stored === undefined && strip(before!) === strip(as(undefined))) action = 'unchanged';
    if (write) {
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, file);
    }
    out.push({ name: objectName(o.config), file, action, creationTimestamp });
  }
  return out;
}

/** The origin `weftctl up` gives the objects it writes itself; they are rewritten from their sources at each start. */
export function upOrigin(what: string): string {
  return `${upPrefix}${what})`;
}

const upPrefix = 'weftctl up (';

/**
 * Readies the config directory for a start of `weftctl up`, which then writes `upObjects`.
 * Objects applied in an earlier run stay (as a cluster keeps its objects across restarts of its
 * control plane); what `up` wrote itself in an earlier run goes, since it is written again from
 * its sources (and a topology that changed must not leave stale entries). `fresh`: start empty.
 * Resolves to the objects kept (`virtualservice.networking.istio.io/reviews`) and the number removed by `fresh`.
 */
export async function prepareConfigDir(dir: string, upObjects: readonly ObjectToWrite[], fresh: boolean): Promise<{ kept: string[]; removed: number }> {
  await mkdir(dir, { recursive: true });
  const rewritten = new Set(upObjects.map((o) => objectFile(dir, o.config)));
  const kept: string[] = [];
  let removed = 0;
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const file = join(dir, entry.name);
    if (!entry.isFile()) continue;
    // A temporary file of a write that never finished.
    if (entry.name.endsWith('.tmp')) {
      await rm(file, { force: true });
      continue;
    }
    if (!/\.(ya?ml|json)$/i.test(entry.name)) continue;
    const first = (await readFile(file, 'utf8').catch(() => '')).split('\n', 1)[0] ?? '';
    const m = parseOriginHeader(first);
    const byUp = m?.origin.startsWith(upPrefix) === true;
    // What up writes again stays until overwritten, so that its objects keep their creation time.
    if (fresh || (byUp && !rewritten.has(file))) {
      await rm(file, { force: true });
      if (fresh && !byUp && !rewritten.has(file)) removed++;
      continue;
    }
    if (!rewritten.has(file)) kept.push(m?.object ?? entry.name);
  }
  return { kept, removed };
}

/** Removes objects by kind, namespace and name. */
export async function removeObjects(dir: string, configs: readonly Config[]): Promise<{ name: string; namespace: string; deleted: boolean }[]> {
  const out: { name: string; namespace: string; deleted: boolean }[] = [];
  for (const c of configs) {
    const file = objectFile(dir, c);
    let deleted = true;
    try {
      await rm(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      deleted = false;
    }
    out.push({ name: objectName(c), namespace: c.metadata.namespace, deleted });
  }
  return out;
}

export interface CheckedInput {
  /** Every resource read, valid or not. */
  resources: LoadedResource[];
  /** Reports with problems (errors and warnings), sorted by file and line. */
  reports: ResourceReport[];
  valid: boolean;
  problems: Problem[];
}

/** Reads files or directories of YAML and validates every resource with galley (as `weftctl validate`). */
export async function readAndValidate(paths: readonly string[], defaultNamespace: string): Promise<CheckedInput> {
  const load = await loadPaths(paths, { registry: defaultKindRegistry(), defaultNamespace });
  const reports = [...load.resources.map(validateLoaded), ...load.problems.map(fileProblemReport)];
  const problems = reports.flatMap((r) => [...r.errors, ...r.warnings]);
  return { resources: load.resources, reports, valid: reports.every((r) => r.valid) && load.resources.length > 0, problems };
}

/** Where a loaded resource came from: `file.yaml:12`. */
export function originOf(r: LoadedResource): string {
  return `${r.source.file}:${r.source.line}`;
}
