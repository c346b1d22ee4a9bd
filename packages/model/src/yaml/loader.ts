import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import jsyaml from 'js-yaml';
import { LineCounter, parseDocument } from 'yaml';
import { type Config, describeConfig, groupOf, versionOf } from '../config/config.ts';
import type { KindRegistry } from '../config/kinds.ts';
import { type FieldPath, type Problem, ProblemList } from '../problem.ts';
import { arr, int64, obj, type KindSchema, str, strMap, anyObject } from '../schema/dsl.ts';
import { validateStructure } from '../schema/structural.ts';
import { SourceLocation } from './source.ts';

/** Larger files are refused before parsing: Kubernetes stores at most 1.5 MiB per object. */
export const maxFileBytes = 4 * 1024 * 1024;

const metadataSchema = obj('ObjectMetaInput', {
  name: str(),
  generateName: str(),
  namespace: str(),
  labels: strMap(),
  annotations: strMap(),
  resourceVersion: str(),
  generation: int64(),
  uid: str(),
  creationTimestamp: str(undefined, { format: 'date-time' }),
  deletionTimestamp: str(undefined, { format: 'date-time' }),
  deletionGracePeriodSeconds: int64(),
  finalizers: arr(str()),
  ownerReferences: arr(anyObject()),
  managedFields: arr(anyObject()),
  selfLink: str(),
});

/** One YAML document, parsed, with a way back to its source text. */
export interface ParsedDocument {
  value: unknown;
  source: SourceLocation;
}

/** One document decoded as a resource: the config when it could be built, and everything wrong with it. */
export interface LoadedResource {
  source: SourceLocation;
  /** Present when apiVersion, kind and metadata.name could be read, even if other fields are invalid. */
  config?: Config;
  kind?: KindSchema;
  /** Structural problems (syntax, unknown kind, unknown field, wrong type, enum, format). */
  problems: Problem[];
}

export interface LoadResult {
  resources: LoadedResource[];
  /** Problems that belong to no single resource: unreadable file, syntax error, empty file. */
  problems: Problem[];
}

export interface LoadOptions {
  registry: KindRegistry;
  /** Namespace for resources that do not name one. */
  defaultNamespace?: string;
}

function fileProblem(file: string, message: string, line = 1, column = 1, code = 'WEFT0001'): Problem {
  return { severity: 'error', path: '', message, file, line, column, code };
}

/** One document's text within its file. */
interface Chunk {
  text: string;
  /** Lines of the file before the chunk. */
  lineOffset: number;
}

const marker = /^(?:---|\.\.\.)(?=[ \t\r]|$)/;

/**
 * Splits a stream at document markers. YAML forbids `---` and `...` at the start of a line
 * inside any content, so a marker at column 0 always separates documents. Text after `---` on
 * the marker line stays in the document, with the marker blanked so columns stay true.
 */
function splitDocuments(text: string): Chunk[] {
  const chunks: Chunk[] = [];
  let current: string[] = [];
  let startLine = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.length >= 3 && (l[0] === '-' || l[0] === '.') && marker.test(l)) {
      chunks.push({ text: current.join('\n'), lineOffset: startLine });
      current = l[0] === '-' ? [`   ${l.slice(3)}`] : [];
      startLine = l[0] === '-' ? i : i + 1;
      continue;
    }
    current.push(l);
  }
  chunks.push({ text: current.join('\n'), lineOffset: startLine });
  return chunks;
}

const blank = /^(?:[ \t\r]*(?:#.*)?(?:\n|$))*$/;

/**
 * Parses multi-document YAML (or JSON), keeping the way back to every field's position.
 * Syntax errors are located at their line and column.
 */
export function parseYamlDocuments(text: string, file: string): { documents: ParsedDocument[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const documents: ParsedDocument[] = [];
  let index = 0;
  for (const chunk of splitDocuments(text)) {
    if (blank.test(chunk.text)) continue;
    let value: unknown;
    try {
      value = jsyaml.load(chunk.text, { schema: jsyaml.CORE_SCHEMA, filename: file });
    } catch (e) {
      problems.push(...syntaxProblems(chunk, file, e));
      index++;
      continue;
    }
    if (value !== null && value !== undefined) documents.push({ value, source: new SourceLocation(file, index, chunk.text, chunk.lineOffset) });
    index++;
  }
  return { documents, problems };
}

/** Explains a document the fast parser refused, in the words of the position-keeping parser when it agrees. */
function syntaxProblems(chunk: Chunk, file: string, fast: unknown): Problem[] {
  const lines = new LineCounter();
  const doc = parseDocument(chunk.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return doc.errors.map((err) => {
      const pos = lines.linePos(err.pos[0]);
      return fileProblem(file, `YAML syntax error: ${firstLine(err.message)}`, pos.line + chunk.lineOffset, pos.col, 'WEFT0002');
    });
  }
  const mark = (fast as { mark?: { line: number; column: number } }).mark;
  const reason = (fast as { reason?: string }).reason ?? (fast instanceof Error ? fast.message : String(fast));
  return [fileProblem(file, `YAML syntax error: ${reason}`, (mark?.line ?? 0) + 1 + chunk.lineOffset, (mark?.column ?? 0) + 1, 'WEFT0002')];
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

const envelopeFields = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

/** Turns a parsed document into a resource, reporting every structural problem it has. */
export function decodeResource(doc: ParsedDocument, opts: LoadOptions): LoadedResource {
  const out = new ProblemList(doc.source);
  const result: LoadedResource = { source: doc.source, problems: out.items };
  const v = doc.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    out.error([], 'a resource must be a YAML mapping with apiVersion, kind, metadata and spec', 'WEFT0003');
    return result;
  }
  const raw = v as Record<string, unknown>;
  const { apiVersion, kind } = raw;
  if (typeof apiVersion !== 'string' || apiVersion === '') out.error(['apiVersion'], 'apiVersion is required (for example networking.istio.io/v1)', 'WEFT0003');
  if (typeof kind !== 'string' || kind === '') out.error(['kind'], 'kind is required (for example VirtualService)', 'WEFT0003');
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !apiVersion || !kind) return result;

  const resolved = opts.registry.resolve(groupOf(apiVersion), versionOf(apiVersion), kind);
  if ('error' in resolved) {
    out.error(['kind'], resolved.error, 'WEFT0004');
    return result;
  }
  const schema = resolved.schema;
  result.kind = schema;

  const meta = raw.metadata;
  validateStructure(metadataSchema, meta, ['metadata'], out);
  const metaObj = typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? (meta as Record<string, unknown>) : undefined;
  if (meta === undefined || meta === null) out.error(['metadata'], 'metadata is required, with at least a name', 'WEFT0003');
  const name = metaObj?.name;
  if (metaObj && (typeof name !== 'string' || name === '')) out.error(['metadata', 'name'], 'metadata.name is required', 'WEFT0003');
  if (schema.scope === 'Cluster' && typeof metaObj?.namespace === 'string' && metaObj.namespace !== '') {
    out.error(['metadata', 'namespace'], `${kind} is cluster-scoped and takes no namespace`, 'WEFT0003');
  }

  let spec: unknown;
  if (schema.bodyAtTopLevel) {
    const body: Record<string, unknown> = {};
    const props = schema.spec.properties ?? {};
    for (const key of Object.keys(raw)) {
      if (key === 'apiVersion' || key === 'kind' || key === 'metadata') continue;
      if (key in props) body[key] = raw[key];
      else out.error([key], `unknown field "${key}" in ${kind}`, 'WEFT0005');
    }
    validateStructure(schema.spec, body, [], out);
    spec = body;
  } else {
    for (const key of Object.keys(raw)) {
      if (!envelopeFields.has(key)) out.error([key], `unknown top-level field "${key}" (a resource has apiVersion, kind, metadata, spec and status)`, 'WEFT0005');
    }
    spec = raw.spec ?? {};
    validateStructure(schema.spec, spec, ['spec'], out);
  }
  // Structural messages name fields, not codes; give them the structural code.
  for (const p of out.items) p.code ??= 'WEFT0005';

  if (typeof name === 'string' && name !== '' && metaObj) {
    const namespace = schema.scope === 'Cluster' ? '' : typeof metaObj.namespace === 'string' && metaObj.namespace !== '' ? metaObj.namespace : (opts.defaultNamespace ?? 'default');
    const config: Config = {
      apiVersion,
      kind,
      metadata: { ...(metaObj as object), name, namespace } as Config['metadata'],
      spec,
      source: doc.source,
    };
    if (raw.status !== undefined) config.status = raw.status;
    result.config = config;
  }
  return result;
}

/** Parses and decodes all resources in one text. */
export function loadText(text: string, file: string, opts: LoadOptions): LoadResult {
  const { documents, problems } = parseYamlDocuments(text, file);
  const resources = documents.map((d) => decodeResource(d, opts));
  if (resources.length === 0 && problems.length === 0) {
    problems.push({ ...fileProblem(file, 'file contains no resources', 1, 1, 'WEFT0006') });
  }
  return { resources, problems };
}

const yamlExtensions = new Set(['.yaml', '.yml', '.json']);

/** Whether a file in a directory of config is read as config: .yaml, .yml and .json. */
export function isConfigFileName(name: string): boolean {
  return yamlExtensions.has(extname(name).toLowerCase());
}

/**
 * Files named by `paths`: files as given, directories walked recursively for .yaml, .yml and
 * .json. `dirs`, when given, receives every directory walked.
 */
export async function expandPaths(paths: readonly string[], dirs?: string[]): Promise<{ files: string[]; problems: Problem[] }> {
  const files: string[] = [];
  const problems: Problem[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    dirs?.push(dir);
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (isConfigFileName(e.name)) files.push(p);
    }
  };
  for (const p of paths) {
    try {
      const st = await stat(p);
      if (st.isDirectory()) await walk(p);
      else files.push(p);
    } catch (e) {
      problems.push(fileProblem(p, `cannot read: ${errnoText(e)}`, 1, 1, 'WEFT0007'));
    }
  }
  return { files, problems };
}

function errnoText(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return e instanceof Error ? e.message : String(e);
}

/** Reads one file with the size limit applied. */
export async function loadFile(file: string, opts: LoadOptions): Promise<LoadResult> {
  try {
    const st = await stat(file);
    if (st.size > maxFileBytes) {
      return { resources: [], problems: [fileProblem(file, `file is ${(st.size / 1048576).toFixed(1)} MiB; the limit is ${maxFileBytes / 1048576} MiB per file (Kubernetes keeps at most 1.5 MiB per object)`, 1, 1, 'WEFT0008')] };
    }
    const text = await readFile(file, 'utf8');
    return loadText(text, file, opts);
  } catch (e) {
    return { resources: [], problems: [fileProblem(file, `cannot read: ${errnoText(e)}`, 1, 1, 'WEFT0007')] };
  }
}

/** Loads every resource under `paths` (files or directories). */
export async function loadPaths(paths: readonly string[], opts: LoadOptions): Promise<LoadResult> {
  const { files, problems } = await expandPaths(paths);
  const resources: LoadedResource[] = [];
  for (const f of files) {
    const r = await loadFile(f, opts);
    resources.push(...r.resources);
    problems.push(...r.problems);
  }
  return { resources, problems };
}

/** A subject for messages: `VirtualService default/reviews`, or the kind alone when unnamed. */
export function describeResource(r: LoadedResource): string {
  if (r.config) return describeConfig(r.config);
  return r.kind?.kind ?? 'document';
}

export type { FieldPath };
