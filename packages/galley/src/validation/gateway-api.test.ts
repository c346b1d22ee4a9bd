import { describe, expect, it } from 'vitest';
import { lineOf, validateYaml as validate } from './test-support.ts';
import type { ResourceReport } from './validate.ts';


/** GatewayClass is cluster-scoped: it takes no namespace. */
const doc = (kind: string, spec: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: ${kind}
metadata:
  name: edge
  ${kind === 'GatewayClass' ? 'labels: {}' : 'namespace: shop'}
spec:
${spec}`;
const gateway = (listeners: string) => doc('Gateway', `  gatewayClassName: istio\n  listeners:\n${listeners}`);
const route = (spec: string) => doc('HTTPRoute', `  parentRefs:\n  - name: edge-gateway\n${spec}`);
/** An HTTPRoute with one rule; `rule` is indented as the rule's fields. */
const ruleRoute = (rule: string) => route(`  rules:\n  -${rule.slice(3)}`);

interface Case {
  title: string;
  yaml: string;
  path: string;
  at: string;
  message: string | { contains: string };
}

function expectError(report: ResourceReport, c: Omit<Case, 'title'>, severity: 'error' | 'warning' = 'error'): void {
  const list = severity === 'error' ? report.errors : report.warnings;
  const atPath = list.filter((p) => p.path === c.path);
  const p = typeof c.message === 'string' ? atPath.find((x) => x.message === c.message) : atPath.find((x) => x.message.includes((c.message as { contains: string }).contains));
  expect(p, `no ${severity} at ${c.path} with message ${JSON.stringify(c.message)}; got ${JSON.stringify(list.map((x) => `${x.path}: ${x.message}`))}`).toBeDefined();
  expect(p!.line).toBe(lineOf(c.yaml, c.at));
  if (severity === 'error') expect(report.valid).toBe(false);
}

const invalid: Case[] = [
  // GatewayClass
  {
    title: 'GatewayClass controllerName without a domain',
    yaml: doc('GatewayClass', '  controllerName: istio-controller\n'),
    path: 'spec.controllerName',
    at: 'controllerName:',
    message: { contains: '"istio-controller" does not match' },
  },
  {
    title: 'GatewayClass controllerName with a label longer than 63',
    yaml: doc('GatewayClass', `  controllerName: ${'a'.repeat(64)}.io/gateway-controller\n`),
    path: 'spec.controllerName',
    at: 'controllerName:',
    message: { contains: 'has a domain label longer than 63 characters' },
  },
  // Gateway
  {
    title: 'Gateway without listeners',
    yaml: doc('Gateway', '  gatewayClassName: istio\n  listeners: []\n'),
    path: 'spec.listeners',
    at: 'listeners: []',
    message: 'must have at least 1 item',
  },
  {
    title: 'duplicate listener names',
    yaml: gateway('  - name: web\n    port: 80\n    protocol: HTTP\n  - port: 8080\n    protocol: HTTP\n    name: web\n'),
    path: 'spec.listeners[1].name',
    at: '    name: web',
    message: 'Listener name must be unique within the Gateway: "web" is also listeners[0]',
  },
  {
    title: 'same port, protocol and hostname twice',
    yaml: gateway('  - name: a\n    port: 80\n    protocol: HTTP\n  - name: b\n    port: 80\n    protocol: HTTP\n'),
    path: 'spec.listeners[1]',
    at: '- name: b',
    message: 'Combination of port, protocol and hostname must be unique for each listener: same as listeners[0] (80/HTTP)',
  },
  {
    title: 'listener port out of range',
    yaml: gateway('  - name: web\n    port: 70000\n    protocol: HTTP\n'),
    path: 'spec.listeners[0].port',
    at: 'port: 70000',
    message: '70000 is above the maximum 65535',
  },
  {
    title: 'HTTPS without tls',
    yaml: gateway('  - name: web\n    port: 443\n    protocol: HTTPS\n'),
    path: 'spec.listeners[0].protocol',
    at: 'protocol: HTTPS',
    message: 'protocol HTTPS requires tls: set tls.certificateRefs',
  },
  {
    title: 'Terminate without certificates',
    yaml: gateway('  - name: web\n    port: 443\n    protocol: HTTPS\n    tls:\n      mode: Terminate\n'),
    path: 'spec.listeners[0].tls',
    at: 'tls:',
    message: 'certificateRefs or options must be specified when mode is Terminate',
  },
  {
    title: 'HTTPS with Passthrough',
    yaml: gateway('  - name: web\n    port: 443\n    protocol: HTTPS\n    tls:\n      mode: Passthrough\n'),
    path: 'spec.listeners[0].tls.mode',
    at: 'mode: Passthrough',
    message: 'tls mode must be Terminate for protocol HTTPS, found Passthrough (use protocol TLS to pass TLS through)',
  },
  {
    title: 'tls on an HTTP listener',
    yaml: gateway('  - name: web\n    port: 80\n    protocol: HTTP\n    tls:\n      certificateRefs:\n      - name: cert\n'),
    path: 'spec.listeners[0].tls',
    at: 'tls:',
    message: "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP'] (this listener is HTTP)",
  },
  {
    title: 'hostname on a TCP listener',
    yaml: gateway('  - name: db\n    port: 5432\n    protocol: TCP\n    hostname: db.example.com\n'),
    path: 'spec.listeners[0].hostname',
    at: 'hostname:',
    message: "hostname must not be specified for protocols ['TCP', 'UDP'] (this listener is TCP)",
  },
  {
    title: 'IP address as listener hostname',
    yaml: gateway('  - name: web\n    port: 80\n    protocol: HTTP\n    hostname: 10.0.0.1\n'),
    path: 'spec.listeners[0].hostname',
    at: 'hostname:',
    message: 'hostname "10.0.0.1" is an IP address; hostnames must be DNS names',
  },
  {
    title: 'Selector namespaces without a selector',
    yaml: gateway('  - name: web\n    port: 80\n    protocol: HTTP\n    allowedRoutes:\n      namespaces:\n        from: Selector\n'),
    path: 'spec.listeners[0].allowedRoutes.namespaces.selector',
    at: 'namespaces:',
    message: 'selector must be specified when allowedRoutes.namespaces.from is Selector',
  },
  {
    title: 'duplicate IP addresses',
    yaml: doc('Gateway', '  gatewayClassName: istio\n  listeners:\n  - name: web\n    port: 80\n    protocol: HTTP\n  addresses:\n  - value: 10.0.0.1\n  - type: IPAddress\n    value: 10.0.0.1\n'),
    path: 'spec.addresses[1].value',
    at: '    value: 10.0.0.1',
    message: 'IPAddress values must be unique: "10.0.0.1" is also addresses[0]',
  },
  {
    title: 'address that is not an IP',
    yaml: doc('Gateway', '  gatewayClassName: istio\n  listeners:\n  - name: web\n    port: 80\n    protocol: HTTP\n  addresses:\n  - value: gateway.example.com\n'),
    path: 'spec.addresses[0].value',
    at: 'value: gateway.example.com',
    message: '"gateway.example.com" is not a valid IP address',
  },
  // HTTPRoute
  {
    title: 'Service parentRef without the core group',
    yaml: doc('HTTPRoute', '  parentRefs:\n  - kind: Service\n    name: reviews\n'),
    path: 'spec.parentRefs[0].kind',
    at: 'kind: Service',
    message: 'a Service parentRef needs group "" (the core group); without it the group defaults to gateway.networking.k8s.io',
  },
  {
    title: 'unsupported parentRef kind',
    yaml: doc('HTTPRoute', '  parentRefs:\n  - kind: Ingress\n    group: networking.k8s.io\n    name: web\n'),
    path: 'spec.parentRefs[0].kind',
    at: 'kind: Ingress',
    message: 'parentRef kind networking.k8s.io/Ingress is not supported: use a Gateway (gateway.networking.k8s.io) or a Service (group "")',
  },
  {
    title: 'the same parent twice without sectionName',
    yaml: doc('HTTPRoute', '  parentRefs:\n  - name: edge-gateway\n  - sectionName: https\n    name: edge-gateway\n'),
    path: 'spec.parentRefs[1]',
    at: '- sectionName: https',
    message: { contains: 'sectionName or port must be specified when parentRefs includes 2 or more references to the same parent' },
  },
  {
    title: 'wildcard hostname in the middle',
    yaml: route('  hostnames: ["shop.*.example.com"]\n'),
    path: 'spec.hostnames[0]',
    at: 'hostnames:',
    message: { contains: '"shop.*.example.com" does not match' },
  },
  {
    title: 'IP address as route hostname',
    yaml: route('  hostnames: ["192.168.1.1"]\n'),
    path: 'spec.hostnames[0]',
    at: 'hostnames:',
    message: 'hostname "192.168.1.1" is an IP address; hostnames must be DNS names',
  },
  {
    title: 'relative path match',
    yaml: ruleRoute('    matches:\n    - path:\n        type: PathPrefix\n        value: api\n'),
    path: 'spec.rules[0].matches[0].path.value',
    at: 'value: api',
    message: `path "api" must be an absolute path and start with '/'`,
  },
  {
    title: 'path with //',
    yaml: ruleRoute('    matches:\n    - path:\n        type: Exact\n        value: /api//v1\n'),
    path: 'spec.rules[0].matches[0].path.value',
    at: 'value: /api//v1',
    message: `path "/api//v1" must not contain '//'`,
  },
  {
    title: 'regular expression RE2 cannot compile',
    yaml: ruleRoute('    matches:\n    - path:\n        type: RegularExpression\n        value: "/(?!admin).*"\n'),
    path: 'spec.rules[0].matches[0].path.value',
    at: 'value: "/(?!admin).*"',
    message: 'regex "/(?!admin).*": error parsing regexp: invalid or unsupported Perl syntax: `(?!` (RE2 has no lookahead)',
  },
  {
    title: 'header regular expression with a backreference',
    yaml: ruleRoute('    matches:\n    - headers:\n      - name: x-pair\n        type: RegularExpression\n        value: "(a)-\\\\1"\n'),
    path: 'spec.rules[0].matches[0].headers[0].value',
    at: 'value: "(a)-',
    message: 'regex "(a)-\\\\1": error parsing regexp: invalid escape sequence: `\\1` (RE2 has no backreferences)',
  },
  {
    title: 'invalid header name',
    yaml: ruleRoute('    matches:\n    - headers:\n      - name: "x user"\n        value: a\n'),
    path: 'spec.rules[0].matches[0].headers[0].name',
    at: 'name: "x user"',
    message: { contains: '"x user" does not match' },
  },
  {
    title: 'duplicate header match',
    yaml: ruleRoute('    matches:\n    - headers:\n      - name: x-user\n        value: a\n      - value: b\n        name: x-user\n'),
    path: 'spec.rules[0].matches[0].headers[1].name',
    at: '        name: x-user',
    message: 'duplicate header "x-user": also headers[0]',
  },
  {
    title: 'filter field not matching its type',
    yaml: ruleRoute('    filters:\n    - type: RequestHeaderModifier\n      responseHeaderModifier:\n        remove: ["x-a"]\n'),
    path: 'spec.rules[0].filters[0].responseHeaderModifier',
    at: 'responseHeaderModifier:',
    message: 'filter.responseHeaderModifier must be nil if the filter.type is not ResponseHeaderModifier',
  },
  {
    title: 'filter type without its field',
    yaml: ruleRoute('    filters:\n    - type: URLRewrite\n'),
    path: 'spec.rules[0].filters[0].type',
    at: 'type: URLRewrite',
    message: 'filter.urlRewrite must be specified for URLRewrite filter.type',
  },
  {
    title: 'repeated RequestHeaderModifier',
    yaml: ruleRoute(
      '    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n        remove: ["x-a"]\n    - requestHeaderModifier:\n        remove: ["x-b"]\n      type: RequestHeaderModifier\n',
    ),
    path: 'spec.rules[0].filters[1].type',
    at: '      type: RequestHeaderModifier',
    message: 'RequestHeaderModifier filter cannot be repeated (also at index 0)',
  },
  {
    title: 'RequestRedirect together with URLRewrite',
    yaml: ruleRoute(
      '    filters:\n    - type: RequestRedirect\n      requestRedirect:\n        scheme: https\n    - type: URLRewrite\n      urlRewrite:\n        hostname: internal.example.com\n',
    ),
    path: 'spec.rules[0].filters[1].type',
    at: 'type: URLRewrite',
    message: 'May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both',
  },
  {
    title: 'RequestRedirect with backendRefs',
    yaml: ruleRoute('    filters:\n    - type: RequestRedirect\n      requestRedirect:\n        scheme: https\n    backendRefs:\n    - name: web\n      port: 80\n'),
    path: 'spec.rules[0].backendRefs',
    at: 'backendRefs:',
    message: 'RequestRedirect filter must not be used together with backendRefs',
  },
  {
    title: 'ReplacePrefixMatch without a PathPrefix match',
    yaml: ruleRoute(
      '    matches:\n    - path:\n        type: Exact\n        value: /old\n    filters:\n    - type: URLRewrite\n      urlRewrite:\n        path:\n          type: ReplacePrefixMatch\n          replacePrefixMatch: /new\n',
    ),
    path: 'spec.rules[0].matches',
    at: 'matches:',
    message: 'When using a RequestRedirect or URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified',
  },
  {
    title: 'path modifier type without its value',
    yaml: ruleRoute('    filters:\n    - type: URLRewrite\n      urlRewrite:\n        path:\n          type: ReplaceFullPath\n'),
    path: 'spec.rules[0].filters[0].urlRewrite.path.type',
    at: 'type: ReplaceFullPath',
    message: "replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
  },
  {
    title: 'redirect status that is not a redirect',
    yaml: ruleRoute('    filters:\n    - type: RequestRedirect\n      requestRedirect:\n        statusCode: 304\n'),
    path: 'spec.rules[0].filters[0].requestRedirect.statusCode',
    at: 'statusCode: 304',
    message: 'statusCode 304 is not a redirect status: use 301, 302, 303, 307 or 308',
  },
  {
    title: 'Service backendRef without port',
    yaml: ruleRoute('    backendRefs:\n    - name: reviews\n'),
    path: 'spec.rules[0].backendRefs[0]',
    at: '- name: reviews',
    message: 'Must have port for Service reference',
  },
  {
    title: 'weight above 1,000,000',
    yaml: ruleRoute('    backendRefs:\n    - name: reviews\n      port: 9080\n      weight: 1000001\n'),
    path: 'spec.rules[0].backendRefs[0].weight',
    at: 'weight: 1000001',
    message: '1000001 is above the maximum 1000000',
  },
  {
    title: 'mirror fraction above 1',
    yaml: ruleRoute('    filters:\n    - type: RequestMirror\n      requestMirror:\n        backendRef:\n          name: shadow\n          port: 80\n        fraction:\n          numerator: 5\n          denominator: 4\n'),
    path: 'spec.rules[0].filters[0].requestMirror.fraction.numerator',
    at: 'numerator: 5',
    message: 'numerator must be less than or equal to denominator (5 > 4)',
  },
  {
    title: 'CORS wildcard origin next to other origins',
    yaml: ruleRoute('    filters:\n    - type: CORS\n      cors:\n        allowOrigins: ["*", "https://shop.example.com"]\n'),
    path: 'spec.rules[0].filters[0].cors.allowOrigins',
    at: 'allowOrigins:',
    message: "allowOrigins cannot contain '*' alongside other values",
  },
  {
    title: 'backendRequest timeout longer than request',
    yaml: ruleRoute('    backendRefs:\n    - name: reviews\n      port: 9080\n    timeouts:\n      request: 10s\n      backendRequest: 15s\n'),
    path: 'spec.rules[0].timeouts.backendRequest',
    at: 'backendRequest: 15s',
    message: 'backendRequest timeout cannot be longer than request timeout (15s > 10s)',
  },
  {
    title: 'duplicate rule names',
    yaml: route('  rules:\n  - name: main\n    backendRefs:\n    - name: a\n      port: 80\n  - backendRefs:\n    - name: b\n      port: 80\n    name: main\n'),
    path: 'spec.rules[1].name',
    at: '    name: main',
    message: 'Rule name must be unique within the route: "main" is also rules[0]',
  },
];

// Accepted by the API server and reported in the Gateway's status (UnsupportedProtocol, InvalidRouteKinds): warnings.
const reported: Case[] = [
  {
    title: 'lower-case protocol',
    yaml: gateway('  - name: web\n    port: 80\n    protocol: http\n'),
    path: 'spec.listeners[0].protocol',
    at: 'protocol: http',
    message: 'protocol "http" is not supported: use HTTP, HTTPS, TLS, TCP or UDP, or a domain-prefixed protocol such as example.com/PROTOCOL (did you mean HTTP? protocols are case-sensitive)',
  },
  {
    title: 'unknown protocol',
    yaml: gateway('  - name: web\n    port: 80\n    protocol: GRPC\n'),
    path: 'spec.listeners[0].protocol',
    at: 'protocol: GRPC',
    message: { contains: 'protocol "GRPC" is not supported' },
  },
  {
    title: 'route kind that cannot attach to the protocol',
    yaml: gateway('  - name: web\n    port: 80\n    protocol: HTTP\n    allowedRoutes:\n      kinds:\n      - kind: TCPRoute\n'),
    path: 'spec.listeners[0].allowedRoutes.kinds[0].kind',
    at: 'kind: TCPRoute',
    message: 'route kind TCPRoute cannot attach to a HTTP listener (supported: HTTPRoute, GRPCRoute)',
  },
];

describe('Gateway API validation', () => {
  it.each(invalid)('rejects $title', (c) => expectError(validate(c.yaml), c));
  it.each(reported)('warns about $title (the Gateway reports it in its status)', (c) => expectError(validate(c.yaml), c, 'warning'));

  it('accepts a GatewayClass, an HTTPS Gateway and a full HTTPRoute', () => {
    const gc = validate(doc('GatewayClass', '  controllerName: istio.io/gateway-controller\n  description: Istio\n'));
    expect(gc.errors).toEqual([]);
    const gw = validate(
      gateway(`  - name: http
    port: 80
    protocol: HTTP
    hostname: "*.example.com"
    allowedRoutes:
      namespaces:
        from: All
  - name: https
    port: 443
    protocol: HTTPS
    hostname: shop.example.com
    tls:
      certificateRefs:
      - name: shop-cert
  - name: tls
    port: 8443
    protocol: TLS
    tls:
      mode: Passthrough
  - name: mesh
    port: 15008
    protocol: HBONE
  - name: custom
    port: 15009
    protocol: example.com/PROXY
`),
    );
    expect(gw.errors).toEqual([]);
    const hr = validate(
      route(`  hostnames: ["shop.example.com", "*.shop.example.com"]
  rules:
  - name: api
    matches:
    - path:
        type: PathPrefix
        value: /api
      headers:
      - name: x-version
        value: v2
      - type: RegularExpression
        name: x-tenant
        value: "^acme-[0-9]+$"
      method: GET
    filters:
    - type: URLRewrite
      urlRewrite:
        path:
          type: ReplacePrefixMatch
          replacePrefixMatch: /
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: x-from
          value: edge
        remove: ["x-debug"]
    backendRefs:
    - name: reviews
      port: 9080
      weight: 90
    - name: reviews-canary
      port: 9080
      weight: 10
    timeouts:
      request: 10s
      backendRequest: 2s
  - backendRefs:
    - kind: ServiceEntry
      group: networking.istio.io
      name: external
`),
    );
    expect(hr.errors).toEqual([]);
    expect(hr.warnings).toEqual([]);
  });

  it('accepts a mesh route attached to a Service', () => {
    const r = validate(doc('HTTPRoute', '  parentRefs:\n  - group: ""\n    kind: Service\n    name: reviews\n    port: 9080\n  rules:\n  - backendRefs:\n    - name: reviews-v2\n      port: 9080\n'));
    expect(r.errors).toEqual([]);
  });

  it('reports every problem of a route in one pass', () => {
    const yaml = route(`  hostnames: ["10.1.1.1"]
  rules:
  - matches:
    - path:
        value: no-slash
    filters:
    - type: CORS
    backendRefs:
    - name: web
    timeouts:
      request: 1s
      backendRequest: 1m
`);
    const r = validate(yaml);
    expect(r.errors.map((p) => [p.line, p.path])).toEqual([
      [lineOf(yaml, 'hostnames:'), 'spec.hostnames[0]'],
      [lineOf(yaml, 'value: no-slash'), 'spec.rules[0].matches[0].path.value'],
      [lineOf(yaml, 'type: CORS'), 'spec.rules[0].filters[0].type'],
      [lineOf(yaml, '- name: web'), 'spec.rules[0].backendRefs[0]'],
      [lineOf(yaml, 'backendRequest: 1m'), 'spec.rules[0].timeouts.backendRequest'],
    ]);
  });
});
