// `npm test`: a preflight for the host tools the tests use (as root it installs missing Debian
// packages; as another user it says which tests will skip), every project's tests through nx, then
// the skipped test files with their reasons, what failed, and one closing line with the totals
// ("N passed, N failed, N skipped"). A failed hook, a file that did not load, an unhandled error
// or a runner that exited non-zero counts as failed, and makes the exit status non-zero.
// The reading of the output lives in @weft/testing (summary.ts), with its tests.
// The Kubernetes tier (`*.kube.test.ts`) needs a cluster: with KUBECONFIG the tests use that one;
// as root the cluster (kube-local) is brought up here, before the projects run (they share it),
// and taken down at the end when it was not up before; otherwise those tests skip, saying why.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { clusterAnswers, kubeCluster, kubeLocalDown, kubeUnmet, preflight, summarize, TestOutputReader } from '@weft/testing';

await preflight();

/** Whether the repository has Kubernetes-tier tests (`*.kube.test.ts` under packages, apps, e2e, deploy). */
function hasKubeTests(): boolean {
  const walk = (dir: string): boolean => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const e of entries) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      if (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.kube.test.ts')) return true;
    }
    return false;
  };
  return ['packages', 'apps', 'e2e', 'deploy'].some((d) => walk(join(import.meta.dirname, '..', d)));
}

let takeClusterDown = false;
const env: NodeJS.ProcessEnv = { ...process.env };
if (hasKubeTests()) {
  const why = kubeUnmet();
  if (why) console.log(`npm test: the Kubernetes tier skips: ${why}`);
  else if (!process.env.KUBECONFIG) {
    const wasUp = await clusterAnswers();
    const t0 = Date.now();
    console.log(wasUp ? 'npm test: kube-local is up; the Kubernetes tier uses it' : 'npm test: bringing up kube-local for the Kubernetes tier (a cold build of Kubernetes takes 5-10 min; progress below)');
    try {
      env.KUBECONFIG = await kubeCluster((line) => console.log(`npm test: ${line}`));
      takeClusterDown = !wasUp;
      if (!wasUp) console.log(`npm test: kube-local up in ${Math.round((Date.now() - t0) / 1000)} s (KUBECONFIG=${env.KUBECONFIG})`);
    } catch (e) {
      // The tests try again themselves and fail with the reason: a cluster that cannot start is a failure, not a skip.
      console.log(`npm test: kube-local did not come up: ${(e as Error).message}`);
    }
  }
}

// Two projects at a time: the e2e suites each run meshes of a dozen processes with time bounds (a
// component back within 10 s, < 2% of pages lost in a rollout); three projects at once on a 2-core
// machine pushed them over (load average 9). `npm test -- --parallel=3` overrides.
const args = ['nx', 'run-many', '-t', 'test', '--outputStyle=stream', '--parallel=2', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, NX_DAEMON: 'false', FORCE_COLOR: '0', NO_COLOR: '1' } });
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

child.on('close', async (code) => {
  if (takeClusterDown) {
    console.log('npm test: taking kube-local down (it was not up before the tests)');
    const down = await kubeLocalDown((line) => console.log(`npm test: ${line}`));
    if (down !== 0) console.log(`npm test: kube-local's down.sh exited ${down}; see ${process.env.KUBE_LOCAL_DIR ?? '/var/tmp/kube-local'}/logs.last`);
  }
  const summary = summarize(reader, code);
  console.log(`\n${[...summary.details, summary.line].join('\n')}`);
  process.exit(summary.exitCode);
});
