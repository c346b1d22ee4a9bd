// `weftctl install`, `uninstall`, `check`: Weft on a Kubernetes cluster, through the user's
// kubeconfig only (no kubectl, no helm). The work is @weft/kube's (install/cluster.ts); this file
// reads the command line and prints.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { formatProblem, parseYamlDocuments } from '@weft/model';

export const kubeCommands = ['install', 'uninstall', 'check'] as const;
export type KubeCommand = (typeof kubeCommands)[number];

export const kubeUsage = `  weftctl install [--kubeconfig FILE] [--values FILE] [--revision REV] [--mesh-config FILE] [--no-gateway] [--timeout SECONDS]
      Install Weft into istio-system (deploy/charts' base, weftd and gateway, rendered here: no helm needed)
      with server-side apply; one line per step until weftd is ready, its webhooks answer and the gateway is ready.
  weftctl uninstall [--kubeconfig FILE] [--purge] [--timeout SECONDS]
      Remove everything install made, and what weftd wrote (istio-ca-root-cert ConfigMaps, its CA Secret).
      The CRDs and the mesh config in them stay, as with Istio; --purge deletes them too.
  weftctl check [--kubeconfig FILE] [--pre] [-o text|json]
      Check the cluster: API server and version, CRDs, weftd ready, webhooks answering, proxies synced
      (--pre: before install: API server, version, permissions to install). Exit 1 names what failed.`;

export const kubeCommandFlags: Record<KubeCommand, readonly string[]> = {
  install: ['kubeconfig', 'values', 'revision', 'mesh-config', 'no-gateway', 'timeout'],
  uninstall: ['kubeconfig', 'purge', 'timeout'],
  check: ['kubeconfig', 'pre', 'output'],
};

const options = {
  kubeconfig: { type: 'string' },
  values: { type: 'string' },
  revision: { type: 'string' },
  'mesh-config': { type: 'string' },
  'no-gateway': { type: 'boolean' },
  timeout: { type: 'string' },
  purge: { type: 'boolean' },
  pre: { type: 'boolean' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Thrown for a bad command line (exit 2). */
export class KubeUsageError extends Error {}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

type Values = { [key: string]: unknown };
const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readYamlMap(file: string, what: string): Promise<Values> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new KubeUsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const { documents, problems } = parseYamlDocuments(text, file);
  if (problems.length > 0) throw new KubeUsageError(formatProblem(problems[0]!));
  const value = documents[0]?.value ?? {};
  if (!isMap(value)) throw new KubeUsageError(`${file}: ${what} must be a YAML mapping`);
  return value;
}

/** Runs install, uninstall or check; undefined when argv names none of them. */
export async function runKubeCommand(argv: readonly string[], io: Io): Promise<number | undefined> {
  const first = parseArgs({ args: [...argv], allowPositionals: true, strict: false, options }).positionals[0];
  if (!first || !(kubeCommands as readonly string[]).includes(first)) return undefined;
  const command = first as KubeCommand;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    throw new KubeUsageError(e instanceof Error ? e.message.replace(/\. To specify a positional argument.*$/s, '') : String(e));
  }
  const { values: v, positionals } = parsed;
  if (positionals.length > 1) throw new KubeUsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  for (const flag of Object.keys(v)) if (flag !== 'help' && !kubeCommandFlags[command].includes(flag)) throw new KubeUsageError(`${command} does not take --${flag}`);
  const timeoutMs = seconds(v.timeout, 300);
  const format = v.output ?? 'text';
  if (format !== 'text' && format !== 'json') throw new KubeUsageError(`unknown output format ${JSON.stringify(format)} (use text or json)`);
  if (v.revision !== undefined && !/^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$/.test(v.revision)) throw new KubeUsageError(`--revision must be a label value (lower-case letters, digits, -), not ${JSON.stringify(v.revision)}`);
  const overrides: { base?: Values; weftd?: Values; gateway?: Values } = {};
  if (v.values !== undefined) {
    const file = await readYamlMap(v.values, 'values file');
    for (const key of Object.keys(file)) {
      if (key !== 'base' && key !== 'weftd' && key !== 'gateway') throw new KubeUsageError(`${v.values}: unknown chart ${JSON.stringify(key)} (the values file has base:, weftd: and gateway: sections)`);
      if (!isMap(file[key])) throw new KubeUsageError(`${v.values}: ${key} must be a mapping of that chart's values`);
      overrides[key] = file[key];
    }
  }
  const weftd: Values = { ...(overrides.weftd ?? {}) };
  if (v.revision !== undefined) weftd.revision = v.revision;
  if (v['mesh-config'] !== undefined) weftd.meshConfig = { ...(isMap(weftd.meshConfig) ? weftd.meshConfig : {}), ...(await readYamlMap(v['mesh-config'], 'mesh config')) };
  overrides.weftd = weftd;

  // Loaded on use: the Kubernetes client library is needed by these commands only.
  const kube = await import('@weft/kube');
  let kc: ReturnType<typeof kube.loadKubeConfig>;
  try {
    kc = kube.loadKubeConfig(v.kubeconfig);
  } catch (e) {
    io.err(`weftctl: ${command}: cannot use kubeconfig ${v.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config'}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`);
    return 1;
  }
  const progress = (line: string) => io.out(`${command}: ${line}\n`);
  const namespace = 'istio-system';
  try {
    if (command === 'install') {
      let values: ReturnType<typeof kube.installValues>;
      try {
        values = kube.installValues(overrides, { namespace, gateway: !v['no-gateway'] });
        kube.renderInstall(values);
      } catch (e) {
        throw new KubeUsageError((e as Error).message);
      }
      await kube.install(kc, values, { timeoutMs, progress });
      return 0;
    }
    if (command === 'uninstall') {
      await kube.uninstall(kc, { namespace, purge: v.purge === true, timeoutMs, progress });
      return 0;
    }
    const results = await kube.check(kc, { namespace, pre: v.pre === true, ...(v.revision ? { revision: v.revision } : {}) });
    const failed = results.filter((r) => !r.ok);
    if (format === 'json') io.out(`${JSON.stringify({ ok: failed.length === 0, checks: results }, null, 2)}\n`);
    else {
      for (const r of results) io.out(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}\n`);
      io.out(failed.length === 0 ? `${results.length} checks passed\n` : `${failed.length} of ${results.length} checks failed: ${failed.map((r) => r.name).join(', ')}\n`);
    }
    return failed.length === 0 ? 0 : 1;
  } catch (e) {
    if (e instanceof KubeUsageError) throw e;
    io.err(`weftctl: ${command} failed: ${kube.apiError(e)}\n`);
    return 1;
  }
}

function seconds(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback * 1000;
  const n = Number(value.replace(/s$/, ''));
  if (!Number.isFinite(n) || n <= 0) throw new KubeUsageError(`--timeout must be a positive number of seconds, not ${JSON.stringify(value)}`);
  return n * 1000;
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], allowPositionals: true, strict: true, options });
}
