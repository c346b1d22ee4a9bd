// `npm test`'s preflight: as root, install the Debian packages the tests need that are missing
// (one line of progress naming the exact command); as another user, say which tests will skip and
// the command that would install what is missing. Tests never depend on it having run: each still
// skips, saying why, when its tool is absent (host.ts).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { findOnPath, type HostPackage, hostPackages, isRoot } from './host.ts';

/** Installed means its commands exist, also in sbin directories a user's $PATH may lack. */
const installedPath = () => [process.env.PATH ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin'].join(delimiter);

export function missingPackages(
  isInstalled: (command: string) => boolean = (c) => findOnPath(c, installedPath()) !== undefined,
  fileExists: (path: string) => boolean = existsSync,
): HostPackage[] {
  return hostPackages.filter((p) => p.commands.some((c) => !isInstalled(c)) || (p.files ?? []).some((f) => !fileExists(f)));
}

export interface PreflightPlan {
  /** Lines to print before the tests. */
  messages: string[];
  /** The shell command to run first (root, apt-get present, something missing, installing allowed). */
  install?: string;
}

export function aptInstallCommand(packages: readonly string[]): string {
  return `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages.join(' ')}`;
}

/** What the preflight does, from the facts it depends on. */
export function preflightPlan(facts: { root: boolean; uid?: number; missing: readonly HostPackage[]; aptGet: boolean; installAllowed: boolean }): PreflightPlan {
  const names = facts.missing.map((p) => p.name);
  const messages: string[] = [];
  const skips = facts.missing.map((p) => `${p.name} (${p.usedBy})`).join('; ');
  if (facts.root) {
    if (names.length === 0) return { messages };
    if (facts.aptGet && facts.installAllowed) return { messages, install: aptInstallCommand(names) };
    const why = facts.aptGet ? 'WEFT_TEST_INSTALL=0' : 'no apt-get on this machine';
    messages.push(`npm test: not installing (${why}); missing, so their tests skip: ${skips}`);
    if (facts.aptGet) messages.push(`npm test: to install them: apt-get install -y ${names.join(' ')}`);
    return { messages };
  }
  messages.push(`npm test: not root (uid ${facts.uid ?? '?'}): the tests that need root skip (network namespaces, iptables, another user), each saying why.`);
  if (names.length > 0) {
    messages.push(`npm test: missing, so their tests skip: ${skips}`);
    messages.push(`npm test: to run those too: sudo apt-get install -y ${names.join(' ')} (or run npm test as root: it installs them itself)`);
  }
  messages.push('npm test: the closing summary lists every skipped test file with the reason.');
  return { messages };
}

/** Runs the preflight, printing through `out`. Resolves once any install has finished (or failed). */
export async function preflight(out: (line: string) => void = (l) => console.log(l)): Promise<void> {
  const root = isRoot();
  const plan = preflightPlan({
    root,
    uid: process.getuid?.(),
    missing: missingPackages(),
    aptGet: findOnPath('apt-get', installedPath()) !== undefined,
    installAllowed: process.env.WEFT_TEST_INSTALL !== '0',
  });
  for (const m of plan.messages) out(m);
  if (!plan.install) return;
  const log = join(mkdtempSync(join(tmpdir(), 'weft-preflight-')), 'apt.log');
  const t0 = Date.now();
  out(`npm test: installing what the tests need: ${plan.install} (output in ${log})`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn('sh', ['-c', `${plan.install} >>'${log}' 2>&1`], { stdio: 'ignore' });
    child.on('error', () => resolve(127));
    child.on('exit', (c) => resolve(c ?? 1));
  });
  const still = missingPackages().map((p) => p.name);
  if (code === 0 && still.length === 0) {
    out(`npm test: installed in ${Math.round((Date.now() - t0) / 1000)} s`);
    return;
  }
  const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-15).join('\n');
  out(`npm test: the install failed (exit ${code}); still missing: ${still.join(', ') || 'nothing'}; their tests skip. Last lines of ${log}:\n${tail}`);
}
