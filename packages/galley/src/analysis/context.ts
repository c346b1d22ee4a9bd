import { type Config, type FieldPath, groupKindOf, type SpecByGroupKind } from '@weft/model';
import { ServiceIndex } from './services.ts';

/** One finding of an analyzer, attached to the config (and field) it is about. */
export interface AnalysisMessage {
  /** Istio's analyzer code where the meaning is the same (`IST0101`). */
  code: string;
  severity: 'error' | 'warning';
  config: Config;
  /** Path from the document root: `['spec', 'http', 0, 'route', 0, 'destination', 'host']`. */
  path: FieldPath;
  message: string;
}

/** A check across resources. Analyzers read the context and report; they keep no state between runs. */
export interface Analyzer {
  /** `virtualservice.DestinationHostAnalyzer`: Istio's name where there is one. */
  name: string;
  description: string;
  analyze(ctx: AnalysisContext): void;
}

export type GroupKindWithSpec = keyof SpecByGroupKind;

/** What analyzers see: every config by group/kind and name, a service index, and a place to report. */
export class AnalysisContext {
  readonly configs: readonly Config[];
  readonly services: ServiceIndex;
  readonly messages: AnalysisMessage[] = [];
  readonly #byKind = new Map<string, Config[]>();
  readonly #byName = new Map<string, Config>();

  constructor(configs: readonly Config[]) {
    this.configs = configs;
    for (const c of configs) {
      const gk = groupKindOf(c);
      const l = this.#byKind.get(gk);
      if (l) l.push(c);
      else this.#byKind.set(gk, [c]);
      this.#byName.set(`${gk}/${c.metadata.namespace}/${c.metadata.name}`, c);
    }
    this.services = new ServiceIndex(configs);
  }

  /** Configs of one kind, in input order: `ctx.of('networking.istio.io/VirtualService')`. */
  of<K extends GroupKindWithSpec>(gk: K): readonly Config<SpecByGroupKind[K]>[] {
    return (this.#byKind.get(gk) ?? []) as Config<SpecByGroupKind[K]>[];
  }

  /** One config by kind, namespace and name (namespace `''` for cluster-scoped kinds). */
  get<K extends GroupKindWithSpec>(gk: K, namespace: string, name: string): Config<SpecByGroupKind[K]> | undefined {
    return this.#byName.get(`${gk}/${namespace}/${name}`) as Config<SpecByGroupKind[K]> | undefined;
  }

  report(config: Config, path: FieldPath, code: string, severity: 'error' | 'warning', message: string): void {
    this.messages.push({ code, severity, config, path, message });
  }
}
