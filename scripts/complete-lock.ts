// The npm registry mirror this project is built against lacks some platform-specific optional
// packages (for example @biomejs/cli-android-arm64), so `npm install` leaves them out of
// package-lock.json and `npm ci` then refuses the lock as out of sync. This adds the missing
// optional entries, marked with the platform their name says, so `npm ci` skips them on
// platforms they are not for. Run after changing dependencies: `node scripts/complete-lock.ts`.
import { readFileSync, writeFileSync } from 'node:fs';

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  optionalDependencies?: Record<string, string>;
}

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8')) as { packages: Record<string, LockEntry> };
const oses = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'netbsd', 'sunos', 'win32', 'aix', 'openharmony'];
const cpus = ['arm64', 'x64', 'ia32', 'arm', 'riscv64', 'ppc64', 's390x', 'loong64', 'wasm32', 'mips64el'];

function platformOf(name: string): Pick<LockEntry, 'os' | 'cpu' | 'libc'> {
  const parts = name.split('/').pop()!.split('-');
  const os = parts.find((p) => oses.includes(p)) ?? (parts.includes('win32') ? 'win32' : undefined);
  const cpu = parts.find((p) => cpus.includes(p));
  const out: Pick<LockEntry, 'os' | 'cpu' | 'libc'> = {};
  if (os) out.os = [os];
  if (cpu) out.cpu = [cpu];
  if (parts.includes('musl')) out.libc = ['musl'];
  else if (parts.includes('gnu')) out.libc = ['glibc'];
  return out;
}

let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = path === '' ? '' : `${path}/`;
    const candidates = [`${base}node_modules/${dep}`, `node_modules/${dep}`];
    if (candidates.some((c) => lock.packages[c])) continue;
    lock.packages[`node_modules/${dep}`] = { version: version.replace(/^[\^~]/, ''), ...(entry.dev ? { dev: true } : {}), optional: true, ...platformOf(dep) };
    added++;
  }
}
const sorted: Record<string, LockEntry> = {};
for (const k of Object.keys(lock.packages).sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)))) sorted[k] = lock.packages[k]!;
lock.packages = sorted;
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: added ${added} missing optional platform entries`);
