import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { join, sep } from 'node:path';
import { groupKindOf } from '../config/config.ts';
import { formatTimestamp } from '../config/order.ts';
import type { KindRegistry } from '../config/kinds.ts';
import type { Config } from '../config/config.ts';
import type { Problem } from '../problem.ts';
import { type ConfigStore, keyOf } from '../store/store.ts';
import { expandPaths, isConfigFileName, type LoadedResource, loadText, maxFileBytes } from '../yaml/loader.ts';

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

/** Reading and checking files yields to the event loop after this long. */
const sliceMs = 20;

/** A file read and checked, waiting to be applied with the rest of its scan. */
interface ReadFile {
  file: string;
  /** Undefined: the file was refused whole (too big); nothing changes but its problems. */
  state: FileState | undefined;
  problems: Problem[];
  upserts: Config[];
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
 *
 * Cost: `weftctl apply` of thousands of objects writes thousands of files at once. Each directory
 * has one plain inotify watch (Node's recursive fs.watch on Linux re-lists the whole directory
 * synchronously on every event: 5,000 files blocked the event loop for minutes), events name the
 * files to read, and only those are read again. A scan reads and checks its files first, yielding
 * to the event loop between them, then applies all of them to the store in one synchronous step:
 * a burst of files is one batch of store events, so pilot builds one push for it, never one from
 * half of it.
 */
export class DirectorySource {
  readonly #opts: DirectorySourceOptions;
  readonly #files = new Map<string, FileState>();
  /** Object key -> the files that define it (usually one), in the order they came. */
  readonly #suppliers = new Map<string, Set<string>>();
  /** Directory -> its watch. */
  readonly #watchers = new Map<string, FSWatcher>();
  /** Paths named by events since the last scan. */
  readonly #dirty = new Set<string>();
  /** The next scan lists the whole tree (at start, after a watch failed, or when asked). */
  #full = true;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
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
    this.#stopped = false;
    await this.sync();
  }

  stop(): void {
    this.#stopped = true;
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    if (this.#timer) clearTimeout(this.#timer);
  }

  #watch(dir: string): void {
    if (this.#stopped || this.#watchers.has(dir)) return;
    let w: FSWatcher;
    try {
      w = watch(dir, (_event, name) => {
        if (name) this.#dirty.add(join(dir, name));
        else this.#full = true;
        this.#schedule();
      });
    } catch {
      return; // Gone already; its parent's event says so.
    }
    w.on('error', () => {
      w.close();
      if (this.#watchers.get(dir) === w) this.#watchers.delete(dir);
      this.#full = true;
      this.#schedule();
    });
    this.#watchers.set(dir, w);
  }

  #unwatchUnder(path: string): void {
    for (const [dir, w] of this.#watchers) {
      if (dir === path || dir.startsWith(path + sep)) {
        w.close();
        this.#watchers.delete(dir);
      }
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#run(), this.#opts.debounceMs ?? 100);
  }

  /** Reads the whole tree again now; concurrent calls coalesce into one more scan. */
  async sync(): Promise<void> {
    this.#full = true;
    return this.#run();
  }

  #run(): Promise<void> {
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
    const full = this.#full;
    this.#full = false;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    const candidates: string[] = [];
    const gone = new Set<string>();
    if (full) {
      const dirs: string[] = [];
      const listed = await expandPaths([this.#opts.dir], dirs);
      for (const f of listed.files) candidates.push(f);
      const present = new Set(candidates);
      // A listing cut short (a directory vanished meanwhile) says nothing about what is gone: try again.
      if (listed.problems.length > 0) {
        this.#full = true;
        this.#schedule();
      } else for (const file of this.#files.keys()) if (!present.has(file)) gone.add(file);
      const live = new Set(dirs);
      for (const dir of [...this.#watchers.keys()]) if (!live.has(dir)) this.#unwatchUnder(dir);
      for (const dir of dirs) this.#watch(dir);
    } else for (const path of dirty.sort()) candidates.push(path);
    // Small local files are read synchronously, in slices of the event loop's time: a thread-pool
    // round trip per file left 5,000 files mostly waiting, for seconds.
    const read: ReadFile[] = [];
    let sliceStart = performance.now();
    for (let i = 0; i < candidates.length; i++) {
      if (performance.now() - sliceStart > sliceMs) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
      const path = candidates[i]!;
      const r = this.#read(path);
      if (r === 'vanished') {
        if (this.#files.has(path)) gone.add(path);
        else if (this.#watchers.has(path)) {
          // A directory vanished: everything known under it.
          this.#unwatchUnder(path);
          for (const file of this.#files.keys()) if (file.startsWith(path + sep)) gone.add(file);
        }
      } else if (r === 'directory') {
        // A new (or replaced) directory: everything under it.
        if (full) continue;
        const dirs: string[] = [];
        for (const f of (await expandPaths([path], dirs)).files) candidates.push(f);
        for (const dir of dirs) this.#watch(dir);
      } else if (r !== 'unchanged') read.push(r);
    }
    // Everything read is applied in one synchronous step (one batch of store events).
    for (const file of gone) {
      const state = this.#files.get(file);
      if (!state) continue;
      this.#setFile(file, undefined);
      for (const [key, c] of state.keys) this.#release(key, c);
      this.#opts.onProblems?.(file, []);
    }
    for (const r of read) this.#apply(r);
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

  /** Records what a file supplies (undefined: nothing any more), keeping the supplier index. */
  #setFile(file: string, state: FileState | undefined): void {
    const prev = this.#files.get(file);
    for (const key of prev?.keys.keys() ?? []) {
      if (state?.keys.has(key)) continue;
      const s = this.#suppliers.get(key);
      s?.delete(file);
      if (s?.size === 0) this.#suppliers.delete(key);
    }
    if (!state) {
      this.#files.delete(file);
      return;
    }
    this.#files.set(file, state);
    for (const key of state.keys.keys()) {
      const s = this.#suppliers.get(key);
      if (s) s.add(file);
      else this.#suppliers.set(key, new Set([file]));
    }
  }

  /**
   * A file stopped supplying `key`. Another file may define the same object (alternatives such
   * as BookInfo's destination-rule-all.yaml and destination-rule-all-mtls.yaml): then that
   * definition takes over instead of the object disappearing.
   */
  #release(key: string, gone: Config): void {
    for (const other of this.#suppliers.get(key) ?? []) {
      const c = this.#files.get(other)?.keys.get(key);
      if (c) {
        this.#opts.store.upsert(c);
        return;
      }
    }
    this.#opts.store.delete(groupKindOf(gone), gone.metadata.namespace, gone.metadata.name);
    this.#deleted.set(key, gone);
  }

  /** Reads, parses and checks one file; nothing is applied yet. */
  #read(file: string): ReadFile | 'vanished' | 'directory' | 'unchanged' {
    let text: string;
    try {
      const st = statSync(file);
      if (st.isDirectory()) return 'directory';
      if (!st.isFile() || !isConfigFileName(file)) return 'unchanged';
      if (st.size > maxFileBytes) {
        // Refused before reading: a huge file costs no memory.
        const message = `file is ${(st.size / 1048576).toFixed(1)} MiB; the limit is ${maxFileBytes / 1048576} MiB per file; kept the last good config`;
        return { file, state: undefined, problems: [{ severity: 'error', path: '', message, file, line: 1, column: 1, code: 'WEFT0008' }], upserts: [] };
      }
      text = readFileSync(file, 'utf8');
    } catch {
      return 'vanished';
    }
    const hash = createHash('sha256').update(text).digest('hex');
    const prev = this.#files.get(file);
    if (prev?.hash === hash) return 'unchanged';
    const problems: Problem[] = [];
    const result = loadText(text, file, { registry: this.#opts.registry, defaultNamespace: this.#opts.defaultNamespace ?? 'default' });
    problems.push(...result.problems);
    const state: FileState = { hash, keys: new Map() };
    const upserts: Config[] = [];
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
        upserts.push(config);
      }
    }
    return { file, state, problems, upserts };
  }

  /** Applies one file read by this scan to the store. */
  #apply(r: ReadFile): void {
    if (r.state) {
      const prev = this.#files.get(r.file);
      for (const c of r.upserts) this.#opts.store.upsert(c);
      this.#setFile(r.file, r.state);
      for (const [key, c] of prev?.keys ?? []) if (!r.state.keys.has(key)) this.#release(key, c);
    }
    this.#opts.onProblems?.(r.file, r.problems);
  }
}
