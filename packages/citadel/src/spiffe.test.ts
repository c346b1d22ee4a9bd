import { describe, expect, it } from 'vitest';
import { createLogger } from '@weft/model';
import { parseSpiffeId, parseSubjectAltNames } from '@weft/mesh';
import { checkedSpiffeId } from './spiffe.ts';
import { matchSpiffeId } from './tls.ts';

describe('SPIFFE IDs', () => {
  it('formats and parses Istio workload identities', () => {
    const id = checkedSpiffeId({ trustDomain: 'cluster.local', namespace: 'bookinfo', serviceAccount: 'bookinfo-reviews' });
    expect(id).toBe('spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews');
    expect(parseSpiffeId(id)).toEqual({ trustDomain: 'cluster.local', namespace: 'bookinfo', serviceAccount: 'bookinfo-reviews' });
    expect(parseSpiffeId('spiffe://cluster.local/ns/a/sa/b/extra')).toBeUndefined();
    expect(parseSpiffeId('spiffe://cluster.local/ns/A/sa/b')).toBeUndefined();
    expect(parseSpiffeId('https://cluster.local/ns/a/sa/b')).toBeUndefined();
    expect(() => checkedSpiffeId({ trustDomain: 'cluster.local', namespace: 'Bad_NS', serviceAccount: 'x' })).toThrow(/invalid namespace/);
  });

  it('reads Node’s subjectAltName strings, including quoted values', () => {
    expect(parseSubjectAltNames('URI:spiffe://cluster.local/ns/a/sa/b, DNS:localhost, IP Address:127.0.0.1')).toEqual([
      { type: 'URI', value: 'spiffe://cluster.local/ns/a/sa/b' },
      { type: 'DNS', value: 'localhost' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
    expect(parseSubjectAltNames('DNS:"a, b", URI:x')).toEqual([
      { type: 'DNS', value: 'a, b' },
      { type: 'URI', value: 'x' },
    ]);
    expect(parseSubjectAltNames(undefined)).toEqual([]);
  });

  it('matches peers by ID, list, trust domain or predicate', () => {
    const id = 'spiffe://cluster.local/ns/default/sa/reviews';
    expect(matchSpiffeId(id, id).ok).toBe(true);
    expect(matchSpiffeId(id, ['x', id]).ok).toBe(true);
    expect(matchSpiffeId(id, { trustDomain: 'cluster.local' }).ok).toBe(true);
    expect(matchSpiffeId(id, (_, who) => who.namespace === 'prod').ok).toBe(false);
    expect(matchSpiffeId('spiffe://cluster.local/x', { trustDomain: 'cluster.local' })).toEqual({ ok: false, reason: '"spiffe://cluster.local/x" is not a workload SPIFFE ID' });
  });
});

describe('structured logs', () => {
  it('writes one JSON object per line with level, msg, scope and fields; filters by level', () => {
    const lines: string[] = [];
    const log = createLogger({ scope: 'citadel', level: 'info', sink: (l) => lines.push(l) }).with({ trustDomain: 'cluster.local' });
    log.debug('hidden');
    log.warn('CSR refused', { reason: 'x', error: new Error('boom') });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'warn', scope: 'citadel', msg: 'CSR refused', trustDomain: 'cluster.local', reason: 'x', error: { name: 'Error', message: 'boom' } });
    expect(typeof rec.time).toBe('string');
    expect(lines[0]).not.toContain('\n');
  });
});
