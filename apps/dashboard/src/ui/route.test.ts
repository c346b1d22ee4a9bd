import { describe, expect, it } from 'vitest';
import { href, parseHash } from './route.ts';

describe('hash routes', () => {
  it('reads the view, its argument and its query', () => {
    expect(parseHash('')).toMatchObject({ view: 'graph' });
    expect(parseHash('#/nonsense')).toMatchObject({ view: 'graph' });
    expect(parseHash('#/services/reviews.default.svc.cluster.local')).toMatchObject({ view: 'services', arg: 'reviews.default.svc.cluster.local' });
    const r = parseHash('#/graph?window=30s');
    expect(r.view).toBe('graph');
    expect(r.query.get('window')).toBe('30s');
    expect(parseHash(href('traces', 'ab/c')).arg).toBe('ab/c');
  });
});
