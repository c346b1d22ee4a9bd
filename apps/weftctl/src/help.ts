// weftctl's help: one description per flag and one list of exit statuses, shared by `weftctl
// --help` and each command's `--help` (main.test.ts checks each command's help against the flags
// its parser accepts, and the README's exit statuses against these).

export interface FlagDoc {
  long: string;
  short?: string;
  arg?: string;
  text: string;
}

/** Every flag any command takes, in the order help lists them. */
export const flagDocs: readonly FlagDoc[] = [
  { long: 'filename', short: 'f', arg: 'PATH', text: 'a file or directory; repeat for more (directories are read recursively)' },
  { long: 'output', short: 'o', arg: 'FORMAT', text: 'text (default) or json' },
  { long: 'namespace', short: 'n', arg: 'NS', text: 'namespace for resources that name none (default: default); dashboard on a cluster: where the addons are (default: istio-system)' },
  { long: 'system-namespace', arg: 'NS', text: 'kube-inject: weftd’s namespace; the sidecar reaches weftd.NS.svc:15012 (default: istio-system)' },
  { long: 'proxy-image', arg: 'IMAGE', text: 'kube-inject: the sidecar’s image (default: weft/proxy:<version>, as npm run images builds it)' },
  { long: 'state-dir', arg: 'DIR', text: 'the local mesh’s state directory (default: $WEFT_STATE_DIR or ~/.weft/local)' },
  { long: 'wait', arg: 'SECONDS', text: 'how long apply/delete wait for weftd and every proxy to ACK (default 15; 0: do not wait)' },
  { long: 'port', arg: 'PORT', text: 'up: the ingress gateway’s port (default 8080 when free; 0 picks a free one); dashboard on a cluster: the local port (default: a free one)' },
  { long: 'loopback-net', arg: '127.0.N', text: 'put the workloads on 127.0.N.x (to run a second mesh beside the first)' },
  { long: 'mesh-config', arg: 'FILE', text: 'Istio MeshConfig YAML for weftd (access logs, tracing); install: merged over the chart’s meshConfig' },
  { long: 'log-level', arg: 'LEVEL', text: 'debug, info (default), warn or error, for every component' },
  { long: 'timeout', arg: 'SECONDS', text: 'how long up waits for the mesh to be ready (default 120); install/uninstall: for the cluster (default 300)' },
  { long: 'fresh', text: 'up: start with an empty config directory (drop what weftctl apply added in earlier runs)' },
  { long: 'plaintext-xds', text: 'up: also open weftd’s plaintext xDS port, unauthenticated (proxies use the TLS port either way)' },
  { long: 'no-addons', text: 'up: without the addons (Prometheus, the dashboard)' },
  { long: 'kubeconfig', arg: 'FILE', text: 'the cluster’s kubeconfig (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)' },
  { long: 'kube', text: 'apply, delete, proxy-config, dashboard: Weft on the cluster of $KUBECONFIG (else ~/.kube/config) instead of the local mesh' },
  { long: 'values', arg: 'FILE', text: 'install: chart values, a YAML mapping with base:, weftd: and gateway: sections (deploy/charts/*/values.yaml)' },
  { long: 'revision', arg: 'REV', text: 'install: the istio.io/rev label value weftd injects besides istio-injection=enabled (default: default)' },
  { long: 'no-gateway', text: 'install: without the ingress gateway' },
  { long: 'purge', text: 'uninstall: also delete the CRDs, and with them every Istio and Gateway API object in the cluster' },
  { long: 'pre', text: 'check: the checks before an install (API server, version, permissions to install)' },
  { long: 'open', text: 'dashboard: also open the URL in a browser (xdg-open)' },
  { long: 'header', short: 'H', arg: "'NAME: VALUE'", text: 'why: a request header; repeat for more' },
  { long: 'help', short: 'h', text: 'this text' },
];

export const exitStatus = `Exit status:
  0    success (everything valid; applied and ACKed; the mesh stopped when asked)
  1    something invalid or not found, not in force within --wait, a mesh that failed to start, no running mesh,
       a mesh component not answering (e.g. weftd restarting), (status) a component not running or a config file rejected,
       (install) not ready within --timeout or the cluster refusing, or (check) a check that failed
  2    usage error (unknown command or flag, bad flag value)
  3    unexpected error, printed as \`weftctl: internal error: ...\`
  130  weftctl up interrupted (Ctrl-C) while starting`;

/** The Options lines for these flags (all of them when none are given). */
export function optionsHelp(flags?: readonly string[]): string {
  const docs = flagDocs.filter((d) => !flags || d.long === 'help' || flags.includes(d.long));
  const heads = docs.map((d) => `${d.short ? `-${d.short}, ` : ''}--${d.long}${d.arg ? ` ${d.arg}` : ''}`);
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  return `Options:\n${docs.map((d, i) => `  ${heads[i]!.padEnd(width)}${d.text}`).join('\n')}`;
}

/** One command's block (its synopsis line and description) out of a usage text. */
export function commandBlock(usage: string, command: string): string | undefined {
  const lines = usage.split('\n');
  const start = lines.findIndex((l) => l === `  weftctl ${command}` || l.startsWith(`  weftctl ${command} `));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && lines[end]!.startsWith('      ')) end++;
  return lines.slice(start, end).join('\n');
}
