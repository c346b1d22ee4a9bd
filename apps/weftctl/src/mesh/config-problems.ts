// Config weftd rejected: files in the config directory it did not accept (its
// /debug/config_problems), shown by `weftctl proxy-status` and `weftctl status` until the file is
// fixed or removed. The objects of a rejected file keep their last accepted version.
import type { MeshState } from '../up/state.ts';
import { getJson, weftdUrl } from './client.ts';

export interface ConfigProblem {
  severity: 'error' | 'warning';
  file?: string;
  line?: number;
  column?: number;
  message: string;
  /** As galley prints it: `file:line:col: error: Kind ns/name: path: message`. */
  text: string;
}

/** Errors by file, from weftd (warnings left out: they do not stop a file). */
export async function rejectedConfig(s: MeshState): Promise<Map<string, ConfigProblem[]>> {
  const all = await getJson<Record<string, ConfigProblem[]>>(weftdUrl(s, '/debug/config_problems'));
  const out = new Map<string, ConfigProblem[]>();
  for (const [file, problems] of Object.entries(all).sort(([a], [b]) => a.localeCompare(b))) {
    const errors = problems.filter((p) => p.severity === 'error');
    if (errors.length > 0) out.set(file, errors);
  }
  return out;
}

/** `config: 1 file rejected: <file>:<line>:<col>: error: ...`, or a heading and one line per problem; empty when none. */
export function rejectedConfigText(rejected: ReadonlyMap<string, readonly ConfigProblem[]>): string {
  if (rejected.size === 0) return '';
  const lines = [...rejected.values()].flat().map((p) => p.text);
  const files = `${rejected.size} file${rejected.size === 1 ? '' : 's'} rejected`;
  if (lines.length === 1) return `config: ${files}: ${lines[0]}\n`;
  return `config: ${files} (the last accepted version of their objects stays in force):\n${lines.map((l) => `  ${l}\n`).join('')}`;
}
