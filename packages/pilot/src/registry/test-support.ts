// Helpers for the registry and push context tests: YAML in, a store out.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Config, defaultKindRegistry, loadText, MemoryConfigStore } from '@weft/model';

/** Loads YAML texts (each its own file); fails on any loading error, which would make a test meaningless. */
export function loadConfigs(...texts: string[]): Config[] {
  const out: Config[] = [];
  texts.forEach((text, i) => {
    const r = loadText(text, `test-${i}.yaml`, { registry: defaultKindRegistry() });
    const problems = [...r.problems, ...r.resources.flatMap((x) => x.problems)].filter((p) => p.severity === 'error');
    if (problems.length > 0) throw new Error(`test input does not load: ${problems.map((p) => `${p.line}: ${p.path} ${p.message}`).join('; ')}`);
    for (const x of r.resources) if (x.config) out.push(x.config);
  });
  return out;
}

/** A store holding the configs of the YAML texts. */
export function storeFrom(...texts: string[]): MemoryConfigStore {
  const store = new MemoryConfigStore();
  for (const c of loadConfigs(...texts)) store.upsert(c);
  return store;
}

/** Upserts every config of a YAML text. */
export function apply(store: MemoryConfigStore, text: string): void {
  for (const c of loadConfigs(text)) store.upsert(c);
}

const examples = new URL('../../../../examples/bookinfo/', import.meta.url);

/** A file of the BookInfo example, relative to `examples/bookinfo/`. */
export function bookinfo(path: string): string {
  return readFileSync(fileURLToPath(new URL(path, examples)), 'utf8');
}
