// weftd's webhooks as one part: the server on 15017 with its serving certificate from the mesh CA
// (for the webhook Service's names), `/validate` (galley) and `/inject` (the sidecar template), and,
// given a cluster, the caBundle of the webhook configurations kept equal to the mesh root.
import { isIP } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { type CertificateAuthority, ServingCertificateProvider } from '@weft/citadel';
import { controlPlaneTlsName, createLogger, type Logger } from '@weft/model';
import type { InjectionValues } from './inject/values.ts';
import { CaBundlePatcher, istioWebhookConfigurationNames, type WebhookConfigurationNames } from './webhook-cabundle.ts';
import { injectionAdmission } from './webhook-inject.ts';
import { validationAdmission } from './webhook-validate.ts';
import { WebhookServer } from './webhook.ts';

export interface WebhooksOptions {
  ca: CertificateAuthority;
  /** The sidecar template's values. */
  injection: InjectionValues;
  /** Default 127.0.0.1; 0.0.0.0 in a pod. */
  host?: string;
  /** Default 15017; 0 picks a free port. */
  port?: number;
  /** weftd's namespace and Service name: the serving certificate is for `<service>.<namespace>.svc` (default weftd, istio-system). */
  namespace?: string;
  serviceName?: string;
  /** With a cluster, the caBundle of these configurations is kept current (default: Istio's names). */
  kubeConfig?: KubeConfig;
  configurations?: WebhookConfigurationNames;
  maxBodyBytes?: number;
  logger?: Logger;
}

/** The DNS names the API server may dial the webhooks by. */
export function webhookServingNames(namespace: string, serviceName: string): string[] {
  const svc = `${serviceName}.${namespace}.svc`;
  return [...new Set([svc, `${svc}.cluster.local`, controlPlaneTlsName, 'localhost'])];
}

export class Webhooks {
  readonly server: WebhookServer;
  readonly patcher: CaBundlePatcher | undefined;
  #serving: ServingCertificateProvider;
  readonly #names: string[];
  readonly #ips: string[];
  readonly #log: Logger;

  private constructor(server: WebhookServer, serving: ServingCertificateProvider, patcher: CaBundlePatcher | undefined, names: string[], ips: string[], log: Logger) {
    this.server = server;
    this.#serving = serving;
    this.patcher = patcher;
    this.#names = names;
    this.#ips = ips;
    this.#log = log;
  }

  get port(): number {
    return this.server.port;
  }

  static async start(o: WebhooksOptions): Promise<Webhooks> {
    const log = o.logger ?? createLogger({ scope: 'webhook' });
    const names = webhookServingNames(o.namespace ?? 'istio-system', o.serviceName ?? 'weftd');
    // A URL webhook (clientConfig.url) may name the address it listens on.
    const host = o.host ?? '127.0.0.1';
    const ips = [...new Set(['127.0.0.1', ...(isIP(host) && host !== '0.0.0.0' && host !== '::' ? [host] : [])])];
    const serving = await Webhooks.#serve(o.ca, names, ips, log);
    const injection = o.injection;
    const server = await WebhookServer.start({
      host,
      port: o.port ?? 15017,
      certificate: serving.current!,
      handlers: { '/validate': validationAdmission(), '/inject': injectionAdmission(() => injection, log) },
      logger: log,
      ...(o.maxBodyBytes !== undefined ? { maxBodyBytes: o.maxBodyBytes } : {}),
    });
    let patcher: CaBundlePatcher | undefined;
    serving.addIdentityCertificateListener((u) => {
      if (u) server.setCertificate({ certChainPem: u.certificate.toString(), privateKeyPem: u.privateKey.toString() });
    });
    try {
      if (o.kubeConfig) {
        patcher = new CaBundlePatcher({ kubeConfig: o.kubeConfig, names: o.configurations ?? istioWebhookConfigurationNames, rootCertPem: o.ca.rootCertPem, logger: log });
        await patcher.start();
      }
    } catch (err) {
      await patcher?.stop();
      serving.stop();
      await server.close();
      throw err;
    }
    return new Webhooks(server, serving, patcher, names, ips, log);
  }

  static async #serve(ca: CertificateAuthority, dnsNames: string[], ipAddresses: string[], log: Logger): Promise<ServingCertificateProvider> {
    const serving = new ServingCertificateProvider(ca, { dnsNames, ipAddresses }, log);
    await serving.start();
    return serving;
  }

  /** A new mesh root: a serving certificate from it, and the caBundles patched to it. */
  async setCa(ca: CertificateAuthority): Promise<void> {
    const next = await Webhooks.#serve(ca, this.#names, this.#ips, this.#log);
    next.addIdentityCertificateListener((u) => {
      if (u) this.server.setCertificate({ certChainPem: u.certificate.toString(), privateKeyPem: u.privateKey.toString() });
    });
    this.#serving.stop();
    this.#serving = next;
    await this.patcher?.setRootCert(ca.rootCertPem);
  }

  async close(): Promise<void> {
    this.#serving.stop();
    await this.patcher?.stop();
    await this.server.close();
  }
}
