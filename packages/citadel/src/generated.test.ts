import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listFiles } from '@weft/xds';
import { describe, expect, it } from 'vitest';
import { citadelTypeFiles } from './codegen.ts';

const generatedDir = join(dirname(fileURLToPath(import.meta.url)), 'generated');

describe('src/generated', () => {
  it('matches what scripts/generate.ts writes (run `npm run generate -w @weft/citadel` and commit the result)', () => {
    const expected = citadelTypeFiles();
    const onDisk = listFiles(generatedDir);
    expect(onDisk, 'the set of generated files differs').toEqual(Object.keys(expected));
    const stale = onDisk.filter((rel) => readFileSync(join(generatedDir, rel), 'utf8') !== expected[rel]);
    expect(stale, 'these generated files are stale').toEqual([]);
  }, 30_000);
});
