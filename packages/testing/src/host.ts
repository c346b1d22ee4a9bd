// The third-party tools the tests run, the Debian package of each, and why a test cannot run
// here. A test that needs a tool or root asks `needs()` and skips with its answer; the reason names
// the install command, and `npm test` lists every reason in its closing summary (see summary.ts).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface HostPackage {
  /** The Debian package. */
  name: string;
  /** The commands the tests run from it. */
  commands: readonly string[];
  /** What does not run without it (for the preflight's message). */
  usedBy: string;
  /** Files it installs that something reads (for a package with no command to look for). */
  files?: readonly string[];
}

/** Every Debian package the tests and benches use, in install order. */
export const hostPackages: readonly HostPackage[] = [
  { name: 'openssl', commands: ['openssl'], usedBy: 'certificate checks (citadel CA, proxy RBAC, e2e/proxy mTLS and routing)' },
  { name: 'curl', commands: ['curl'], usedBy: 'the weftctl up test, e2e/proxy mTLS, the capture tests' },
  { name: 'iproute2', commands: ['ip', 'ss'], usedBy: 'network-namespace tests (root), the weftctl up test (ss)' },
  { name: 'iptables', commands: ['iptables', 'iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore'], usedBy: 'network-namespace capture tests (root)' },
  { name: 'util-linux', commands: ['setpriv', 'nsenter'], usedBy: 'network-namespace tests and weftctl up as another user (root)' },
  { name: 'prometheus', commands: ['prometheus', 'promtool'], usedBy: 'e2e/proxy telemetry (Prometheus scrapes the proxies)' },
  { name: 'chromium', commands: ['chromium'], usedBy: 'the e2e/bookinfo screenshot, e2e/dashboard (the dashboard in a browser)' },
  { name: 'haproxy', commands: ['haproxy'], usedBy: 'bench/proxy (its HAProxy rows; `npm run bench`)' },
  // bench/proxy's native byte path row (native-floor.ts) builds a Node-API addon against Debian's llhttp sources
  { name: 'gcc', commands: ['gcc'], usedBy: 'bench/proxy (its native byte path row; `npm run bench`)' },
  { name: 'node-llhttp', commands: [], files: ['/usr/share/llhttp/llhttp.c'], usedBy: 'bench/proxy (its native byte path row; `npm run bench`)' },
  // the kind script cannot run here (no Docker daemon): shellcheck is how it is checked at all
  { name: 'shellcheck', commands: ['shellcheck'], usedBy: 'deploy/kind (shellcheck of scripts/kind-e2e.sh and every other shell script)' },
];

/** The Debian package that provides `command` (undefined for a command not in the table). */
export function packageOf(command: string): string | undefined {
  return hostPackages.find((p) => p.commands.includes(command))?.name;
}

/** Where `command` is on $PATH (what spawning it by name runs), or undefined. */
export function findOnPath(command: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The command that installs what provides these commands, e.g. `apt-get install -y iptables iproute2`. */
export function installCommand(commands: readonly string[]): string {
  const names = [...new Set(commands.map((c) => packageOf(c) ?? c))];
  return `apt-get install -y ${names.join(' ')}`;
}

export interface Need {
  /** Root (network namespaces, iptables, running a process as another user). */
  root?: boolean;
  /** Commands run by name, so looked up on $PATH. */
  tools?: readonly string[];
}

/** Why tests with this need cannot run here, or undefined when they can. Nothing is printed. */
export function unmet(need: Need, env: { root?: boolean; onPath?: (c: string) => boolean } = {}): string | undefined {
  const root = env.root ?? isRoot();
  const onPath = env.onPath ?? ((c: string) => findOnPath(c) !== undefined);
  if (need.root && !root) return 'needs root (CI runs the tests as root: sudo npm test)';
  const missing = (need.tools ?? []).filter((t) => !onPath(t));
  if (missing.length > 0) return `needs ${missing.join(', ')} (${installCommand(missing)})`;
  return undefined;
}

/** The line a skipping test prints; summary.ts reads it back under the test file vitest names. */
export const skipMarker = 'skip reason: ';

/**
 * Says why tests skip (when `reason` is given) and returns the reason, for `it.skipIf` /
 * `describe.skipIf`. Call it while the test file is collected (at its top level or in a describe
 * body): vitest then prints the line under the file's name, and `npm test`'s summary lists it.
 */
export function noteSkip(reason: string | undefined): string | undefined {
  if (reason !== undefined) console.warn(`${skipMarker}${reason}`);
  return reason;
}

/** `noteSkip(unmet(need))`: the reason tests with this need skip here, printed; undefined when they can run. */
export function needs(need: Need): string | undefined {
  return noteSkip(unmet(need));
}
