import { describe, it } from 'vitest';
import { needs } from '../../host.ts';

const skip = needs({ tools: ['weft-no-such-tool', 'prometheus'] });
describe.skipIf(skip !== undefined)('a suite that needs a tool', () => {
  it('one', () => {});
  it('two', () => {});
});
it('runs anyway', () => {});
