import { isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import type { FieldPath, Locator } from '../problem.ts';

/**
 * Where a document came from, and how to find any field in it.
 * Positions are resolved lazily by walking the YAML syntax tree, so loading stays cheap
 * and only reported problems pay for a lookup.
 */
export class SourceLocation implements Locator {
  readonly file: string;
  /** 0-based index of the document in its file. */
  readonly index: number;
  readonly line: number;
  readonly column: number;
  readonly #root: Node | null;
  readonly #lines: LineCounter;

  constructor(file: string, index: number, root: Node | null, lines: LineCounter, start: number) {
    this.file = file;
    this.index = index;
    this.#root = root;
    this.#lines = lines;
    const pos = lines.linePos(start);
    this.line = pos.line;
    this.column = pos.col;
  }

  positionOf(path: FieldPath): { line: number; column: number } {
    let node: Node | null = this.#root;
    // Point at the key of a map entry (where a reader looks for a field), at the item for lists.
    let offset = node?.range?.[0];
    for (const seg of path) {
      if (!node) break;
      if (typeof seg === 'number' && isSeq(node)) {
        const item = node.items[seg];
        if (!item || !isNodeLike(item)) break;
        node = item;
        offset = item.range?.[0] ?? offset;
      } else if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
        if (!pair) break;
        const key = pair.key;
        offset = isNodeLike(key) ? (key.range?.[0] ?? offset) : offset;
        node = isNodeLike(pair.value) ? pair.value : null;
      } else {
        break;
      }
    }
    if (offset === undefined) return { line: this.line, column: this.column };
    const pos = this.#lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  }
}

function isNodeLike(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && 'range' in v;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

/** A locator for values that have no source text (built in code, or from a Kubernetes watch). */
export class NoSource implements Locator {
  readonly file: string;
  constructor(file = '<memory>') {
    this.file = file;
  }
  positionOf(): { line: number; column: number } {
    return { line: 1, column: 1 };
  }
}
