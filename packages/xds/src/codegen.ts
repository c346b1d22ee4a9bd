// Runs @grpc/proto-loader's `proto-loader-gen-types` and returns what it wrote, so the generator
// scripts and the staleness tests share one definition of "the generated files".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { conversionOptions, envoyIncludeDirs, envoyProtoDir, envoyProtoFiles } from './protos.ts';

export interface ProtoTypesOptions {
  /** Directory the tool runs in; include dirs and files are relative to it, so output never names a machine path. */
  cwd: string;
  includeDirs: readonly string[];
  files: readonly string[];
}

/**
 * Renders TypeScript types for `files` and their imports, keyed by path relative to the output
 * directory. The per-input "ProtoGrpcType" entry files are left out: they repeat every type of the
 * closure, and our service definitions are typed through the per-service files instead.
 */
export function renderProtoTypes(options: ProtoTypesOptions): Record<string, string> {
  const require = createRequire(import.meta.url);
  const bin = join(require.resolve('@grpc/proto-loader/package.json'), '../build/bin/proto-loader-gen-types.js');
  const out = mkdtempSync(join(tmpdir(), 'weft-protogen-'));
  try {
    const args = [
      bin,
      ...(conversionOptions.keepCase ? ['--keepCase'] : []),
      '--longs=String',
      '--enums=String',
      ...(conversionOptions.defaults ? ['--defaults'] : []),
      ...(conversionOptions.oneofs ? ['--oneofs'] : []),
      '--importFileExtension=.ts',
      '--grpcLib=@grpc/grpc-js',
      ...options.includeDirs.flatMap((d) => ['-I', d]),
      '-O',
      out,
      ...options.files,
    ];
    const run = spawnSync(process.execPath, args, { cwd: options.cwd, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`proto-loader-gen-types failed (${run.status}): ${run.stderr}`);
    const entryFiles = new Set(options.files.map((f) => `${basename(f, '.proto')}.ts`));
    const files: Record<string, string> = {};
    for (const path of walk(out)) {
      const rel = relative(out, path);
      if (entryFiles.has(rel)) continue;
      files[rel] = readFileSync(path, 'utf8');
    }
    return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

/** Lists the files under `dir` (relative paths), for comparing a generated tree with what is on disk. */
export function listFiles(dir: string): string[] {
  try {
    return [...walk(dir)].map((p) => relative(dir, p)).sort();
  } catch {
    return [];
  }
}

/** The generated Envoy types of this package, keyed by path relative to `src/generated/`. */
export function envoyTypeFiles(): Record<string, string> {
  return renderProtoTypes({ cwd: envoyProtoDir(), includeDirs: envoyIncludeDirs, files: envoyProtoFiles });
}
