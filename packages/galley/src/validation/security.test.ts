import { describe, expect, it } from 'vitest';
import { lineOf, validateYaml as validate } from './test-support.ts';
import type { ResourceReport } from './validate.ts';


const header = (kind: string) => `apiVersion: security.istio.io/v1
kind: ${kind}
metadata:
  name: policy
  namespace: shop
spec:
`;
const ap = (spec: string) => header('AuthorizationPolicy') + spec;
const pa = (spec: string) => header('PeerAuthentication') + spec;
const ra = (spec: string) => header('RequestAuthentication') + spec;

interface Case {
  title: string;
  yaml: string;
  path: string;
  /** Text of the line the problem must be reported on. */
  at: string;
  /** The exact message, or `{ contains }` for a precise substring. */
  message: string | { contains: string };
}

function expectProblem(report: ResourceReport, c: Omit<Case, 'title'>, severity: 'error' | 'warning' = 'error'): void {
  const list = severity === 'error' ? report.errors : report.warnings;
  const atPath = list.filter((p) => p.path === c.path);
  expect(atPath.map((p) => p.message), `problems at ${c.path}: ${JSON.stringify(list)}`).not.toEqual([]);
  const p = typeof c.message === 'string' ? atPath.find((x) => x.message === c.message) : atPath.find((x) => x.message.includes((c.message as { contains: string }).contains));
  expect(p, `no ${severity} at ${c.path} with message ${JSON.stringify(c.message)}; got ${JSON.stringify(atPath.map((x) => x.message))}`).toBeDefined();
  expect(p!.line).toBe(lineOf(c.yaml, c.at));
  expect(p!.file).toBe('file.yaml');
  if (severity === 'error') expect(report.valid).toBe(false);
}

const invalidAuthorizationPolicies: Case[] = [
  {
    title: 'DENY without rules',
    yaml: ap('  action: DENY\n'),
    path: 'spec.action',
    at: 'action: DENY',
    message: 'DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request',
  },
  {
    title: 'CUSTOM without rules',
    yaml: ap('  action: CUSTOM\n  provider:\n    name: ext-authz\n'),
    path: 'spec.action',
    at: 'action: CUSTOM',
    message: { contains: 'CUSTOM action without `rules` is meaningless' },
  },
  {
    title: 'CUSTOM without a provider',
    yaml: ap('  action: CUSTOM\n  rules:\n  - {}\n'),
    path: 'spec.action',
    at: 'action: CUSTOM',
    message: 'CUSTOM action requires `provider.name`: the name of an extension provider in the mesh config',
  },
  {
    title: 'CUSTOM with an empty provider name',
    yaml: ap('  action: CUSTOM\n  provider:\n    name: ""\n  rules:\n  - {}\n'),
    path: 'spec.provider.name',
    at: 'name: ""',
    message: '`provider.name` must not be empty',
  },
  {
    title: 'provider with ALLOW',
    yaml: ap('  action: ALLOW\n  provider:\n    name: ext-authz\n  rules:\n  - {}\n'),
    path: 'spec.provider',
    at: 'provider:',
    message: '`provider` must not be with non CUSTOM action, found ALLOW',
  },
  {
    title: 'CUSTOM with principals',
    yaml: ap('  action: CUSTOM\n  provider:\n    name: ext-authz\n  rules:\n  - from:\n    - source:\n        principals: ["cluster.local/ns/a/sa/b"]\n'),
    path: 'spec.rules[0].from[0].source.principals',
    at: 'principals:',
    message: 'from.source.principals is currently not supported with CUSTOM action',
  },
  {
    title: 'CUSTOM with a request.auth condition',
    yaml: ap('  action: CUSTOM\n  provider:\n    name: ext-authz\n  rules:\n  - when:\n    - key: request.auth.claims[iss]\n      values: ["x"]\n'),
    path: 'spec.rules[0].when[0].key',
    at: 'key: request.auth.claims[iss]',
    message: 'request.auth.claims[iss] is currently not supported with CUSTOM action',
  },
  {
    title: 'selector and targetRef together',
    yaml: ap('  selector:\n    matchLabels:\n      app: web\n  targetRef:\n    kind: Service\n    group: ""\n    name: web\n'),
    path: 'spec.targetRef',
    at: 'targetRef:',
    message: 'only one of targetRefs or selector can be set (found selector and targetRef)',
  },
  {
    title: 'targetRef to an unsupported kind',
    yaml: ap('  targetRef:\n    kind: Deployment\n    group: apps\n    name: web\n'),
    path: 'spec.targetRef.kind',
    at: 'kind: Deployment',
    message: {
      contains: 'targetRef must be to one of Service, networking.istio.io/ServiceEntry, gateway.networking.k8s.io/Gateway, gateway.networking.k8s.io/GatewayClass but was apps/Deployment',
    },
  },
  {
    title: 'targetRef to a Gateway in the wrong group',
    yaml: ap('  targetRefs:\n  - kind: Gateway\n    group: networking.istio.io\n    name: ingress\n'),
    path: 'spec.targetRefs[0].group',
    at: 'group: networking.istio.io',
    message: { contains: 'but was networking.istio.io/Gateway (a Gateway needs group: gateway.networking.k8s.io)' },
  },
  {
    title: 'targetRef across namespaces',
    yaml: ap('  targetRef:\n    kind: Gateway\n    group: gateway.networking.k8s.io\n    name: ingress\n    namespace: other\n'),
    path: 'spec.targetRef.namespace',
    at: 'namespace: other',
    message: 'targetRef namespace must not be set: cross namespace referencing is not supported',
  },
  {
    title: 'wildcard in a selector label',
    yaml: ap('  selector:\n    matchLabels:\n      app: "web-*"\n'),
    path: 'spec.selector.matchLabels.app',
    at: 'app: "web-*"',
    message: 'wildcard is not supported in selector: "app=web-*" (labels are matched exactly)',
  },
  {
    title: 'empty from',
    yaml: ap('  rules:\n  - from: []\n'),
    path: 'spec.rules[0].from',
    at: 'from: []',
    message: '`from` must not be empty, found at rule 0',
  },
  {
    title: 'from without source',
    yaml: ap('  rules:\n  - to:\n    - operation:\n        methods: ["GET"]\n  - from:\n    - {}\n'),
    path: 'spec.rules[1].from[0]',
    at: '- {}',
    message: '`from.source` must not be nil, found at rule 1',
  },
  {
    title: 'empty source',
    yaml: ap('  rules:\n  - from:\n    - source: {}\n'),
    path: 'spec.rules[0].from[0].source',
    at: 'source: {}',
    message: '`from.source` must not be empty, found at rule 0',
  },
  {
    title: 'empty to',
    yaml: ap('  rules:\n  - to: []\n'),
    path: 'spec.rules[0].to',
    at: 'to: []',
    message: '`to` must not be empty, found at rule 0',
  },
  {
    title: 'empty operation',
    yaml: ap('  rules:\n  - to:\n    - operation: {}\n'),
    path: 'spec.rules[0].to[0].operation',
    at: 'operation: {}',
    message: '`to.operation` must not be empty, found at rule 0',
  },
  {
    title: 'empty principal',
    yaml: ap('  rules:\n  - from:\n    - source:\n        principals:\n        - cluster.local/ns/a/sa/b\n        - ""\n'),
    path: 'spec.rules[0].from[0].source.principals[1]',
    at: '- ""',
    message: 'empty value not allowed, found in principals',
  },
  {
    title: 'serviceAccounts with namespaces',
    yaml: ap('  rules:\n  - from:\n    - source:\n        namespaces: ["shop"]\n        serviceAccounts: ["shop/web"]\n'),
    path: 'spec.rules[0].from[0].source.serviceAccounts',
    at: 'serviceAccounts:',
    message: 'cannot set serviceAccounts with namespaces or principals',
  },
  {
    title: 'service account with too many slashes',
    yaml: ap('  rules:\n  - from:\n    - source:\n        serviceAccounts: ["a/b/c"]\n'),
    path: 'spec.rules[0].from[0].source.serviceAccounts[0]',
    at: 'serviceAccounts:',
    message: `"a/b/c": expected format 'serviceAccount' or 'namespace/serviceAccount'`,
  },
  {
    title: 'bad IP block',
    yaml: ap('  rules:\n  - from:\n    - source:\n        ipBlocks:\n        - 10.0.0.0/8\n        - 10.1.2\n'),
    path: 'spec.rules[0].from[0].source.ipBlocks[1]',
    at: '- 10.1.2',
    message: 'bad IP address (10.1.2)',
  },
  {
    title: 'bad CIDR in remoteIpBlocks',
    yaml: ap('  rules:\n  - from:\n    - source:\n        remoteIpBlocks: ["192.168.0.0/33"]\n'),
    path: 'spec.rules[0].from[0].source.remoteIpBlocks[0]',
    at: 'remoteIpBlocks:',
    message: 'bad CIDR range (192.168.0.0/33)',
  },
  {
    title: 'port out of range',
    yaml: ap('  rules:\n  - to:\n    - operation:\n        ports: ["8080", "70000"]\n'),
    path: 'spec.rules[0].to[0].operation.ports[1]',
    at: 'ports:',
    message: 'bad port (70000): must be a number between 0 and 65535',
  },
  {
    title: 'named port',
    yaml: ap('  rules:\n  - to:\n    - operation:\n        notPorts: ["http"]\n'),
    path: 'spec.rules[0].to[0].operation.notPorts[0]',
    at: 'notPorts:',
    message: 'bad port (http): must be a number between 0 and 65535',
  },
  {
    title: 'wildcard inside a path template',
    yaml: ap('  rules:\n  - to:\n    - operation:\n        paths: ["/api/{*}/items*"]\n'),
    path: 'spec.rules[0].to[0].operation.paths[0]',
    at: 'paths:',
    message: 'invalid path template "/api/{*}/items*": segment "items*" is not a valid literal (a "*" wildcard cannot be combined with {*} or {**})',
  },
  {
    title: '{**} not last',
    yaml: ap('  rules:\n  - to:\n    - operation:\n        notPaths: ["/{**}/x/{*}"]\n'),
    path: 'spec.rules[0].to[0].operation.notPaths[0]',
    at: 'notPaths:',
    message: 'invalid path template "/{**}/x/{*}": {**} must be the last operator',
  },
  {
    title: 'named path variable',
    yaml: ap('  rules:\n  - to:\n    - operation:\n        paths: ["/users/{id}"]\n'),
    path: 'spec.rules[0].to[0].operation.paths[0]',
    at: 'paths:',
    message: { contains: "'{' and '}' are only allowed in the path templates {*} and {**}" },
  },
  {
    title: 'condition key empty',
    yaml: ap('  rules:\n  - when:\n    - key: ""\n      values: ["a"]\n'),
    path: 'spec.rules[0].when[0].key',
    at: 'key: ""',
    message: '`key` must not be empty',
  },
  {
    title: 'condition without values',
    yaml: ap('  rules:\n  - when:\n    - key: source.principal\n'),
    path: 'spec.rules[0].when[0]',
    at: 'key: source.principal',
    message: 'at least one of `values` or `notValues` must be set for key source.principal',
  },
  {
    title: 'unknown condition key',
    yaml: ap('  rules:\n  - when:\n    - key: request.method\n      values: ["GET"]\n'),
    path: 'spec.rules[0].when[0].key',
    at: 'key: request.method',
    message: 'unknown attribute: request.method',
  },
  {
    title: 'header condition without a name',
    yaml: ap('  rules:\n  - when:\n    - key: request.headers[]\n      values: ["x"]\n'),
    path: 'spec.rules[0].when[0].key',
    at: 'key: request.headers[]',
    message: 'bad key (request.headers[]): should have format a[b]',
  },
  {
    title: 'bad IP in a source.ip condition',
    yaml: ap('  rules:\n  - when:\n    - key: source.ip\n      notValues: ["1.2.3.4", "a.b.c.d"]\n'),
    path: 'spec.rules[0].when[0].notValues[1]',
    at: 'notValues:',
    message: 'invalid `notValue` for `key` source.ip: bad IP address (a.b.c.d)',
  },
  {
    title: 'bad destination.port condition',
    yaml: ap('  rules:\n  - when:\n    - key: destination.port\n      values: ["-1"]\n'),
    path: 'spec.rules[0].when[0].values[0]',
    at: 'values: ["-1"]',
    message: 'invalid `value` for `key` destination.port: bad port (-1): must be a number between 0 and 65535',
  },
  {
    title: 'destination.labels condition',
    yaml: ap('  rules:\n  - when:\n    - key: destination.labels[app]\n      values: ["web"]\n'),
    path: 'spec.rules[0].when[0].key',
    at: 'key: destination.labels[app]',
    message: 'attribute destination.labels[app] is replaced by the workload selector',
  },
];

const invalidPeerAuthentications: Case[] = [
  {
    title: 'port level mTLS without a selector',
    yaml: pa('  mtls:\n    mode: STRICT\n  portLevelMtls:\n    8080:\n      mode: DISABLE\n'),
    path: 'spec.portLevelMtls',
    at: 'portLevelMtls:',
    message: 'portLevelMtls requires a selector with labels: a mesh or namespace wide PeerAuthentication cannot have port level mTLS',
  },
  {
    title: 'empty port level mTLS',
    yaml: pa('  selector:\n    matchLabels:\n      app: web\n  portLevelMtls: {}\n'),
    path: 'spec.portLevelMtls',
    at: 'portLevelMtls: {}',
    message: 'port level mTLS, if defined, must have at least one element',
  },
  {
    title: 'port 0',
    yaml: pa('  selector:\n    matchLabels:\n      app: web\n  portLevelMtls:\n    0:\n      mode: STRICT\n'),
    path: 'spec.portLevelMtls["0"]',
    at: '    0:',
    message: 'port 0 must be between 1-65535',
  },
  {
    title: 'port above 65535',
    yaml: pa('  selector:\n    matchLabels:\n      app: web\n  portLevelMtls:\n    "70000":\n      mode: STRICT\n'),
    path: 'spec.portLevelMtls["70000"]',
    at: '"70000":',
    message: 'port 70000 must be between 1-65535',
  },
  {
    title: 'named port',
    yaml: pa('  selector:\n    matchLabels:\n      app: web\n  portLevelMtls:\n    http:\n      mode: STRICT\n'),
    path: 'spec.portLevelMtls.http',
    at: 'http:',
    message: 'port "http" is not a port number (must be between 1-65535)',
  },
  {
    title: 'empty selector key',
    yaml: pa('  selector:\n    matchLabels:\n      "": web\n'),
    path: 'spec.selector.matchLabels[""]',
    at: '"": web',
    message: 'empty key is not supported in selector: "=web"',
  },
];

const invalidRequestAuthentications: Case[] = [
  {
    title: 'rule without issuer or jwksUri',
    yaml: ra('  jwtRules:\n  - audiences: ["shop"]\n'),
    path: 'spec.jwtRules[0]',
    at: '- audiences:',
    message: 'issuer or jwksUri must be set',
  },
  {
    title: 'jwksUri without scheme',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    jwksUri: issuer.example.com/keys\n'),
    path: 'spec.jwtRules[0].jwksUri',
    at: 'jwksUri:',
    message: 'jwksUri "issuer.example.com/keys": URI scheme "" is not supported (the URL must start with http:// or https://)',
  },
  {
    title: 'jwksUri with a bad port',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    jwksUri: https://issuer.example.com:port/keys\n'),
    path: 'spec.jwtRules[0].jwksUri',
    at: 'jwksUri:',
    message: 'jwksUri "https://issuer.example.com:port/keys" has an invalid port "port"',
  },
  {
    title: 'jwksUri without host',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    jwksUri: https:///keys\n'),
    path: 'spec.jwtRules[0].jwksUri',
    at: 'jwksUri:',
    message: 'jwksUri "https:///keys" has no host',
  },
  {
    title: 'jwks and jwksUri together',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    jwksUri: https://issuer.example.com/keys\n    jwks: \'{"keys":[]}\'\n'),
    path: 'spec.jwtRules[0].jwks',
    at: 'jwks:',
    message: 'only one of jwks or jwksUri can be set (found jwksUri and jwks)',
  },
  {
    title: 'jwks that is not JSON',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    jwks: not-json\n'),
    path: 'spec.jwtRules[0].jwks',
    at: 'jwks: not-json',
    message: { contains: 'jwks parse error: not JSON' },
  },
  {
    title: 'jwks key without kty',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    jwks: \'{"keys":[{"n":"abc","e":"AQAB"}]}\'\n'),
    path: 'spec.jwtRules[0].jwks',
    at: 'jwks:',
    message: 'jwks parse error: key 0 has no "kty" (RSA, EC, oct or OKP)',
  },
  {
    title: 'timeout below 1ms',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    timeout: 500us\n'),
    path: 'spec.jwtRules[0].timeout',
    at: 'timeout: 500us',
    message: 'timeout 500us must be a valid duration greater than 1ms',
  },
  {
    title: 'timeout finer than a millisecond',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    timeout: 1.5ms\n'),
    path: 'spec.jwtRules[0].timeout',
    at: 'timeout: 1.5ms',
    message: 'timeout 1.5ms: only durations to ms precision are supported',
  },
  {
    title: 'header name with a space',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    fromHeaders:\n    - name: "x token"\n      prefix: "Bearer "\n'),
    path: 'spec.jwtRules[0].fromHeaders[0].name',
    at: 'name: "x token"',
    message: 'header name "x token" is not a valid HTTP header name',
  },
  {
    title: 'claim header with an underscore',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    outputClaimToHeaders:\n    - header: x_user\n      claim: sub\n'),
    path: 'spec.jwtRules[0].outputClaimToHeaders[0].header',
    at: 'header: x_user',
    message: "header name x_user is not a valid header name (letters, digits and '-' only)",
  },
  {
    title: 'payload header with a colon',
    yaml: ra('  jwtRules:\n  - issuer: https://issuer.example.com\n    outputPayloadToHeader: ":payload"\n'),
    path: 'spec.jwtRules[0].outputPayloadToHeader',
    at: 'outputPayloadToHeader:',
    message: 'header name ":payload" is not a valid HTTP header name',
  },
  {
    title: 'null jwt rule',
    yaml: ra('  jwtRules:\n  - null\n'),
    path: 'spec.jwtRules[0]',
    at: '- null',
    message: 'jwt rule must be an object, not null',
  },
  {
    title: 'targetRefs with selector',
    yaml: ra('  selector:\n    matchLabels:\n      app: web\n  targetRefs:\n  - kind: Gateway\n    group: gateway.networking.k8s.io\n    name: ingress\n'),
    path: 'spec.targetRefs',
    at: 'targetRefs:',
    message: 'only one of targetRefs or selector can be set (found selector and targetRefs)',
  },
];

describe('AuthorizationPolicy', () => {
  it.each(invalidAuthorizationPolicies)('rejects $title', (c) => expectProblem(validate(c.yaml), c));

  it('accepts a complete policy with every kind of rule', () => {
    const r = validate(
      ap(`  selector:
    matchLabels:
      app: reviews
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/productpage", "*-admin"]
        namespaces: ["shop", "team-*"]
        ipBlocks: ["10.0.0.0/8", "2001:db8::/32", "192.168.1.1"]
    to:
    - operation:
        methods: ["GET", "HEAD"]
        paths: ["/api/*", "*/health", "/v1/{*}/items/{**}", "*"]
        ports: ["8080"]
        hosts: ["reviews.shop.svc.cluster.local", "*.example.com"]
    when:
    - key: request.headers[x-tenant]
      values: ["acme"]
    - key: request.auth.claims[groups]
      notValues: ["guests"]
    - key: source.serviceAccount
      values: ["shop/web"]
    - key: destination.port
      values: ["8080"]
`),
    );
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.valid).toBe(true);
  });

  it('accepts CUSTOM with a provider and an empty rule, and an ALLOW policy without rules', () => {
    expect(validate(ap('  action: CUSTOM\n  provider:\n    name: ext-authz\n  rules:\n  - {}\n')).errors).toEqual([]);
    expect(validate(ap('  action: ALLOW\n')).errors).toEqual([]);
    expect(validate(ap('  targetRefs:\n  - kind: Service\n    group: ""\n    name: web\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        ports: ["9000"]\n')).errors).toEqual([]);
  });

  it('warns that CUSTOM is not supported by Weft and fails closed', () => {
    const yaml = ap('  action: CUSTOM\n  provider:\n    name: ext-authz\n  rules:\n  - to:\n    - operation:\n        paths: ["/admin"]\n');
    const r = validate(yaml);
    expect(r.valid).toBe(true);
    expectProblem(
      r,
      {
        yaml,
        path: 'spec.action',
        at: 'action: CUSTOM',
        message:
          'CUSTOM action is not supported by Weft (no external authorization, provider "ext-authz" is never called): requests this policy\'s rules match are denied with 403, as Istio does when the extension provider is unknown',
      },
      'warning',
    );
  });

  it('warns about a DENY rule with only HTTP attributes, as Istio does', () => {
    const yaml = ap('  action: DENY\n  rules:\n  - to:\n    - operation:\n        methods: ["DELETE"]\n');
    const r = validate(yaml);
    expect(r.valid).toBe(true);
    expectProblem(r, { yaml, path: 'spec.rules[0]', at: '- to:', message: { contains: 'will deny all traffic to TCP ports under its scope' } }, 'warning');
  });

  it('warns about a "*" that Istio matches literally, and about lower-case methods', () => {
    const yaml = ap('  rules:\n  - from:\n    - source:\n        principals: ["cluster.local/ns/*/sa/web"]\n    to:\n    - operation:\n        methods: ["get"]\n');
    const r = validate(yaml);
    expect(r.valid).toBe(true);
    expectProblem(r, { yaml, path: 'spec.rules[0].from[0].source.principals[0]', at: 'principals:', message: '"cluster.local/ns/*/sa/web": "*" is a wildcard only as the whole value, a prefix or a suffix; here it is matched literally' }, 'warning');
    expectProblem(r, { yaml, path: 'spec.rules[0].to[0].operation.methods[0]', at: 'methods:', message: 'method "get" is matched case-sensitively; HTTP methods are upper case (GET)' }, 'warning');
  });

  it('warns about a selector without labels', () => {
    const yaml = ap('  selector: {}\n');
    const r = validate(yaml);
    expect(r.valid).toBe(true);
    expectProblem(r, { yaml, path: 'spec.selector', at: 'selector: {}', message: 'workload selector specified without labels: the policy applies to every workload in the namespace' }, 'warning');
  });

  it('reports every problem of a policy in one pass, each at its field', () => {
    const yaml = ap(`  action: DENY
  selector:
    matchLabels:
      app: "*"
  targetRef:
    kind: Service
    group: ""
    name: web
  rules:
  - from:
    - source:
        ipBlocks: ["300.0.0.1"]
    to:
    - operation:
        ports: ["x"]
    when:
    - key: source.nothing
      values: ["y"]
`);
    const r = validate(yaml);
    expect(r.errors.map((p) => [p.line, p.path])).toEqual([
      [lineOf(yaml, 'app: "*"'), 'spec.selector.matchLabels.app'],
      [lineOf(yaml, 'targetRef:'), 'spec.targetRef'],
      [lineOf(yaml, 'ipBlocks:'), 'spec.rules[0].from[0].source.ipBlocks[0]'],
      [lineOf(yaml, 'ports: ["x"]'), 'spec.rules[0].to[0].operation.ports[0]'],
      [lineOf(yaml, 'key: source.nothing'), 'spec.rules[0].when[0].key'],
    ]);
  });
});

describe('PeerAuthentication', () => {
  it.each(invalidPeerAuthentications)('rejects $title', (c) => expectProblem(validate(c.yaml), c));

  it('accepts mesh-wide STRICT and workload port-level settings', () => {
    expect(validate(pa('  mtls:\n    mode: STRICT\n')).errors).toEqual([]);
    const r = validate(pa('  selector:\n    matchLabels:\n      app: web\n  mtls:\n    mode: PERMISSIVE\n  portLevelMtls:\n    8080:\n      mode: DISABLE\n    "9090":\n      mode: STRICT\n'));
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
  });
});

describe('RequestAuthentication', () => {
  it.each(invalidRequestAuthentications)('rejects $title', (c) => expectProblem(validate(c.yaml), c));

  it('accepts a complete rule', () => {
    const r = validate(
      ra(`  selector:
    matchLabels:
      app: web
  jwtRules:
  - issuer: https://issuer.example.com
    audiences: ["shop"]
    jwksUri: https://issuer.example.com:8443/.well-known/jwks.json
    fromHeaders:
    - name: Authorization
      prefix: "Bearer "
    fromParams: ["token"]
    fromCookies: ["session"]
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders:
    - header: x-user
      claim: sub
    timeout: 5s
    forwardOriginalToken: true
`),
    );
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it('accepts an inline JWKS and warns when it holds a private key', () => {
    const pub = '{"keys":[{"kty":"RSA","kid":"k1","e":"AQAB","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX"}]}';
    expect(validate(ra(`  jwtRules:\n  - issuer: https://issuer.example.com\n    jwks: '${pub}'\n`)).warnings).toEqual([]);
    const yaml = ra(`  jwtRules:\n  - issuer: https://issuer.example.com\n    jwks: '${pub.replace('"n":', '"d":"secret","n":')}'\n`);
    const r = validate(yaml);
    expect(r.valid).toBe(true);
    expectProblem(r, { yaml, path: 'spec.jwtRules[0].jwks', at: 'jwks:', message: 'jwks key 0 (kid "k1") contains private key material; publish only public keys' }, 'warning');
  });
});
