import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { decodeAny, encodeAny, type HttpRbac, type NetworkRbac, type RbacPolicies, TypeUrl } from '@weft/xds';
import { needs } from '@weft/testing';
import { describe, expect, it } from 'vitest';
import { testConnection } from '../core/test-support.ts';
import type { DownstreamConnection, FilterSite, HttpFilterContext, TcpFilterContext } from '../core/filters.ts';
import type { RequestRecord } from '../core/types.ts';
import { RequestView } from '../http/view.ts';
import { downstreamRemoteIp, rbacHttpFilterFactory, rbacNetworkFilterFactory } from './rbac-filter.ts';
import { compileRbac, ipGroups, type RbacInput, uriTemplateRegex } from './rbac.ts';

type Policy = NonNullable<RbacPolicies['policies']>[string];
type Permission = NonNullable<Policy['permissions']>[number];
type Principal = NonNullable<Policy['principals']>[number];

function conn(o: Partial<DownstreamConnection> = {}): DownstreamConnection {
  return testConnection({ remoteAddress: '10.0.0.1', localAddress: '10.0.0.2', destinationAddress: '10.0.0.2', ...o });
}

function req(method: string, path: string, headers: Record<string, string> = {}, authority = 'reviews:9080'): RequestView {
  return new RequestView(method, authority, path, 'http', headers);
}

function input(connection: DownstreamConnection, request?: RequestView, remote?: string, metadata?: Record<string, unknown>): RbacInput {
  return { connection, request, remoteIp: () => remote ?? connection.remoteAddress, ...(metadata ? { metadata } : {}) };
}

/** An engine from RBAC rules as a proxy receives them (encoded, then decoded with the real protos). */
function engine(action: 'ALLOW' | 'DENY' | 'LOG', policies: Record<string, { permissions: Permission[]; principals: Principal[] }>) {
  const decoded = decodeAny(encodeAny(TypeUrl.HttpRbac, { rules: { action, policies } }), TypeUrl.HttpRbac);
  return compileRbac(decoded.rules!);
}

const anyP: Permission = { any: true };
const anyId: Principal = { any: true };
const oneRule = (permissions: Permission[], principals: Principal[] = [anyId]) => ({ rule: { permissions, principals } });

describe('RBAC engine: actions', () => {
  const getApi: Permission = {
    and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { url_path: { path: { prefix: '/api' } } }] },
  };

  it('ALLOW allows what a policy matches and denies the rest, reporting no policy', () => {
    const e = engine('ALLOW', { 'ns[default]-policy[p]-rule[0]': { permissions: [getApi], principals: [anyId] } });
    expect(e.evaluate(input(conn(), req('GET', '/api/books?x=1')))).toEqual({ allowed: true, policy: 'ns[default]-policy[p]-rule[0]' });
    expect(e.evaluate(input(conn(), req('POST', '/api/books')))).toEqual({ allowed: false, policy: undefined });
    expect(e.evaluate(input(conn(), req('GET', '/other')))).toEqual({ allowed: false, policy: undefined });
  });

  it('DENY denies what a policy matches, naming the first matching policy by name', () => {
    const e = engine('DENY', { b: { permissions: [anyP], principals: [anyId] }, a: { permissions: [getApi], principals: [anyId] } });
    expect(e.policyNames).toEqual(['a', 'b']);
    expect(e.evaluate(input(conn(), req('GET', '/api')))).toEqual({ allowed: false, policy: 'a' });
    expect(e.evaluate(input(conn(), req('PUT', '/api')))).toEqual({ allowed: false, policy: 'b' });
    expect(engine('DENY', {}).evaluate(input(conn(), req('GET', '/')))).toEqual({ allowed: true, policy: undefined });
  });

  it('LOG (AUDIT) never denies but reports the match', () => {
    const e = engine('LOG', { audit: { permissions: [getApi], principals: [anyId] } });
    expect(e.evaluate(input(conn(), req('GET', '/api')))).toEqual({ allowed: true, policy: 'audit' });
    expect(e.evaluate(input(conn(), req('POST', '/api')))).toEqual({ allowed: true, policy: undefined });
  });

  it('ALLOW with no policies denies everything; Istio\'s match-never policy matches nothing', () => {
    expect(engine('ALLOW', {}).evaluate(input(conn(), req('GET', '/'))).allowed).toBe(false);
    const never = engine('ALLOW', { n: { permissions: [{ not_rule: { any: true } }], principals: [{ not_id: { any: true } }] } });
    expect(never.evaluate(input(conn(), req('GET', '/'))).allowed).toBe(false);
  });
});

describe('RBAC engine: permissions', () => {
  const matches = (p: Permission, i: RbacInput) => engine('ALLOW', oneRule([p])).evaluate(i).allowed;

  it('url_path matches the path without its query; header matchers read :authority and :method', () => {
    expect(matches({ url_path: { path: { exact: '/a' } } }, input(conn(), req('GET', '/a?q=1')))).toBe(true);
    expect(matches({ url_path: { path: { suffix: '.css' } } }, input(conn(), req('GET', '/x.css#top')))).toBe(true);
    expect(matches({ url_path: { path: { safe_regex: { regex: '.+' } } } }, input(conn(), req('GET', '/')))).toBe(true);
    const host = { header: { name: ':authority', string_match: { suffix: '.example.com', ignore_case: true } } };
    expect(matches(host, input(conn(), req('GET', '/', {}, 'API.Example.COM')))).toBe(true);
    expect(matches(host, input(conn(), req('GET', '/', {}, 'api.example.com:8080')))).toBe(false);
  });

  it('header matchers: present, value, invert; multiple values are joined with a comma', () => {
    const present = { header: { name: 'x-token', present_match: true } };
    expect(matches(present, input(conn(), req('GET', '/', { 'x-token': 'a' })))).toBe(true);
    expect(matches(present, input(conn(), req('GET', '/')))).toBe(false);
    expect(matches({ header: { name: 'x-token', string_match: { exact: 'a,b' } } }, input(conn(), new RequestView('GET', 'h', '/', 'http', { 'x-token': ['a', 'b'] })))).toBe(true);
    expect(matches({ header: { name: 'x-token', string_match: { exact: 'a' }, invert_match: true } }, input(conn(), req('GET', '/', { 'x-token': 'b' })))).toBe(true);
  });

  it('destination ip, port and port range read where the connection was going; requested_server_name the SNI', () => {
    const c = conn({ destinationAddress: '127.10.2.5', destinationPort: 9080, sni: 'outbound_.9080_._.reviews.default.svc.cluster.local' });
    expect(matches({ destination_ip: { address_prefix: '127.10.2.0', prefix_len: { value: 24 } } }, input(c))).toBe(true);
    expect(matches({ destination_ip: { address_prefix: '127.10.3.0', prefix_len: { value: 24 } } }, input(c))).toBe(false);
    expect(matches({ destination_port: 9080 }, input(c))).toBe(true);
    expect(matches({ destination_port: 9081 }, input(c))).toBe(false);
    expect(matches({ destination_port_range: { start: 9000, end: 9081 } }, input(c))).toBe(true);
    expect(matches({ destination_port_range: { start: 9000, end: 9080 } }, input(c))).toBe(false);
    expect(matches({ requested_server_name: { prefix: 'outbound_.9080' } }, input(c))).toBe(true);
    expect(matches({ requested_server_name: { safe_regex: { regex: '.+' } } }, input(conn()))).toBe(false);
  });

  it('and_rules, or_rules and not_rule compose', () => {
    const p: Permission = { and_rules: { rules: [{ or_rules: { rules: [{ destination_port: 1 }, { destination_port: 9080 }] } }, { not_rule: { url_path: { path: { prefix: '/admin' } } } }] } };
    expect(matches(p, input(conn(), req('GET', '/x')))).toBe(true);
    expect(matches(p, input(conn(), req('GET', '/admin/x')))).toBe(false);
    expect(matches(p, input(conn({ destinationPort: 2 }), req('GET', '/x')))).toBe(false);
  });

  it('uri_template: {*} one segment, {**} the rest, as Istio sends path templates', () => {
    expect(uriTemplateRegex('/books/*/reviews').fullMatch('/books/12/reviews')).toBe(true);
    expect(uriTemplateRegex('/books/*/reviews').fullMatch('/books/1/2/reviews')).toBe(false);
    expect(uriTemplateRegex('/static/**').fullMatch('/static/css/a.css')).toBe(true);
    expect(uriTemplateRegex('/v1/{name}/x').fullMatch('/v1/abc/x')).toBe(true);
    expect(uriTemplateRegex('/a.b/*').fullMatch('/aXb/c')).toBe(false);
    const p: Permission = { uri_template: { name: 'uri-template', typed_config: encodeAny(TypeUrl.UriTemplateMatchConfig, { path_template: '/books/*/reviews' }) } };
    expect(matches(p, input(conn(), req('GET', '/books/7/reviews?x')))).toBe(true);
    expect(matches(p, input(conn(), req('GET', '/books/7')))).toBe(false);
  });

  it('metadata without a value (no JWT authentication) does not match; invert flips it', () => {
    const m = { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: 'iss/sub' } } };
    expect(matches({ metadata: m }, input(conn(), req('GET', '/')))).toBe(false);
    expect(matches({ metadata: { ...m, invert: true } }, input(conn(), req('GET', '/')))).toBe(true);
    expect(matches({ metadata: m }, input(conn(), req('GET', '/'), undefined, { istio_authn: { 'request.auth.principal': 'iss/sub' } }))).toBe(true);
    const claims = { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'admin' } } } } };
    expect(matches({ metadata: claims }, input(conn(), req('GET', '/'), undefined, { istio_authn: { 'request.auth.claims': { groups: ['dev', 'admin'] } } }))).toBe(true);
  });

  it('on a TCP connection header and path matchers see no request', () => {
    expect(matches({ url_path: { path: { prefix: '/' } } }, input(conn()))).toBe(false);
    expect(matches({ header: { name: ':method', present_match: true } }, input(conn()))).toBe(false);
    expect(matches({ header: { name: 'x', string_match: { exact: 'y' }, invert_match: true } }, input(conn()))).toBe(false);
  });

  it('refuses what it cannot evaluate, with the policy in the message', () => {
    expect(() => engine('ALLOW', { bad: { permissions: [{ destination_ip: { address_prefix: 'nope', prefix_len: { value: 8 } } }], principals: [anyId] } })).toThrow(/policy "bad": invalid address_prefix "nope"/);
    expect(() => engine('ALLOW', { bad: { permissions: [{ matcher: { name: 'x', typed_config: { type_url: 'type.googleapis.com/x.Y', value: Buffer.alloc(0) } } }], principals: [anyId] } })).toThrow(
      /unsupported RBAC permission matcher/,
    );
  });
});

describe('RBAC engine: principals', () => {
  const matches = (p: Principal, i: RbacInput) => engine('ALLOW', oneRule([anyP], [p])).evaluate(i).allowed;
  const spiffe = 'spiffe://cluster.local/ns/default/sa/productpage';
  const mtls = conn({ tls: true, peerPrincipal: spiffe });

  it('authenticated.principal_name matches the peer URI SAN with Istio\'s exact, prefix and suffix forms; plaintext never matches', () => {
    expect(matches({ authenticated: { principal_name: { exact: spiffe } } }, input(mtls))).toBe(true);
    expect(matches({ authenticated: { principal_name: { prefix: 'spiffe://cluster.local/ns/default/' } } }, input(mtls))).toBe(true);
    expect(matches({ authenticated: { principal_name: { safe_regex: { regex: 'spiffe://.*/sa/productpage' } } } }, input(mtls))).toBe(true);
    expect(matches({ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/other' } } }, input(mtls))).toBe(false);
    expect(matches({ authenticated: { principal_name: { safe_regex: { regex: '.+' } } } }, input(conn()))).toBe(false);
    expect(matches({ authenticated: {} }, input(mtls))).toBe(true);
    expect(matches({ authenticated: {} }, input(conn()))).toBe(false);
  });

  it('source namespaces are the principal regex .*/ns/<ns>/.*', () => {
    const ns = (n: string): Principal => ({ authenticated: { principal_name: { safe_regex: { regex: `.*/ns/${n}/.*` } } } });
    expect(matches(ns('default'), input(mtls))).toBe(true);
    expect(matches(ns('prod'), input(mtls))).toBe(false);
    expect(matches({ not_id: ns('default') }, input(mtls))).toBe(false);
  });

  it.skipIf(needs({ tools: ['openssl'] }) !== undefined)('falls back to DNS SANs and then the subject of the peer certificate, as Envoy does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-rbac-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
        '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/O=Weft/CN=client.example.com',
        '-addext', 'subjectAltName=URI:spiffe://td/ns/a/sa/b,DNS:client.example.com',
      ], { stdio: 'ignore' });
      const der = new X509Certificate(readFileSync(join(dir, 'c.pem'))).raw;
      const c = conn({ tls: true, peerPrincipal: 'spiffe://td/ns/a/sa/b', peerCertificate: der });
      expect(matches({ authenticated: { principal_name: { exact: 'client.example.com' } } }, input(c))).toBe(true);
      expect(matches({ authenticated: { principal_name: { exact: 'CN=client.example.com,O=Weft' } } }, input(c))).toBe(true);
      expect(matches({ authenticated: { principal_name: { exact: 'other.example.com' } } }, input(c))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('direct_remote_ip is the peer, remote_ip the client address the connection manager derived', () => {
    const block = (a: string, len: number) => ({ address_prefix: a, prefix_len: { value: len } });
    const c = conn({ remoteAddress: '127.10.2.7' });
    expect(matches({ direct_remote_ip: block('127.10.2.0', 24) }, input(c, req('GET', '/'), '203.0.113.9'))).toBe(true);
    expect(matches({ remote_ip: block('127.10.2.0', 24) }, input(c, req('GET', '/'), '203.0.113.9'))).toBe(false);
    expect(matches({ remote_ip: block('203.0.113.0', 24) }, input(c, req('GET', '/'), '203.0.113.9'))).toBe(true);
    expect(matches({ source_ip: block('127.10.2.7', 32) }, input(c))).toBe(true);
    expect(matches({ direct_remote_ip: block('::1', 128) }, input(conn({ remoteAddress: '::1' })))).toBe(true);
    expect(matches({ direct_remote_ip: block('0.0.0.0', 0) }, input(conn({ remoteAddress: '::1' })))).toBe(false);
  });

  it('parses addresses of both families for CIDR matching', () => {
    expect(ipGroups('10.1.2.3')).toEqual([0x0a01, 0x0203]);
    expect(ipGroups('2001:db8::1')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(ipGroups('::ffff:10.1.2.3')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203]);
    expect(ipGroups('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(ipGroups('fe80::1%eth0')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipGroups('nope')).toBeUndefined();
    const block = (a: string, len: number): Principal => ({ direct_remote_ip: { address_prefix: a, prefix_len: { value: len } } });
    expect(matches(block('10.1.0.0', 17), input(conn({ remoteAddress: '10.1.127.9' })))).toBe(true);
    expect(matches(block('10.1.0.0', 17), input(conn({ remoteAddress: '10.1.128.9' })))).toBe(false);
    expect(matches(block('2001:db8::', 32), input(conn({ remoteAddress: '2001:db8:ffff::5' })))).toBe(true);
    expect(matches(block('2001:db8::', 33), input(conn({ remoteAddress: '2001:db8:8000::5' })))).toBe(false);
  });

  it('request headers as principals (Istio\'s request.headers[...] conditions)', () => {
    const h: Principal = { header: { name: 'X-Canary', string_match: { exact: 'yes' } } };
    expect(matches(h, input(conn(), req('GET', '/', { 'x-canary': 'yes' })))).toBe(true);
    expect(matches(h, input(conn(), req('GET', '/', { 'x-canary': 'no' })))).toBe(false);
  });
});

describe('downstreamRemoteIp (remote_ip)', () => {
  const hcm = (useRemote: boolean, hops = 0) => ({ use_remote_address: { value: useRemote }, xff_num_trusted_hops: hops, skip_xff_append: false }) as never;
  it('sidecar inbound (use_remote_address false): the rightmost X-Forwarded-For entry, else the peer', () => {
    expect(downstreamRemoteIp(hcm(false), '10.0.0.1', '203.0.113.1, 198.51.100.2')).toBe('198.51.100.2');
    expect(downstreamRemoteIp(hcm(false, 1), '10.0.0.1', '203.0.113.1, 198.51.100.2')).toBe('203.0.113.1');
    expect(downstreamRemoteIp(hcm(false), '10.0.0.1', undefined)).toBe('10.0.0.1');
    expect(downstreamRemoteIp(hcm(false, 5), '10.0.0.1', '203.0.113.1')).toBe('10.0.0.1');
  });
  it('gateway (use_remote_address true): the peer, or with N trusted hops the Nth entry from the right as the client sent it', () => {
    expect(downstreamRemoteIp(hcm(true), '10.0.0.1', '203.0.113.1,10.0.0.1')).toBe('10.0.0.1');
    // The router appended the peer (10.0.0.1) already.
    expect(downstreamRemoteIp(hcm(true, 1), '10.0.0.1', '203.0.113.1, 198.51.100.2,10.0.0.1')).toBe('198.51.100.2');
    expect(downstreamRemoteIp(hcm(true, 2), '10.0.0.1', '203.0.113.1, 198.51.100.2,10.0.0.1')).toBe('203.0.113.1');
  });
});

function record(): RequestRecord {
  return { direction: 'inbound', listener: 'virtualInbound', protocol: 'HTTP/1.1', startTime: 0, durationMs: 0, responseCode: 0, responseFlags: new Set(), bytesReceived: 0, bytesSent: 0, attempts: 0 };
}

const site: FilterSite = { where: 'virtualInbound#0.0.0.0_9080', listener: 'virtualInbound', direction: 'inbound' };

describe('RBAC filters', () => {
  it('the HTTP filter answers 403 "RBAC: access denied" with Envoy\'s response code details', () => {
    const config: HttpRbac = { rules: { action: 'DENY', policies: { 'ns[default]-policy[deny-admin]-rule[0]': { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [anyId] } } } };
    const f = rbacHttpFilterFactory(encodeAny(TypeUrl.HttpRbac, config) as never, site)!;
    const ctx = (path: string) =>
      ({ connection: conn(), record: record(), method: 'GET', authority: 'reviews', path, scheme: 'http', requestHeaders: {}, routeName: undefined, upstreamCluster: undefined }) as HttpFilterContext;
    const c = ctx('/admin/users');
    expect(f.begin(c)?.onRequest?.(c)).toEqual({ status: 403, body: 'RBAC: access denied', details: 'rbac_access_denied_matched_policy[ns[default]-policy[deny-admin]-rule[0]]' });
    const ok = ctx('/books');
    expect(f.begin(ok)?.onRequest?.(ok)).toBeUndefined();
    const allow: HttpRbac = { rules: { action: 'ALLOW', policies: {} } };
    const a = rbacHttpFilterFactory(encodeAny(TypeUrl.HttpRbac, allow) as never, site)!;
    expect(a.begin(ok)?.onRequest?.(ok)).toMatchObject({ status: 403, details: 'rbac_access_denied_matched_policy[none]' });
  });

  it('a filter with only dry-run shadow rules enforces nothing', () => {
    const shadow: HttpRbac = { shadow_rules: { action: 'DENY', policies: { p: { permissions: [anyP], principals: [anyId] } } }, shadow_rules_stat_prefix: 'istio_dry_run_deny_' };
    expect(rbacHttpFilterFactory(encodeAny(TypeUrl.HttpRbac, shadow) as never, site)).toBeUndefined();
  });

  it('the network filter refuses the connection and records why', () => {
    const config: NetworkRbac = { stat_prefix: 'tcp.', rules: { action: 'ALLOW', policies: { p: { permissions: [{ destination_port: 3306 }], principals: [anyId] } } } };
    const f = rbacNetworkFilterFactory(encodeAny(TypeUrl.NetworkRbac, config) as never, site)!;
    const denied: TcpFilterContext = { connection: conn({ destinationPort: 7000 }), record: { ...record(), protocol: 'TCP' } };
    expect(f.begin(denied)?.onConnect?.(denied)).toBe(false);
    expect(denied.record.connectionTerminationDetails).toBe('rbac_access_denied_matched_policy[none]');
    const allowed: TcpFilterContext = { connection: conn({ destinationPort: 3306 }), record: { ...record(), protocol: 'TCP' } };
    expect(f.begin(allowed)?.onConnect?.(allowed)).toBe(true);
    expect(allowed.record.connectionTerminationDetails).toBeUndefined();
  });
});
