// `npm test`: every project's tests through nx, then one closing line with the totals
// ("N passed, N failed, N skipped") so a reader of the log needs no runner-specific parsing.
import { spawn } from 'node:child_process';

const args = ['nx', 'run-many', '-t', 'test', '--outputStyle=stream', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NX_DAEMON: 'false', FORCE_COLOR: '0', NO_COLOR: '1' } });
const totals = { passed: 0, failed: 0, skipped: 0 };
let pending = '';
const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

function scan(line: string): void {
  const plain = line.replace(ansi, '');
  const m = /\bTests\s+(.*)\(\d+\)\s*$/.exec(plain);
  if (!m) return;
  for (const [, n, what] of m[1]!.matchAll(/(\d+) (passed|failed|skipped|todo)/g)) {
    if (what === 'passed') totals.passed += Number(n);
    else if (what === 'failed') totals.failed += Number(n);
    else totals.skipped += Number(n);
  }
}

child.stdout.on('data', (buf: Buffer) => {
  process.stdout.write(buf);
  pending += buf.toString();
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const l of lines) scan(l);
});
child.on('close', (code) => {
  if (pending) scan(pending);
  console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
  process.exit(code ?? 1);
});
