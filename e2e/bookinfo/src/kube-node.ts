// What the kube driver's pods leave on a kube-local node besides API objects: containerd
// containers and sandboxes (and their processes), network namespaces, veths on the CNI bridge,
// kube-proxy's iptables rules, mounts and the kubelet's pod directories. The kubelet and containerd
// make these for the driver's pods and remove them after the pods are deleted, some of them only at
// the kubelet's next garbage collection (a minute), so nodeLeftovers is asked until it is empty or
// a deadline passes. Only on kube-local: another cluster's nodes are not this host.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubeLocalDir } from '@weft/testing';
import type { RunResult } from './kube-driver.ts';

/** What the node had before the driver started (what is new after stop() is the driver's). */
export interface NodeSnapshot {
  netns: Set<string>;
  veths: Set<string>;
}

const netnsDir = '/var/run/netns';
const bridge = 'cni0';

/** kube-local's containerd. */
export const containerdSocket = () => join(kubeLocalDir(), 'run/containerd/containerd.sock');

/** `ctr ARGS` in the Kubernetes namespace (k8s.io) of kube-local's containerd. */
export function ctr(...args: string[]): RunResult {
  const r = spawnSync('ctr', ['--address', containerdSocket(), '-n', 'k8s.io', ...args], { encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

/** What a ctr listing printed; nothing when it failed. */
const listing = (r: RunResult) => (r.code === 0 ? r.stdout : '');

function lines(s: string): string[] {
  return s.split('\n').filter(Boolean);
}

/** The veths enslaved to the CNI bridge (one per pod sandbox). */
function bridgeVeths(): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' });
  return lines(r.stdout ?? '').map((l) => l.split(':')[1]!.trim().split('@')[0]!);
}

export function nodeSnapshot(): NodeSnapshot {
  return { netns: new Set(existsSync(netnsDir) ? readdirSync(netnsDir) : []), veths: new Set(bridgeVeths()) };
}

/** containerd's containers (pod sandboxes included) of the pods of `namespace`. */
export function podContainers(namespace: string): string[] {
  return lines(listing(ctr('containers', 'ls', '-q', `labels."io.kubernetes.pod.namespace"==${namespace}`)));
}

/** What is still on the node from the driver's pods in `namespaces` (pod UIDs and container ids recorded before they were deleted). */
export function nodeLeftovers(before: NodeSnapshot, namespaces: readonly string[], podUids: readonly string[], containerIds: readonly string[]): string[] {
  const left: string[] = [];
  for (const ns of namespaces) for (const id of podContainers(ns)) left.push(`containerd container ${id.slice(0, 12)} of a pod in ${ns}`);
  const ids = new Set(containerIds);
  for (const l of lines(listing(ctr('tasks', 'ls'))).slice(1)) {
    const [id, pid] = l.split(/\s+/);
    if (id && ids.has(id)) left.push(`process ${pid} (containerd task ${id.slice(0, 12)})`);
  }
  // processes in a cgroup of one of the pods (cgroupfs: .../pod<uid>/...)
  const cgroups = podUids.map((u) => `pod${u}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cg = '';
    try {
      cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const hit = cgroups.find((c) => cg.includes(c));
    if (hit) left.push(`process ${pid} in the cgroup of pod ${hit.slice(3)}`);
  }
  // containerd names a pod's network namespace cni-<uuid> (other tests' namespaces are not the driver's)
  for (const n of existsSync(netnsDir) ? readdirSync(netnsDir) : []) if (n.startsWith('cni-') && !before.netns.has(n)) left.push(`network namespace ${n}`);
  for (const v of bridgeVeths()) if (!before.veths.has(v)) left.push(`veth ${v} on ${bridge}`);
  // kube-proxy comments each rule with namespace/service:port
  const rules = spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout ?? '';
  for (const ns of namespaces) {
    const n = lines(rules).filter((l) => l.includes(`"${ns}/`) || l.includes(` ${ns}/`)).length;
    if (n > 0) left.push(`${n} iptables rules for Services of ${ns}`);
  }
  const marks = [...podUids, ...containerIds];
  for (const m of lines(readFileSync('/proc/self/mountinfo', 'utf8'))) {
    const hit = marks.find((x) => m.includes(x));
    if (hit) left.push(`mount ${m.split(' ')[4]}`);
  }
  for (const u of podUids) if (existsSync(join(kubeLocalDir(), 'run/kubelet/pods', u))) left.push(`kubelet pod directory ${u}`);
  return left;
}

/** What nodeLeftovers() checks, for the suite's last line. */
export const nodeChecks = `containerd containers and tasks, processes in the pods' cgroups, network namespaces (cni-*) and veths on ${bridge} new since the start, kube-proxy's iptables rules, mounts and kubelet directories of the pods`;
