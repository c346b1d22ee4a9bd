import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { groupKindOf } from '../config/config.ts';
import { formatTimestamp } from '../config/order.ts';
import type { KindRegistry } from '../config/kinds.ts';
import type { Config } from '../config/config.ts';
import type { Problem } from '../problem.ts';
import { type ConfigStore, keyOf } from '../store/store.ts';
import { expandPaths, type LoadedResource, loadText, maxFileBytes } from '../yaml/loader.ts';

export interface DirectorySourceOptions {
  dir: string;
  store: ConfigStore;
  registry: KindRegistry;
  defaultNamespace?: string;
  /** Extra checks (galley's semantic validation); a resource with an error problem is not applied. */
  validate?: (resource: LoadedResource & { config: Config }) => Problem[];
  /** Told about every file's problems after each scan (an empty list clears earlier ones). */
  onProblems?: (file: string, problems: Problem[]) => void;
  /** Quiet time before a burst of file events is applied. */
  debounceMs?: number;
  /** The clock that stamps creation times; default Date.now. */
  now?: () => number;
}

interface FileState {
  hash: string;
  /** Keys of the objects this file currently supplies to the store. */
  keys: Map<string, Config>;
}

/**
 * Keeps a store equal to the YAML under a directory: add, update and delete follow the files.
 * Rejected config never replaces accepted config: a file that no longer parses keeps its last
 * good objects, and an invalid resource keeps its previous version until it is fixed.
 *
 * Every object gets a metadata.creationTimestamp, because Istio resolves conflicts by age (the
 * oldest VirtualService keeps a host): the one its file carries (the directory is the object
 * store, as etcd is, and `weftctl apply` writes it there), else the time of the scan that first
 * saw the object, kept across edits and until no file defines the object any more. Objects seen
 * in one scan (all of them at start) share a time, so their names order them. A restart stamps
 * files without a timestamp afresh, as Istio's file source does.
 */
export class DirectorySource {
  readonly #opts: DirectorySourceOptions;
  readonly #files = new Map<string, FileState>();
  #watcher: FSWatcher | undefined;
  #topWatcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  readonly #released: [string, Config][] = [];
  /** Object key -> creationTimestamp. */
  readonly #created = new Map<string, string>();
  /** Objects deleted from the store this scan: their creation time goes unless another file brings them back. */
  readonly #deleted = new Map<string, Config>();
  #scanTime = '';

  constructor(opts: DirectorySourceOptions) {
    this.#opts = opts;
  }

  /** Loads everything once, then follows changes. */
  async start(): Promise<void> {
    await this.sync();
    this.#watcher = watch(this.#opts.dir, { recursive: true }, () => this.#schedule());
    this.#watcher.on('error', () => this.#schedule());
    // Node's recursive watch on Linux can miss a file in the top directory replaced by rename
    // (what `weftctl apply` does) when it was replaced shortly before; a plain inotify watch of
    // the directory itself reports every such rename.
    this.#topWatcher = watch(this.#opts.dir, () => this.#schedule());
    this.#topWatcher.on('error', () => this.#schedule());
  }

  stop(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#topWatcher?.close();
    this.#topWatcher = undefined;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.sync(), this.#opts.debounceMs ?? 100);
  }

  /** Rescans now; concurrent calls coalesce into one more scan. */
  async sync(): Promise<void> {
    if (this.#scanning) {
      this.#again = true;
      return this.#scanning;
    }
    this.#scanning = (async () => {
      do {
        this.#again = false;
        await this.#scan();
      } while (this.#again);
    })().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    this.#scanTime = formatTimestamp((this.#opts.now ?? Date.now)());
    const { files } = await expandPaths([this.#opts.dir]);
    const seen = new Set(files);
    for (const [file, state] of this.#files) {
      if (seen.has(file)) continue;
      this.#files.delete(file);
      for (const [key, c] of state.keys) this.#release(key, c);
      this.#opts.onProblems?.(file, []);
    }
    for (const file of files) await this.#scanFile(file);
    for (const [key, c] of this.#deleted) if (!this.#opts.store.get(groupKindOf(c), c.metadata.namespace, c.metadata.name)) this.#created.delete(key);
    this.#deleted.clear();
  }

  /** The config with its creation time: its own, else the one first given to its key. */
  #stamped(key: string, c: Config): Config {
    const own = c.metadata.creationTimestamp;
    if (own !== undefined) {
      this.#created.set(key, own);
      return c;
    }
    let created = this.#created.get(key);
    if (created === undefined) {
      created = this.#scanTime;
      this.#created.set(key, created);
    }
    return { ...c, metadata: { ...c.metadata, creationTimestamp: created } };
  }

  /**
   * A file stopped supplying `key`. Another file may define the same object (alternatives such
   * as BookInfo's destination-rule-all.yaml and destination-rule-all-mtls.yaml): then that
   * definition takes over instead of the object disappearing.
   */
  #release(key: string, gone: Config): void {
    for (const other of this.#files.values()) {
      const c = other.keys.get(key);
      if (c) {
        this.#opts.store.upsert(c);
        return;
      }
    }
    this.#opts.store.delete(groupKindOf(gone), gone.metadata.namespace, gone.metadata.name);
    this.#deleted.set(key, gone);
  }

  async #scanFile(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return; // Vanished between listing and reading; the next event rescans.
    }
    const hash = createHash('sha256').update(text).digest('hex');
    const prev = this.#files.get(file);
    if (prev?.hash === hash) return;
    const problems: Problem[] = [];
    if (text.length > maxFileBytes) {
      problems.push({ severity: 'error', path: '', message: `file is larger than ${maxFileBytes / 1048576} MiB; kept the last good config`, file, line: 1, column: 1, code: 'WEFT0008' });
      this.#opts.onProblems?.(file, problems);
      return;
    }
    const result = loadText(text, file, { registry: this.#opts.registry, defaultNamespace: this.#opts.defaultNamespace ?? 'default' });
    problems.push(...result.problems);
    const state: FileState = { hash, keys: new Map() };
    const broken = result.problems.some((p) => p.severity === 'error' && p.code !== 'WEFT0006');
    if (broken && prev) {
      // The file no longer parses: keep serving what it supplied before.
      state.keys = prev.keys;
    }
    if (!broken) {
      for (const r of result.resources) {
        problems.push(...r.problems);
        if (!r.config) continue;
        const extra = this.#opts.validate?.({ ...r, config: r.config }) ?? [];
        problems.push(...extra);
        const key = keyOf(r.config);
        const rejected = r.problems.some((p) => p.severity === 'error') || extra.some((p) => p.severity === 'error');
        if (rejected) {
          const old = prev?.keys.get(key);
          if (old) state.keys.set(key, old);
          continue;
        }
        const config = this.#stamped(key, r.config);
        state.keys.set(key, config);
        this.#opts.store.upsert(config);
      }
      for (const [key, c] of prev?.keys ?? []) {
        if (!state.keys.has(key)) this.#released.push([key, c]);
      }
    }
    this.#files.set(file, state);
    for (const [key, c] of this.#released.splice(0)) this.#release(key, c);
    this.#opts.onProblems?.(file, problems);
  }
}
