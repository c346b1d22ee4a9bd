// The regexes pilot writes into RBAC (namespaces, service accounts, `*`-prefixed principals) are
// matched by proxies with RE2 as full matches: they must compile under RE2 and match the SPIFFE IDs
// Istio's would.
import { compileRe2, re2Problem } from '@weft/model';
import { decodeAny, TypeUrl } from '@weft/xds';
import { expect, it } from 'vitest';
import { bookinfoPlatform, generate, must, pushFrom, reviewsV1 } from './test-support.ts';

/** Every `safe_regex` in a decoded message, typed configs (Any) included. */
function regexes(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) regexes(x, out);
  else if (v && typeof v === 'object' && !Buffer.isBuffer(v) && !(v instanceof Uint8Array)) {
    const o = v as Record<string, unknown>;
    if (typeof o.type_url === 'string' && (Buffer.isBuffer(o.value) || o.value instanceof Uint8Array)) return regexes(decodeAny(o as never), out);
    const sr = o.safe_regex as { regex?: unknown } | undefined;
    if (sr && typeof sr.regex === 'string') out.push(sr.regex);
    for (const x of Object.values(o)) regexes(x, out);
  }
  return out;
}

it('AuthorizationPolicy regexes compile under RE2 and full-match SPIFFE IDs as Istio intends', () => {
  const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: re2, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from:
    - source: {namespaces: ["team-*"], principals: ["*/sa/sleep"]}
  - from:
    - source: {serviceAccounts: [productpage, other/ratings]}
`;
  const listeners = generate(pushFrom([bookinfoPlatform(), policy]), reviewsV1(), TypeUrl.Listener);
  const found = [...new Set(regexes(must(listeners.get('virtualInbound'))))];
  expect(found).toEqual(expect.arrayContaining(['.*/ns/team-.*/.*', 'spiffe://.*/sa/sleep', 'spiffe://.+/ns/default/(.+/|)sa/productpage(/.+)?']));
  for (const r of found) expect(re2Problem(r), r).toBeUndefined();
  const match = (r: string, id: string) => compileRe2(r).fullMatch(id);
  expect(match('.*/ns/team-.*/.*', 'spiffe://cluster.local/ns/team-a/sa/x')).toBe(true);
  expect(match('.*/ns/team-.*/.*', 'spiffe://cluster.local/ns/default/sa/team-a')).toBe(false);
  expect(match('spiffe://.+/ns/default/(.+/|)sa/productpage(/.+)?', 'spiffe://cluster.local/ns/default/sa/productpage')).toBe(true);
  // A full match: a longer service account name is another identity.
  expect(match('spiffe://.+/ns/default/(.+/|)sa/productpage(/.+)?', 'spiffe://cluster.local/ns/default/sa/productpage-admin')).toBe(false);
});
