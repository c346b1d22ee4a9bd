// Keeps the caBundle of weftd's webhook configurations equal to the mesh's root certificate, as
// istiod's webhook patcher does: the API server verifies the webhooks' serving certificate with it.
// Each named MutatingWebhookConfiguration and ValidatingWebhookConfiguration is watched; whenever
// one appears or changes (a Helm upgrade writes an empty caBundle, someone edits it) and any of its
// webhooks carries another bundle, every webhook of it is patched; a new root patches them all.
import {
  AdmissionregistrationV1Api,
  type KubeConfig,
  type KubernetesObject,
  ListWatch,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
  Watch,
} from '@kubernetes/client-node';
import { createLogger, type Logger } from '@weft/model';

export interface WebhookConfigurationNames {
  /** MutatingWebhookConfigurations (Istio's: istio-sidecar-injector). */
  mutating: readonly string[];
  /** ValidatingWebhookConfigurations (Istio's: istio-validator-istio-system). */
  validating: readonly string[];
}

export const istioWebhookConfigurationNames: WebhookConfigurationNames = { mutating: ['istio-sidecar-injector'], validating: ['istio-validator-istio-system'] };

type Kind = 'mutating' | 'validating';
interface WatchEntry {
  kind: Kind;
  name: string;
  lw: ListWatch<KubernetesObject>;
  retry?: NodeJS.Timeout;
  backoff: number;
}
type WebhookConfiguration = V1MutatingWebhookConfiguration | V1ValidatingWebhookConfiguration;

const paths: Record<Kind, string> = {
  mutating: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
  validating: '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
};

export interface CaBundlePatcherOptions {
  kubeConfig: KubeConfig;
  names: WebhookConfigurationNames;
  /** The root certificate(s), PEM. */
  rootCertPem: string;
  logger?: Logger;
  /** First and longest wait before watching again after an error, ms (default 500 and 30,000). */
  backoffMs?: { initial: number; max: number };
}

/** Watches the named webhook configurations and patches their caBundle. */
export class CaBundlePatcher {
  readonly #api: AdmissionregistrationV1Api;
  readonly #o: CaBundlePatcherOptions;
  readonly #log: Logger;
  #bundle: string;
  readonly #watches: WatchEntry[] = [];
  #stopped = false;
  /** Patches done (for tests and logs). */
  patches = 0;

  constructor(o: CaBundlePatcherOptions) {
    this.#o = o;
    this.#api = o.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    this.#log = o.logger ?? createLogger({ scope: 'webhook' });
    this.#bundle = Buffer.from(o.rootCertPem).toString('base64');
  }

  /** Starts watching; resolves once each configuration has been listed (and patched where needed). */
  async start(): Promise<void> {
    const initial = this.#o.backoffMs?.initial ?? 500;
    const starts: Promise<void>[] = [];
    for (const kind of ['mutating', 'validating'] as const) {
      for (const name of this.#o.names[kind]) {
        const list = async () =>
          (kind === 'mutating'
            ? await this.#api.listMutatingWebhookConfiguration({ fieldSelector: `metadata.name=${name}` })
            : await this.#api.listValidatingWebhookConfiguration({ fieldSelector: `metadata.name=${name}` })) as unknown as { items: KubernetesObject[]; metadata?: { resourceVersion?: string } };
        const lw = new ListWatch<KubernetesObject>(paths[kind], new Watch(this.#o.kubeConfig), list as never, false, undefined, `metadata.name=${name}`);
        const w: WatchEntry = { kind, name, lw, backoff: initial };
        const onObject = (obj: KubernetesObject) => {
          w.backoff = initial;
          void this.#reconcile(kind, obj as WebhookConfiguration);
        };
        lw.on('add', onObject);
        lw.on('update', onObject);
        lw.on('error', (err: unknown) => this.#retry(w, err));
        this.#watches.push(w);
        starts.push(lw.start().catch((err: unknown) => this.#retry(w, err)));
      }
    }
    await Promise.all(starts);
    for (const w of this.#watches) if (!w.lw.get(w.name)) this.#log.warn('webhook configuration not found; its caBundle will be set when it is created', { kind: w.kind, name: w.name });
  }

  #retry(w: WatchEntry, err: unknown): void {
    if (this.#stopped) return;
    clearTimeout(w.retry);
    this.#log.warn('watching a webhook configuration failed; retrying', { kind: w.kind, name: w.name, inMs: w.backoff, error: err instanceof Error ? err.message : String(err) });
    w.retry = setTimeout(() => {
      if (!this.#stopped) w.lw.start().catch((e: unknown) => this.#retry(w, e));
    }, w.backoff);
    w.retry.unref();
    w.backoff = Math.min(w.backoff * 2, this.#o.backoffMs?.max ?? 30_000);
  }

  /** A new root: every configuration is patched to carry it. */
  async setRootCert(rootCertPem: string): Promise<void> {
    this.#bundle = Buffer.from(rootCertPem).toString('base64');
    this.#log.info('mesh root changed; updating webhook caBundles', { configurations: this.#watches.map((w) => w.name) });
    await Promise.all(this.#watches.map((w) => w.lw.get(w.name)).map((obj, i) => (obj ? this.#reconcile(this.#watches[i]!.kind, obj as WebhookConfiguration) : undefined)));
  }

  async #reconcile(kind: Kind, config: WebhookConfiguration): Promise<void> {
    const name = config.metadata?.name ?? '';
    const bundle = this.#bundle;
    const webhooks = config.webhooks ?? [];
    if (webhooks.every((w) => w.clientConfig.caBundle === bundle)) return;
    // `test` keeps a concurrent edit that reordered the webhooks from being patched at the wrong index.
    const ops = webhooks.flatMap((w, i) => [
      { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
      { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle },
    ]);
    try {
      if (kind === 'mutating') await this.#api.patchMutatingWebhookConfiguration({ name, body: ops });
      else await this.#api.patchValidatingWebhookConfiguration({ name, body: ops });
      this.patches++;
      this.#log.info('webhook caBundle set to the mesh root', { kind, name, webhooks: webhooks.map((w) => w.name) });
    } catch (err) {
      this.#log.error('patching a webhook caBundle failed; retrying', { kind, name, inMs: 2000, error: err instanceof Error ? err.message : String(err) });
      const w = this.#watches.find((x) => x.kind === kind && x.name === name);
      const retry = setTimeout(() => {
        const latest = w?.lw.get(name);
        if (!this.#stopped && latest) void this.#reconcile(kind, latest as WebhookConfiguration);
      }, 2000);
      retry.unref();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const w of this.#watches) {
      clearTimeout(w.retry);
      await w.lw.stop();
    }
  }
}
