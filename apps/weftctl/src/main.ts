import { parseArgs } from 'node:util';
import { type Config, defaultKindRegistry, formatProblem, keyOf, type LoadedResource, loadPaths, type Problem, suggest } from '@weft/model';
import { analyze, compareReports, fileProblemReport, type ResourceReport, sortProblems, validateLoaded } from '@weft/galley';
import { commandBlock, exitStatus, optionsHelp } from './help.ts';
import { kubeInjectCommand, kubeInjectFlags, KubeInjectUsageError, kubeInjectUsage } from './kube-inject.ts';
import { kubeCommandFlags, kubeCommands, KubeUsageError, kubeUsage, runKubeCommand } from './kube-commands.ts';
import { meshCommandFlags, meshCommands, meshUsage, runMeshCommand } from './mesh-commands.ts';

const configUsage = `  weftctl validate -f PATH... [-o text|json] [-n NAMESPACE]
      Check resources (files or directories of YAML) one by one: structure and Istio's rules.
  weftctl analyze -f PATH... [-o text|json] [-n NAMESPACE]
      Validate, then check the resources against each other (references, conflicts, selectors).
${kubeInjectUsage}
  weftctl version
      Print weftctl's version.`;

export const usage = `weftctl: operate a Weft mesh

Usage:
${configUsage}

The local mesh (no root; state in --state-dir DIR, $WEFT_STATE_DIR or ~/.weft/local):
${meshUsage}

On Kubernetes (through a kubeconfig: --kubeconfig FILE, $KUBECONFIG or ~/.kube/config; no kubectl or helm needed):
${kubeUsage}

${optionsHelp()}

${exitStatus}`;

const configCommands = ['validate', 'analyze', 'kube-inject', 'version'] as const;
/** Every command, in the order help lists them. */
export const commands: readonly string[] = [...configCommands, ...meshCommands, ...kubeCommands];

/** The flags each command takes besides -h/--help; its parser refuses others and its --help lists these. */
export function commandFlags(command: string): readonly string[] | undefined {
  if (command === 'validate' || command === 'analyze') return ['filename', 'output', 'namespace'];
  if (command === 'kube-inject') return kubeInjectFlags;
  if (command === 'version') return [];
  if ((kubeCommands as readonly string[]).includes(command)) return kubeCommandFlags[command as (typeof kubeCommands)[number]];
  return (meshCommandFlags as Record<string, readonly string[] | undefined>)[command];
}

/** `weftctl COMMAND --help`: the command's synopsis, its options and the exit statuses. */
export function commandHelp(command: string): string | undefined {
  const block = commandBlock(configUsage, command) ?? commandBlock(meshUsage, command) ?? commandBlock(kubeUsage, command);
  const flags = commandFlags(command);
  if (!block || !flags) return undefined;
  return `Usage:\n${block}\n\n${optionsHelp(flags)}\n\n${exitStatus}`;
}

function unknownCommand(command: string): UsageError {
  const hint = suggest(command, commands);
  return new UsageError(`unknown command ${JSON.stringify(command)}${hint ? ` (did you mean "${hint}"?)` : ''}; commands: ${commands.join(', ')}`);
}

/** Thrown for bad command lines: exit 2 with a message and a pointer to --help. */
class UsageError extends Error {}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`weftctl: ${e.message}\nRun 'weftctl --help' for usage.\n`);
      return 2;
    }
    io.err(`weftctl: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 3;
  }
}

async function run(argv: readonly string[], io: Io): Promise<number> {
  const help = helpFor(argv);
  if (help !== undefined) {
    io.out(`${help}\n`);
    return 0;
  }
  const meshStatus = await runMeshCommand(argv, io);
  if (meshStatus !== undefined) return meshStatus;
  try {
    const kubeStatus = await runKubeCommand(argv, io);
    if (kubeStatus !== undefined) return kubeStatus;
  } catch (e) {
    if (e instanceof KubeUsageError) throw new UsageError(e.message);
    throw e;
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e));
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError('no command given');
  if (!(configCommands as readonly string[]).includes(command)) throw unknownCommand(command);
  for (const flag of Object.keys(values)) if (!commandFlags(command)!.includes(flag)) throw new UsageError(`${command} does not take --${flag}`);
  if (command === 'kube-inject') {
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])} (give the file with -f)`);
    try {
      return await kubeInjectCommand({ files: values.filename ?? [], namespace: values.namespace, systemNamespace: values['system-namespace'], proxyImage: values['proxy-image'] }, io);
    } catch (e) {
      if (e instanceof KubeInjectUsageError) throw new UsageError(e.message);
      throw e;
    }
  }
  if (command === 'version') {
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    io.out('weftctl 0.1.0\n');
    return 0;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])} (give files with -f)`);
  const files = values.filename ?? [];
  if (files.length === 0) throw new UsageError(`${command} needs at least one -f PATH`);
  const format = values.output ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`unknown output format ${JSON.stringify(format)} (use text or json)`);

  const load = await loadPaths(files, { registry: defaultKindRegistry(), defaultNamespace: values.namespace ?? 'default' });
  const resourceReports = load.resources.map(validateLoaded);
  if (command === 'analyze') addAnalysis(load.resources, resourceReports);
  const reports = [...resourceReports, ...load.problems.map(fileProblemReport)].sort(compareReports);

  if (format === 'json') io.out(`${JSON.stringify(reports.map(jsonEntry), null, 2)}\n`);
  else io.out(textReport(reports));
  return reports.every((r) => r.valid) ? 0 : 1;
}

/**
 * The help text asked for (`--help`, `-h`, `help`, `help COMMAND`, `COMMAND --help`), or undefined.
 * Read before any command parses its flags, so that help works whatever else is on the line.
 */
function helpFor(argv: readonly string[]): string | undefined {
  const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, strict: false, options: { help: { type: 'boolean', short: 'h' } } });
  const [first, second] = positionals;
  const wanted = first === 'help' ? second : values.help ? first : undefined;
  if (first !== 'help' && !values.help) return undefined;
  if (wanted === undefined) return usage;
  const text = commandHelp(wanted);
  if (!text) throw unknownCommand(wanted);
  return text;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      filename: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o' },
      namespace: { type: 'string', short: 'n' },
      'system-namespace': { type: 'string' },
      'proxy-image': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/**
 * Cross-resource analysis over the resources that are valid on their own. The same
 * kind/namespace/name in several files is one object, the later file winning, as with
 * `kubectl apply` of alternatives one after another.
 */
function addAnalysis(resources: readonly LoadedResource[], reports: readonly ResourceReport[]): void {
  const byKey = new Map<string, Config>();
  const reportOf = new Map<Config, ResourceReport>();
  resources.forEach((res, i) => {
    const r = reports[i]!;
    if (!res.config || !r.valid) return;
    byKey.set(keyOf(res.config), res.config);
    reportOf.set(res.config, r);
  });
  for (const [config, problems] of analyze([...byKey.values()])) {
    const r = reportOf.get(config);
    if (!r) continue;
    for (const p of problems) (p.severity === 'error' ? r.errors : r.warnings).push(p);
    sortProblems(r.errors);
    sortProblems(r.warnings);
    r.valid = r.errors.length === 0;
  }
}

function subject(r: ResourceReport): string | undefined {
  if (!r.kind) return undefined;
  return r.name ? `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}` : r.kind;
}

function textReport(reports: readonly ResourceReport[]): string {
  let out = '';
  let errors = 0;
  let warnings = 0;
  let bad = 0;
  for (const r of reports) {
    const all: Problem[] = [...r.errors, ...r.warnings];
    sortProblems(all);
    for (const p of all) out += `${formatProblem(p, subject(r))}\n`;
    errors += r.errors.length;
    warnings += r.warnings.length;
    if (!r.valid) bad++;
  }
  const n = reports.filter((r) => r.kind).length;
  const plural = (k: number, w: string) => `${k} ${w}${k === 1 ? '' : 's'}`;
  if (errors === 0) out += `${plural(n, 'resource')} valid${warnings ? `, ${plural(warnings, 'warning')}` : ''}\n`;
  else out += `${plural(errors, 'error')}${warnings ? `, ${plural(warnings, 'warning')}` : ''} in ${plural(bad, 'input')} (${plural(n, 'resource')} read)\n`;
  return out;
}

function jsonEntry(r: ResourceReport) {
  const item = (p: Problem) => ({ path: p.path, message: p.message, line: p.line ?? r.line, column: p.column ?? r.column, ...(p.code ? { code: p.code } : {}) });
  return { kind: r.kind, apiVersion: r.apiVersion, namespace: r.namespace, name: r.name, file: r.file, line: r.line, valid: r.valid, errors: r.errors.map(item), warnings: r.warnings.map(item) };
}
