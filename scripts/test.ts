// `npm test`: a preflight for the host tools the tests use (as root it installs missing Debian
// packages; as another user it says which tests will skip), every project's tests through nx, then
// the skipped test files with their reasons, what failed, and one closing line with the totals
// ("N passed, N failed, N skipped"). A failed hook, a file that did not load, an unhandled error
// or a runner that exited non-zero counts as failed, and makes the exit status non-zero.
// The reading of the output lives in @weft/testing (summary.ts), with its tests.
import { spawn } from 'node:child_process';
import { preflight, summarize, TestOutputReader } from '@weft/testing';

await preflight();

const args = ['nx', 'run-many', '-t', 'test', '--outputStyle=stream', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NX_DAEMON: 'false', FORCE_COLOR: '0', NO_COLOR: '1' } });
const reader = new TestOutputReader();

function follow(stream: NodeJS.ReadableStream, out: NodeJS.WriteStream): void {
  let pending = '';
  stream.on('data', (buf: Buffer) => {
    out.write(buf);
    pending += buf.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) reader.line(l);
  });
  stream.on('end', () => {
    if (pending) reader.line(pending);
  });
}
follow(child.stdout, process.stdout);
follow(child.stderr, process.stderr);

child.on('close', (code) => {
  const summary = summarize(reader, code);
  console.log(`\n${[...summary.details, summary.line].join('\n')}`);
  process.exit(summary.exitCode);
});
