// What one `weftctl apply` (or delete) takes at most. The local mesh handles 5,000 VirtualServices
// in one apply with weftd answering throughout (bench/pilot/bulk-apply.ts); the cost of an apply
// grows with its size (weftd reads and checks every object, every proxy is sent and decodes a
// route configuration with a virtual host per VirtualService host), so a much bigger input is
// refused before anything is read into memory or written, with the limit named.
import { stat } from 'node:fs/promises';
import { expandPaths } from '@weft/model';

export const applyLimits = {
  /** Objects in one apply: twice the 5,000 the mesh is measured with. */
  objects: 10_000,
  /** Bytes of input in one apply, all files together (each file is also held to the loader's 4 MiB). */
  bytes: 8 * 1024 * 1024,
} as const;

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** Why the input is too big to read (from the files' sizes alone), or undefined. */
export async function inputTooBig(paths: readonly string[]): Promise<string | undefined> {
  const { files } = await expandPaths(paths);
  let total = 0;
  for (const f of files) total += (await stat(f).catch(() => undefined))?.size ?? 0;
  if (total <= applyLimits.bytes) return undefined;
  return `the input is ${mib(total)} in ${files.length} file${files.length === 1 ? '' : 's'}; one apply takes at most ${mib(applyLimits.bytes)} (split it into several applies)`;
}

/** Why `count` objects are too many for one apply, or undefined. */
export function tooManyObjects(count: number): string | undefined {
  if (count <= applyLimits.objects) return undefined;
  return `${count} objects in the input; one apply takes at most ${applyLimits.objects} (split it into several applies)`;
}
