import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { FieldPath, Locator } from '../problem.ts';

/**
 * Where a document came from, and how to find any field in it.
 * Loading parses with a fast parser that keeps no positions; the first position asked of a
 * document parses its text again with a position-keeping parser and walks the syntax tree.
 * Valid input (the common case) never pays for positions.
 */
export class SourceLocation implements Locator {
  readonly file: string;
  /** 0-based index of the document in its file. */
  readonly index: number;
  /** 1-based line and column of the document's first content. */
  readonly line: number;
  readonly column: number;
  readonly #text: string;
  /** Lines of the file before this document's text. */
  readonly #lineOffset: number;
  #tree: { root: Node | null; lines: LineCounter } | undefined;

  constructor(file: string, index: number, text: string, lineOffset: number) {
    this.file = file;
    this.index = index;
    this.#text = text;
    this.#lineOffset = lineOffset;
    const start = firstContent(text);
    this.line = start.line + lineOffset;
    this.column = start.column;
  }

  positionOf(path: FieldPath): { line: number; column: number } {
    if (!this.#tree) {
      const lines = new LineCounter();
      const doc = parseDocument(this.#text, { lineCounter: lines, uniqueKeys: false });
      this.#tree = { root: (doc.contents as Node | null) ?? null, lines };
    }
    const { root, lines } = this.#tree;
    let node: Node | null = root;
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
    const pos = lines.linePos(offset);
    return { line: pos.line + this.#lineOffset, column: pos.col };
  }
}

/** The first line that is not blank or a comment (1-based line and column within `text`). */
function firstContent(text: string): { line: number; column: number } {
  let line = 1;
  let i = 0;
  while (i < text.length) {
    let end = text.indexOf('\n', i);
    if (end < 0) end = text.length;
    const m = /^[ \t]*/.exec(text.slice(i, end))!;
    const rest = text.slice(i + m[0].length, end);
    if (rest !== '' && !rest.startsWith('#') && rest !== '\r') return { line, column: m[0].length + 1 };
    line++;
    i = end + 1;
  }
  return { line: 1, column: 1 };
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
