import { describe, expect, it } from 'vitest';
import { labelSelectorMatches } from './label-selector.ts';

describe('labelSelectorMatches', () => {
  const labels = { team: 'a', env: 'prod' };
  it('needs every matchLabels pair and every expression', () => {
    expect(labelSelectorMatches({}, labels)).toBe(true);
    expect(labelSelectorMatches({ matchLabels: { team: 'a' } }, labels)).toBe(true);
    expect(labelSelectorMatches({ matchLabels: { team: 'a', env: 'dev' } }, labels)).toBe(false);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'staging'] }] }, labels)).toBe(true);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels)).toBe(false);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'missing', operator: 'NotIn', values: ['x'] }] }, labels)).toBe(true);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'team', operator: 'Exists' }] }, labels)).toBe(true);
    expect(labelSelectorMatches({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, labels)).toBe(false);
    expect(labelSelectorMatches({ matchLabels: { team: 'a' }, matchExpressions: [{ key: 'missing', operator: 'In', values: ['x'] }] }, labels)).toBe(false);
  });
});
