import { describe, expect, it } from 'vitest';
import { requestOf, whyParams, whyQuery } from './why-view.ts';

describe('why request', () => {
  it('sends headers as name:value, lower-cased names, and reads them back from a link', () => {
    const r = { source: 'default/productpage-v1', authority: ' reviews:9080 ', path: '/reviews/0', method: 'GET', headers: 'End-User: jason\n\nx-b: 1:2' };
    expect(whyQuery(r)).toBe('/api/why?source=default%2Fproductpage-v1&authority=reviews%3A9080&path=%2Freviews%2F0&method=GET&header=end-user%3Ajason&header=x-b%3A1%3A2');
    const back = requestOf(whyParams(r));
    expect(back).toEqual({ source: 'default/productpage-v1', authority: 'reviews:9080', path: '/reviews/0', method: 'GET', headers: 'end-user: jason\nx-b: 1:2' });
  });

  it('refuses a header line without a name', () => {
    expect(() => whyQuery({ source: 's', authority: 'a', path: '/', method: 'GET', headers: 'jason' })).toThrow(/has no name/);
  });
});
