// What a scenario needs from a running BookInfo mesh, whatever runs it: the product page through
// the ingress gateway, `weftctl apply -f` / `delete -f`, each proxy's Prometheus port, a plaintext
// call into a pod from outside the mesh, and the OTLP receiver the mesh's tracing reports to.
// Three drivers implement it: local (weftctl up's mesh on loopback addresses, no root), netns
// (each pod a network namespace with capture rules, as root) and kube (a Kubernetes cluster through
// its kubeconfig: kube-local here, kind or EKS elsewhere).
import type { OtlpReceiver } from '@weft/proxy/testing';

export interface PlaintextAnswer {
  /** Whether an HTTP answer came back. */
  ok: boolean;
  status?: number;
  body?: string;
  /** Why there was no answer (connection reset, refused, timed out). */
  error?: string;
}

export interface BookinfoDriver {
  readonly name: string;
  /** The namespace BookInfo runs in (`default`; the kube driver's own, e.g. weft-test-bookinfo-1a2b3c). */
  readonly namespace: string;
  /** http://<ingress gateway>/productpage */
  readonly productpageUrl: string;
  /** Receives the spans of every proxy (MeshConfig: tracing at 100% to it). */
  readonly otlp: OtlpReceiver;
  /** `weftctl apply -f FILE...`: resolves once every proxy has ACKed the push that carries it. */
  apply(files: readonly string[]): Promise<void>;
  /** `weftctl delete -f FILE...`, waited on the same way. */
  delete(files: readonly string[]): Promise<void>;
  /** The Prometheus text of a workload's proxy (`reviews-v2`) from its stats port 15090. */
  proxyStats(workload: string): Promise<string>;
  /**
   * A Prometheus that scrapes the mesh on its own, as a user's would (kube: the addon in
   * deploy/addons/prometheus, finding the pods by their prometheus.io annotations through
   * kubernetes_sd); the metrics scenario also asks it. The value of a query that yields one series.
   */
  readonly prometheus?: { value(promql: string): Promise<number | undefined> };
  /** A plaintext HTTP GET into a workload's service port (9080) from a client without a sidecar. */
  plaintextCall(workload: string, path: string): Promise<PlaintextAnswer>;
  /** Stops everything it started. */
  stop(): Promise<void>;
  /** After stop(): what it made and is still there (processes, namespaces, links, listening ports); empty when clean. */
  leftovers(): Promise<string[]>;
}

/** MeshConfig YAML that turns on tracing at 100% to an OpenTelemetry (OTLP/HTTP) receiver. */
export function tracingMeshConfig(host: string, port: number): string {
  return `enableTracing: true
defaultConfig:
  tracing:
    sampling: 100
extensionProviders:
- name: otel
  opentelemetry:
    service: ${host}
    port: ${port}
    http:
      path: /v1/traces
defaultProviders:
  tracing: [otel]
`;
}

/** How often proxies export batched spans (ms): short, so the trace test does not wait 5 s. */
export const spanExportDelayMs = '200';

/** Runs a weftctl command function, throwing with its output when it fails. */
export async function runWeftctl(what: string, fn: (io: { out: (s: string) => void; err: (s: string) => void }) => Promise<number>): Promise<string> {
  let out = '';
  let err = '';
  const code = await fn({
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  if (code !== 0) throw new Error(`${what} failed (${code}):\n${err}${out}`);
  return out;
}
