import { describe, expect, it } from 'vitest';
import { invalid, networkingResource as resource, problems, validateYaml, warns } from './test-support.ts';


/** A minimal HTTP route, to interpolate at the spec's indentation (six spaces). */
const route = `http:
      - route:
        - destination: {host: reviews}`;

describe('VirtualService: invalid', () => {
  invalid('VirtualService', [
    ['negative weight', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews, subset: v1}
          weight: -10 # <--
        - destination: {host: reviews, subset: v2}
          weight: 110`, 'spec.http[0].route[0].weight', 'weight -10 < 0'],
    ['all weights zero', `
      hosts: [reviews]
      http:
      - route: # <--
        - destination: {host: reviews, subset: v1}
          weight: 0
        - destination: {host: reviews, subset: v2}`, 'spec.http[0].route', 'total destination weight = 0'],
    ['destination host is *', `
      hosts: [reviews]
      http:
      - route:
        - destination:
            host: "*" # <--`, 'spec.http[0].route[0].destination.host', 'invalid destination host *'],
    ['destination host with a wildcard in the middle', `
      hosts: [reviews]
      tcp:
      - route:
        - destination:
            host: foo.*.com # <--`, 'spec.tcp[0].route[0].destination.host', 'domain name "foo.*.com" invalid (label "*" invalid)'],
    ['destination subset not a DNS label', `
      hosts: [reviews]
      http:
      - route:
        - destination:
            host: reviews
            subset: v1.0 # <--`, 'spec.http[0].route[0].destination.subset', 'subset name is invalid: v1.0'],
    ['destination port out of range', `
      hosts: [reviews]
      http:
      - route:
        - destination:
            host: reviews
            port:
              number: 70000 # <--`, 'spec.http[0].route[0].destination.port.number', 'port number 70000 must be in the range 1..65535'],
    ['wildcard host bound to the mesh', `
      hosts:
      - "*" # <--
      ${route}`, 'spec.hosts[0]', 'wildcard host * is not allowed for virtual services bound to the mesh gateway'],
    ['hosts that overlap', `
      hosts:
      - "*.example.com"
      - api.example.com # <--
      ${route}`, 'spec.hosts[1]', 'duplicate hosts in virtual service: *.example.com & api.example.com'],
    ['host with a bad character', `
      hosts:
      - foo.ba!r # <--
      ${route}`, 'spec.hosts[0]', 'domain name "foo.ba!r" invalid (label "ba!r" invalid)'],
    ['gateway reference to all gateways of a namespace', `
      hosts: [reviews.example.com]
      gateways:
      - istio-system/* # <--
      ${route}`, 'spec.gateways[0]', 'invalid value for gateway name: "*"'],
    ['gateway reference with a bad character', `
      hosts: [reviews.example.com]
      gateways:
      - b@dgateway # <--
      ${route}`, 'spec.gateways[0]', 'domain name "b@dgateway" invalid (label "b@dgateway" invalid)'],
    ['delegate with gateways', `
      gateways: # <--
      - bookinfo-gateway
      ${route}`, 'spec.gateways', 'delegate virtual service must have no gateways specified'],
    ['delegate with a TCP route', `
      tcp: # <--
      - route:
        - destination: {host: reviews}`, 'spec.tcp', 'delegate virtual service must have no tcp route specified'],
    ['root route that also routes', `
      hosts: [reviews]
      http:
      - delegate: {name: reviews-v1, namespace: team}
        route: # <--
        - destination: {host: reviews}`, 'spec.http[0].route', 'root HTTP route must not specify route'],
    ['delegate route that delegates again', `
      http:
      - delegate: # <--
          name: reviews-v1
        route:
        - destination: {host: reviews}`, 'spec.http[0].delegate', 'delegate HTTP route cannot contain delegate'],
    ['route and redirect', `
      hosts: [reviews]
      http:
      - redirect: {uri: /v2}
        route: # <--
        - destination: {host: reviews}`, 'spec.http[0].route', 'HTTP route cannot contain both route and redirect'],
    ['redirect and direct response', `
      hosts: [reviews]
      http:
      - redirect: {uri: /v2}
        directResponse: # <--
          status: 503`, 'spec.http[0].directResponse', 'HTTP route rule cannot contain both direct_response and redirect'],
    ['direct response and fault', `
      hosts: [reviews]
      http:
      - directResponse: {status: 503}
        fault: # <--
          abort: {httpStatus: 500}`, 'spec.http[0].fault', 'HTTP route cannot contain both fault and direct_response'],
    ['route without destination, redirect or direct response', `
      hosts: [reviews]
      http:
      - name: nothing # <--
        timeout: 5s`, 'spec.http[0]', 'HTTP route, redirect or direct_response is required'],
    ['mirror and mirrors', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews}
        mirror: {host: reviews-shadow}
        mirrors: # <--
        - destination: {host: reviews-shadow}`, 'spec.http[0].mirrors', 'HTTP route cannot contain both mirror and mirrors'],
    ['header match with a space in its name', `
      hosts: [reviews]
      http:
      - match:
        - headers:
            x user: {exact: jason} # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].headers["x user"]', 'header name x user is not a valid header name'],
    ['empty header prefix match', `
      hosts: [reviews]
      http:
      - match:
        - headers:
            x-user:
              prefix: "" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].headers.x-user.prefix', '"headers": prefix string match should not be empty'],
    ['uri regex that does not compile', `
      hosts: [reviews]
      http:
      - match:
        - uri:
            regex: "/api/(v1" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].uri.regex', '"uri": regex "/api/(v1": error parsing regexp: missing closing ): `/api/(v1`; Istio uses RE2 style regex-based match'],
    ['regex with lookahead', `
      hosts: [reviews]
      http:
      - match:
        - authority:
            regex: "(?!internal).*" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].authority.regex', '"authority": regex "(?!internal).*": error parsing regexp: invalid or unsupported Perl syntax: `(?!` (RE2 has no lookahead)'],
    ['header regex with a backreference', `
      hosts: [reviews]
      http:
      - match:
        - headers:
            x-pair:
              regex: "(a)-\\\\1" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].headers.x-pair.regex', '"headers": regex "(a)-\\\\1": error parsing regexp: invalid escape sequence: `\\1` (RE2 has no backreferences)'],
    ['query parameter regex with lookbehind', `
      hosts: [reviews]
      http:
      - match:
        - queryParams:
            id:
              regex: "(?<=x)[0-9]+" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].queryParams.id.regex', 'RE2 has no lookbehind'],
    ['uri regex with \\C', `
      hosts: [reviews]
      http:
      - match:
        - uri:
            regex: "/a\\\\Cb" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].uri.regex', 'invalid escape sequence: `\\C`'],
    ['uri regex with \\Z (JavaScript reads a literal Z, RE2 refuses it)', `
      hosts: [reviews]
      http:
      - match:
        - uri:
            regex: "/api\\\\Z" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].uri.regex', 'RE2 has no \\Z'],
    ['uri regex repeated more than 1000 times', `
      hosts: [reviews]
      http:
      - match:
        - uri:
            regex: "/v[0-9]{1,1001}" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].uri.regex', 'invalid repeat count: `{1,1001}` (RE2 allows at most 1000 repetitions'],
    ['scheme regex with a possessive quantifier', `
      hosts: [reviews]
      http:
      - match:
        - scheme:
            regex: "https?+" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].scheme.regex', 'RE2 has no possessive quantifiers'],
    ['regex longer than 1024 characters', `
      hosts: [reviews]
      http:
      - match:
        - uri:
            regex: "${'/a'.repeat(513)}" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].uri.regex', '"uri": regex is too large, max length allowed is 1024'],
    ['empty method prefix', `
      hosts: [reviews]
      http:
      - match:
        - method:
            prefix: "" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].method.prefix', '"method": prefix string match should not be empty'],
    ['empty query parameter regex', `
      hosts: [reviews]
      http:
      - match:
        - queryParams:
            debug:
              regex: "" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].queryParams.debug.regex', '"queryParams": regex string match should not be empty'],
    ['source namespace not a DNS label', `
      hosts: [reviews]
      http:
      - match:
        - sourceNamespace: team_a # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].sourceNamespace', 'sourceNamespace match team_a is invalid'],
    ['source label value with a space', `
      hosts: [reviews]
      http:
      - match:
        - sourceLabels:
            app: my app # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].sourceLabels.app', 'invalid tag value: "my app"'],
    ['match port out of range', `
      hosts: [reviews]
      http:
      - match:
        - port: 65536 # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].port', 'port number 65536 must be in the range 1..65535'],
    ['JWT claim routing on the mesh', `
      hosts: [reviews]
      gateways: [mesh]
      http:
      - match:
        - headers:
            "@request.auth.claims.group": {exact: admin} # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].headers["@request.auth.claims.group"]', 'JWT claim based routing (key: @request.auth.claims.group) is only supported for gateway'],
    ['setting a pseudo header', `
      hosts: [reviews]
      http:
      - headers:
          request:
            set:
              ":path": /v2 # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].headers.request.set[":path"]', 'invalid header ":path": header cannot have ":" prefix'],
    ['removing the Host response header', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews}
          headers:
            response:
              remove:
              - Host # <--`, 'spec.http[0].route[0].headers.response.remove[0]', 'invalid header "Host": cannot set Host header'],
    ['header value with an unescaped %', `
      hosts: [reviews]
      http:
      - headers:
          response:
            add:
              x-discount: 10% # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].headers.response.add.x-discount', 'header value configuration: invalid header configuration. Un-escaped %'],
    ['authority rewritten twice', `
      hosts: [reviews]
      http:
      - rewrite: {authority: reviews.internal}
        headers:
          request:
            set:
              ":authority": reviews.other # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].headers.request.set[":authority"]', 'authority header cannot be set multiple times: have "reviews.internal", attempting to set "reviews.other"'],
    ['CORS method that does not exist', `
      hosts: [reviews]
      http:
      - corsPolicy:
          allowMethods:
          - GET
          - PUTT # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].corsPolicy.allowMethods[1]', '"PUTT" is not a supported HTTP method'],
    ['CORS empty expose header', `
      hosts: [reviews]
      http:
      - corsPolicy:
          exposeHeaders:
          - "" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].corsPolicy.exposeHeaders[0]', 'header name cannot be empty'],
    ['CORS max age below a second', `
      hosts: [reviews]
      http:
      - corsPolicy:
          maxAge: 1500ms # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].corsPolicy.maxAge', 'max_age duration is accurate only to seconds precision'],
    ['CORS empty origin', `
      hosts: [reviews]
      http:
      - corsPolicy:
          allowOrigins:
          - exact: "" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].corsPolicy.allowOrigins[0]', "'' is not a valid match type for CORS allow origins"],
    ['abort status out of range', `
      hosts: [reviews]
      http:
      - fault:
          abort:
            httpStatus: 700 # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].fault.abort.httpStatus', 'HTTP status 700 is not in range 200-599'],
    ['abort with an unknown gRPC status', `
      hosts: [reviews]
      http:
      - fault:
          abort:
            grpcStatus: BROKEN # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].fault.abort.grpcStatus', 'gRPC status "BROKEN" is not supported'],
    ['delay percentage above 100', `
      hosts: [reviews]
      http:
      - fault:
          delay:
            fixedDelay: 5s
            percentage:
              value: 150 # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].fault.delay.percentage.value', 'percentage 150 is neither 0.0, nor in range [0.0001, 100.0]'],
    ['delay shorter than a millisecond', `
      hosts: [reviews]
      http:
      - fault:
          delay:
            fixedDelay: 500us # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].fault.delay.fixedDelay', 'duration must be greater than 1ms'],
    ['fault with neither abort nor delay', `
      hosts: [reviews]
      http:
      - fault: {} # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].fault', 'HTTP fault injection must have an abort and/or a delay'],
    ['negative retry attempts', `
      hosts: [reviews]
      http:
      - retries:
          attempts: -1 # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].retries.attempts', 'attempts cannot be negative'],
    ['retry policy with retries disabled', `
      hosts: [reviews]
      http:
      - retries:
          attempts: 0 # <--
          perTryTimeout: 2s
        route:
        - destination: {host: reviews}`, 'spec.http[0].retries.attempts', 'http retry policy configured when attempts are set to 0 (disabled)'],
    ['unknown retryOn policy', `
      hosts: [reviews]
      http:
      - retries:
          attempts: 3
          retryOn: 5xx,bogus # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].retries.retryOn', '"bogus" is not a valid retryOn policy'],
    ['per-try timeout below millisecond precision', `
      hosts: [reviews]
      http:
      - retries:
          attempts: 3
          perTryTimeout: 1500us # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].retries.perTryTimeout', 'only durations to ms precision are supported'],
    ['zero timeout', `
      hosts: [reviews]
      http:
      - timeout: 0s # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].timeout', 'duration must be greater than 1ms'],
    ['redirect with a 2xx code', `
      hosts: [reviews]
      http:
      - redirect:
          uri: /v2
          redirectCode: 200 # <--`, 'spec.http[0].redirect.redirectCode', '200 is not a valid redirect code, must be 3xx'],
    ['redirect to ftp', `
      hosts: [reviews]
      http:
      - redirect:
          scheme: ftp # <--`, 'spec.http[0].redirect.scheme', 'invalid redirect scheme, must be "http" or "https"'],
    ['redirect that changes nothing', `
      hosts: [reviews]
      http:
      - redirect: # <--
          redirectCode: 301`, 'spec.http[0].redirect', 'redirect must specify URI, authority, scheme, or port'],
    ['prefix rewrite redirect on an exact uri match', `
      hosts: [reviews]
      http:
      - match:
        - uri: # <--
            exact: /old
        redirect:
          prefixRewrite: /new`, 'spec.http[0].match[0].uri', 'redirect prefixRewrite requires the uri match to be a prefix match'],
    ['rewrite with both uri and regex', `
      hosts: [reviews]
      http:
      - rewrite:
          uri: /v2
          uriRegexRewrite: # <--
            match: ^/v1/(.*)
            rewrite: /v2/\\1
        route:
        - destination: {host: reviews}`, 'spec.http[0].rewrite.uriRegexRewrite', 'rewrite may only contain one of URI or UriRegexRewrite'],
    ['regex rewrite without a rewrite', `
      hosts: [reviews]
      http:
      - rewrite:
          uriRegexRewrite: # <--
            match: ^/v1/(.*)
        route:
        - destination: {host: reviews}`, 'spec.http[0].rewrite.uriRegexRewrite', 'UriRegexRewrite requires both Rewrite and Match fields to be specified'],
    ['regex rewrite that does not compile', `
      hosts: [reviews]
      http:
      - rewrite:
          uriRegexRewrite:
            match: "[" # <--
            rewrite: /
        route:
        - destination: {host: reviews}`, 'spec.http[0].rewrite.uriRegexRewrite.match', 'UriRegexRewrite has errors: "HTTPRewrite.UriRegexRewrite.Match": regex "[": error parsing regexp: missing closing ]: `[`; Istio uses RE2'],
    ['direct response with an informational status', `
      hosts: [reviews]
      http:
      - directResponse:
          status: 100 # <--`, 'spec.http[0].directResponse.status', 'HTTP status 100 is not in range 200-599'],
    ['mirror percentage above 100', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews}
        mirror: {host: reviews-shadow}
        mirrorPercentage:
          value: 150 # <--`, 'spec.http[0].mirrorPercentage.value', 'mirror_percentage must have a max value of 100 (it has 150.000000)'],
    ['negative mirrors percentage', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews}
        mirrors:
        - destination: {host: reviews-shadow}
          percentage:
            value: -1 # <--`, 'spec.http[0].mirrors[0].percentage.value', 'mirror percentage must have a min value of 0 (it has -1.000000)'],
    ['SNI host outside the service hosts', `
      hosts: [foo.example.com]
      gateways: [mesh]
      tls:
      - match:
        - sniHosts:
          - foo.other.com # <--
        route:
        - destination: {host: foo.example.com}`, 'spec.tls[0].match[0].sniHosts[0]', 'SNI host "foo.other.com" is not a compatible subset of any of the virtual service hosts: [foo.example.com]'],
    ['TLS route without destinations', `
      hosts: [foo.example.com]
      tls:
      - match: # <--
        - sniHosts: [foo.example.com]`, 'spec.tls[0]', 'TLS route is required'],
    ['TCP route with a bad subnet', `
      hosts: [db]
      tcp:
      - match:
        - destinationSubnets:
          - 10.0.0.0/33 # <--
        route:
        - destination: {host: db}`, 'spec.tcp[0].match[0].destinationSubnets[0]', '10.0.0.0/33 is not a valid CIDR block'],
    ['TCP route without destinations', `
      hosts: [db]
      tcp:
      - match: # <--
        - port: 3306`, 'spec.tcp[0]', 'TCP route is required'],
    ['exportTo a bad namespace', `
      hosts: [reviews]
      ${route}
      exportTo:
      - Team_A # <--`, 'spec.exportTo[0]', 'only ., * or a valid DNS 1123 label is allowed as exportTo entry (got "Team_A")'],
    ['exportTo everywhere and somewhere', `
      hosts: [reviews]
      ${route}
      exportTo: # <--
      - "*"
      - "."`, 'spec.exportTo', 'cannot have both public (*) and non-public exportTo values for a resource'],
    ['exportTo the namespace twice', `
      hosts: [reviews]
      ${route}
      exportTo:
      - default
      - "." # <--`, 'spec.exportTo[1]', 'duplicate entries in exportTo: . and current namespace default'],
    ['exportTo nobody', `
      hosts: [reviews]
      ${route}
      exportTo:
      - "~" # <--`, 'spec.exportTo[0]', 'exportTo ~ (none) is not allowed for Istio configuration objects'],
  ]);
});

describe('VirtualService: problems at the spec', () => {
  it('reports a service without routes at spec', () => {
    expect(problems(resource('VirtualService', 'hosts: [reviews]'))).toEqual([[6, 'spec', 'http, tcp or tls must be provided in virtual service']]);
  });
});

describe('VirtualService: warnings', () => {
  warns('VirtualService', [
    ['a regex whose RE2 program is larger than proxies accept (Istio accepts it; every proxy would NACK)', `
      hosts: [reviews]
      http:
      - match:
        - uri:
            regex: "${'[0-9]{1000}'.repeat(33)}" # <--
        route:
        - destination: {host: reviews}`, 'spec.http[0].match[0].uri.regex', 'more than the 32768 proxies accept (re2.max_program_size.error_level)'],
    ['a regex rewrite whose RE2 program is larger than proxies accept', `
      hosts: [reviews]
      http:
      - rewrite:
          uriRegexRewrite:
            match: "${'[a-z]{1000}'.repeat(33)}" # <--
            rewrite: /x
        route:
        - destination: {host: reviews}`, 'spec.http[0].rewrite.uriRegexRewrite.match', 'UriRegexRewrite has errors: "HTTPRewrite.UriRegexRewrite.Match": regex "[a-z]{1000}'],
    ['legacy gateway name', `
      hosts: [reviews.example.com]
      gateways:
      - bookinfo-gateway.istio-system # <--
      ${route}`, 'spec.gateways[0]', 'using legacy gatewayName format "bookinfo-gateway.istio-system"; prefer the <namespace>/<name> format: "istio-system/bookinfo-gateway"'],
    ['abort without an error type', `
      hosts: [reviews]
      http:
      - fault:
          abort: # <--
            percentage: {value: 10}
        route:
        - destination: {host: reviews}`, 'spec.http[0].fault.abort', 'abort configured, but error type not set'],
    ['a second rule without matches', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews, subset: v1}
      - route: # <--
        - destination: {host: reviews, subset: v2}`, 'spec.http[1]', 'virtualService rule #1 not used (only the last rule can have no matches)'],
    ['a match repeated by a later rule', `
      hosts: [reviews]
      http:
      - match:
        - uri: {prefix: /api}
        route:
        - destination: {host: reviews, subset: v1}
      - name: later
        match:
        - uri: {prefix: /api} # <--
        route:
        - destination: {host: reviews, subset: v2}`, 'spec.http[1].match[0]', 'virtualService rule "later" match #0 is not used (duplicate/overlapping match in rule #0)'],
    ['a longer prefix after a shorter one', `
      hosts: [reviews]
      http:
      - match:
        - uri: {prefix: /api}
        route:
        - destination: {host: reviews, subset: v1}
      - match:
        - uri: {prefix: /api/v2} # <--
        route:
        - destination: {host: reviews, subset: v2}`, 'spec.http[1].match[0]', 'virtualService rule #1 match #0 of prefix /api/v2 is not used (duplicate/overlapping match in rule #0 of prefix /api on #0)'],
    ['IP address as an SNI host', `
      hosts: [foo.example.com]
      tls:
      - match:
        - sniHosts:
          - 10.1.2.3 # <--
        route:
        - destination: {host: foo.example.com}`, 'spec.tls[0].match[0].sniHosts[0]', 'using an IP address ("10.1.2.3") goes against SNI spec and most clients do not support this'],
    ['deprecated mirrorPercent', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews}
        mirror: {host: reviews-shadow}
        mirrorPercent: 5 # <--`, 'spec.http[0].mirrorPercent', 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead'],
  ]);

  it('codes unreachable rules and ineffective matches as Istio analyzers do', () => {
    const yaml = resource('VirtualService', `
      hosts: [reviews]
      http:
      - route:
        - destination: {host: reviews}
      - route:
        - destination: {host: reviews}`);
    expect(validateYaml(yaml).warnings.map((w) => w.code)).toEqual(['IST0130']);
  });
});

describe('DestinationRule: invalid', () => {
  invalid('DestinationRule', [
    ['empty host', `
      host: "" # <--`, 'spec.host', 'empty domain name not allowed'],
    ['all-numeric top-level domain', `
      host: reviews.123 # <--`, 'spec.host', 'domain name "reviews.123" invalid (top level domain "123" cannot be all-numeric)'],
    ['duplicate subset names', `
      host: reviews
      subsets:
      - name: v1
        labels: {version: v1}
      - name: v1 # <--
        labels: {version: v2}`, 'spec.subsets[1].name', 'duplicate subset names: v1'],
    ['subset name not a DNS label', `
      host: reviews
      subsets:
      - name: v1.0 # <--
        labels: {version: v1}`, 'spec.subsets[0].name', 'subset name is invalid: v1.0'],
    ['subset label key starting with a dash', `
      host: reviews
      subsets:
      - name: v1
        labels:
          -version: v1 # <--`, 'spec.subsets[0].labels["-version"]', 'invalid tag key: "-version"'],
    ['empty traffic policy', `
      host: reviews
      trafficPolicy: {} # <--`, 'spec.trafficPolicy', 'traffic policy must have at least one field'],
    ['empty subset traffic policy', `
      host: reviews
      subsets:
      - name: v1
        trafficPolicy: {} # <--`, 'spec.subsets[0].trafficPolicy', 'traffic policy must have at least one field'],
    ['empty connection pool', `
      host: reviews
      trafficPolicy:
        connectionPool: {} # <--`, 'spec.trafficPolicy.connectionPool', 'connection pool must have at least one field'],
    ['negative max connections', `
      host: reviews
      trafficPolicy:
        connectionPool:
          tcp:
            maxConnections: -1 # <--`, 'spec.trafficPolicy.connectionPool.tcp.maxConnections', 'max connections must be non-negative'],
    ['negative max pending requests', `
      host: reviews
      trafficPolicy:
        connectionPool:
          http:
            http1MaxPendingRequests: -5 # <--`, 'spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests', 'http1 max pending requests must be non-negative'],
    ['sub-millisecond connect timeout', `
      host: reviews
      trafficPolicy:
        connectionPool:
          tcp:
            connectTimeout: 500us # <--`, 'spec.trafficPolicy.connectionPool.tcp.connectTimeout', 'duration must be greater than 1ms'],
    ['HTTP/2 upgrade with the client protocol', `
      host: reviews
      trafficPolicy:
        connectionPool:
          http:
            h2UpgradePolicy: UPGRADE
            useClientProtocol: true # <--`, 'spec.trafficPolicy.connectionPool.http.useClientProtocol', 'use client protocol must not be true when H2UpgradePolicy is UPGRADE'],
    ['HTTP/2 keepalive without a timeout', `
      host: reviews
      trafficPolicy:
        connectionPool:
          http:
            http2KeepAlive: # <--
              interval: 15s`, 'spec.trafficPolicy.connectionPool.http.http2KeepAlive', 'http2KeepAlive requires a timeout'],
    ['max ejection percent above 100', `
      host: reviews
      trafficPolicy:
        outlierDetection:
          maxEjectionPercent: 150 # <--`, 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'percentage 150 is not in range 0..100'],
    ['local origin failures without splitting them', `
      host: reviews
      trafficPolicy:
        outlierDetection:
          consecutiveLocalOriginFailures: 5 # <--`, 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', 'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false'],
    ['ejection interval below millisecond precision', `
      host: reviews
      trafficPolicy:
        outlierDetection:
          interval: 1500us # <--`, 'spec.trafficPolicy.outlierDetection.interval', 'only durations to ms precision are supported'],
    ['hash cookie without a name', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          consistentHash:
            httpCookie:
              name: "" # <--
              ttl: 0s`, 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name', 'name required for HttpCookie'],
    ['duplicate cookie attributes', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          consistentHash:
            httpCookie:
              name: session
              attributes:
              - name: SameSite
                value: Strict
              - name: SameSite # <--
                value: Lax`, 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[1].name', 'duplicate cookie attribute name: SameSite'],
    ['maglev table size not prime', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          consistentHash:
            useSourceIp: true
            maglev:
              tableSize: 1000 # <--`, 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'tableSize must be a prime number for maglev'],
    ['deprecated ring size with a hash algorithm', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          consistentHash:
            useSourceIp: true
            minimumRingSize: 1024 # <--
            ringHash: {minimumRingSize: 1024}`, 'spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize', 'only one of MinimumRingSize or Maglev/Ringhash can be specified'],
    ['locality weights not adding up to 100', `
      host: reviews
      trafficPolicy:
        outlierDetection: {consecutive5xxErrors: 5}
        loadBalancer:
          localityLbSetting:
            distribute:
            - from: us-west/zone1/*
              to: # <--
                us-west/zone1/*: 80
                us-west/zone2/*: 10`, 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to', 'total locality weight 90 != 100'],
    ['zero locality weight', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          localityLbSetting:
            distribute:
            - from: us-west/*
              to:
                us-west/*: 100
                us-east/*: 0 # <--`, 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to["us-east/*"]', 'locality weight must be in range [1, 100]'],
    ['overlapping source localities', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          localityLbSetting:
            distribute:
            - from: us-west/*
              to: {us-west/*: 100}
            - from: us-west/zone1 # <--
              to: {us-west/*: 100}`, 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[1].from', 'locality us-west/zone1 overlap with previous specified ones'],
    ['failover to the same region', `
      host: reviews
      trafficPolicy:
        outlierDetection: {consecutive5xxErrors: 5}
        loadBalancer:
          localityLbSetting:
            failover:
            - from: us-east # <--
              to: us-east`, 'spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]', 'locality lb failover settings must specify different regions'],
    ['distribute and failover together', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          localityLbSetting: # <--
            distribute:
            - from: us-west/*
              to: {us-west/*: 100}
            failover:
            - from: us-west
              to: us-east`, 'spec.trafficPolicy.loadBalancer.localityLbSetting', "can not simultaneously specify 'distribute' and 'failover'"],
    ['locality and zone-aware load balancing together', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          localityLbSetting: {enabled: true}
          zoneAwareLbSetting: # <--
            enabled: true`, 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting', 'only one of localityLbSetting or zoneAwareLbSetting can be set'],
    ['zone-aware priority on a topology label', `
      host: reviews
      trafficPolicy:
        outlierDetection: {consecutive5xxErrors: 5}
        loadBalancer:
          zoneAwareLbSetting:
            failoverPriority:
            - topology.kubernetes.io/zone # <--`, 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting.failoverPriority[0]', "zone aware lb failoverPriority cannot use topology label 'topology.kubernetes.io/zone'"],
    ['warmup aggression below 1', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          warmup:
            duration: 60s
            aggression: 0.5 # <--`, 'spec.trafficPolicy.loadBalancer.warmup.aggression', 'aggression should be greater than or equal to 1'],
    ['MUTUAL TLS without a client certificate', `
      host: reviews
      trafficPolicy:
        tls:
          mode: MUTUAL
          privateKey: /etc/certs/key.pem
          clientCertificate: "" # <--`, 'spec.trafficPolicy.tls.clientCertificate', 'client certificate required for mutual tls'],
    ['credential name with a CA file', `
      host: reviews
      trafficPolicy:
        tls:
          mode: SIMPLE
          credentialName: reviews-ca
          caCertificates: /etc/certs/ca.pem # <--`, 'spec.trafficPolicy.tls.caCertificates', 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set'],
    ['skipping verification while naming SANs', `
      host: reviews
      trafficPolicy:
        tls:
          mode: SIMPLE
          insecureSkipVerify: true # <--
          subjectAltNames: [reviews.default.svc]`, 'spec.trafficPolicy.tls.insecureSkipVerify', 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true'],
    ['CA config map from another namespace', `
      host: reviews
      trafficPolicy:
        tls:
          mode: SIMPLE
          credentialName: configmap://other/ca # <--`, 'spec.trafficPolicy.tls.credentialName', 'invalid configmap:// credentialName: namespace must match the configuration namespace "default"'],
    ['port settings without a port', `
      host: reviews
      trafficPolicy:
        portLevelSettings:
        - loadBalancer: {simple: RANDOM} # <--`, 'spec.trafficPolicy.portLevelSettings[0]', 'portTrafficPolicy must have valid port'],
    ['port settings with only a port', `
      host: reviews
      trafficPolicy:
        portLevelSettings:
        - port: {number: 9080} # <--`, 'spec.trafficPolicy.portLevelSettings[0]', 'port traffic policy must have at least one field'],
    ['tunnel with an unknown protocol', `
      host: reviews
      trafficPolicy:
        tunnel:
          protocol: GET # <--
          targetHost: 10.0.0.1
          targetPort: 8443`, 'spec.trafficPolicy.tunnel.protocol', 'tunnel protocol must be "CONNECT" or "POST"'],
    ['tunnel to port 0', `
      host: reviews
      trafficPolicy:
        tunnel:
          targetHost: proxy.example.com
          targetPort: 0 # <--`, 'spec.trafficPolicy.tunnel.targetPort', 'tunnel target port is invalid: port number 0 must be in the range 1..65535'],
    ['tunnel and PROXY protocol', `
      host: reviews
      trafficPolicy:
        tunnel: {targetHost: proxy.example.com, targetPort: 8443}
        proxyProtocol: # <--
          version: V2`, 'spec.trafficPolicy.proxyProtocol', 'tunnel and proxyProtocol must not be set together'],
    ['selector rule exported elsewhere', `
      host: reviews
      workloadSelector:
        matchLabels: {app: productpage}
      trafficPolicy:
        loadBalancer: {simple: RANDOM}
      exportTo: # <--
      - "*"`, 'spec.exportTo', 'destination rule with workload selector cannot have exportTo beyond current namespace'],
    ['wildcard in the workload selector', `
      host: reviews
      workloadSelector:
        matchLabels:
          app: "*" # <--
      trafficPolicy:
        loadBalancer: {simple: RANDOM}`, 'spec.workloadSelector.matchLabels.app', 'wildcard is not supported in selector: "app=*"'],
  ]);
});

describe('DestinationRule: warnings', () => {
  warns('DestinationRule', [
    ['failover without outlier detection', `
      host: reviews
      trafficPolicy:
        loadBalancer:
          localityLbSetting: # <--
            failover:
            - from: us-east
              to: eu-west`, 'spec.trafficPolicy.loadBalancer.localityLbSetting', 'outlier detection policy must be provided for failover'],
    ['deprecated consecutiveErrors', `
      host: reviews
      trafficPolicy:
        outlierDetection:
          consecutiveErrors: 5 # <--`, 'spec.trafficPolicy.outlierDetection.consecutiveErrors', 'outlier detection consecutive errors is deprecated'],
    ['selector without labels', `
      host: reviews
      workloadSelector: {} # <--`, 'spec.workloadSelector.matchLabels', 'workload selector specified without labels'],
  ]);
});

describe('several problems in one resource', () => {
  it('reports every problem in one pass, each at its own line', () => {
    const yaml = resource('VirtualService', `
      hosts:
      - "*"
      http:
      - match:
        - sourceNamespace: Bad_NS
        retries:
          attempts: -2
        route:
        - destination: {host: reviews, subset: V.1}
          weight: -1
      tcp:
      - match:
        - destinationSubnets: [300.0.0.0/8]`);
    expect(problems(yaml)).toEqual([
      [8, 'spec.hosts[0]', 'wildcard host * is not allowed for virtual services bound to the mesh gateway'],
      [11, 'spec.http[0].match[0].sourceNamespace', 'sourceNamespace match Bad_NS is invalid'],
      [13, 'spec.http[0].retries.attempts', 'attempts cannot be negative'],
      [15, 'spec.http[0].route[0].destination.subset', 'subset name is invalid: V.1'],
      [16, 'spec.http[0].route[0].weight', 'weight -1 < 0'],
      [18, 'spec.tcp[0]', 'TCP route is required'],
      [19, 'spec.tcp[0].match[0].destinationSubnets[0]', '300.0.0.0/8 is not a valid CIDR block'],
    ]);
  });

  it('reports structural and semantic problems together', () => {
    const yaml = resource('DestinationRule', `
      host: reviews
      trafficPolicy:
        connectionPool:
          tcp:
            maxConnections: lots
            connectTimeout: 100us
        outlierDetection:
          minHealthPercent: 101`);
    expect(problems(yaml)).toEqual([
      [11, 'spec.trafficPolicy.connectionPool.tcp.maxConnections', 'expected an integer, got string "lots"'],
      [12, 'spec.trafficPolicy.connectionPool.tcp.connectTimeout', 'duration must be greater than 1ms (got 100us)'],
      [14, 'spec.trafficPolicy.outlierDetection.minHealthPercent', 'percentage 101 is not in range 0..100'],
    ]);
  });
});

describe('valid networking configuration', () => {
  it.each([
    ['VirtualService with weights, retries, fault, CORS and mirrors', 'VirtualService', `
      hosts: [reviews.default.svc.cluster.local, reviews]
      gateways: [mesh, istio-system/bookinfo-gateway]
      http:
      - name: jason
        match:
        - headers:
            end-user: {exact: jason}
          uri: {prefix: /reviews}
          ignoreUriCase: true
        route:
        - destination: {host: reviews, subset: v2}
          weight: 75
        - destination: {host: reviews, subset: v3, port: {number: 9080}}
          weight: 25
        retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure,503"}
        fault:
          delay: {fixedDelay: 7s, percentage: {value: 0.5}}
        corsPolicy:
          allowOrigins: [{exact: https://example.com}, {regex: "https://.*\\\\.example\\\\.org"}]
          allowMethods: [GET, POST, "*"]
          allowHeaders: ["*"]
          maxAge: 24h
        mirrors:
        - destination: {host: reviews-shadow}
          percentage: {value: 10}
        timeout: 10s
        headers:
          request:
            set: {x-request-source: "%DOWNSTREAM_REMOTE_ADDRESS%"}
      - route:
        - destination: {host: reviews, subset: v1}`],
    ['VirtualService with RE2 syntax JavaScript lacks or reads differently', 'VirtualService', `
      hosts: [reviews]
      http:
      - match:
        - uri: {regex: "/api(?i)/users/\\\\pL+"}
          headers:
            end-user: {regex: "(?P<name>[[:alpha:]]+)\\\\z"}
            x-literal: {regex: "\\\\Q*.json\\\\E"}
          queryParams:
            id: {regex: "(?U)[0-9]+"}
        rewrite:
          uriRegexRewrite: {match: "^/api/(?P<rest>.*)$", rewrite: "/\\\\1"}
        route:
        - destination: {host: reviews}`],
    ['DestinationRule with policies at every level', 'DestinationRule', `
      host: reviews.default.svc.cluster.local
      trafficPolicy:
        connectionPool:
          tcp: {maxConnections: 100, connectTimeout: 30ms, idleTimeout: 0s, tcpKeepalive: {time: 7200s, interval: 75s}}
          http: {http2MaxRequests: 1000, maxRequestsPerConnection: 10, idleTimeout: 1h, http2KeepAlive: {interval: 15s, timeout: 5s}}
        outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 50}
        loadBalancer:
          consistentHash: {httpCookie: {name: user, ttl: 0s}, maglev: {tableSize: 65537}}
          localityLbSetting:
            distribute:
            - from: us-west/zone1/*
              to: {us-west/zone1/*: 80, us-west/zone2/*: 20}
        tls: {mode: ISTIO_MUTUAL}
        portLevelSettings:
        - port: {number: 9080}
          loadBalancer: {simple: LEAST_REQUEST}
      subsets:
      - name: v1
        labels: {version: v1, app.kubernetes.io/name: reviews}
        trafficPolicy:
          loadBalancer: {simple: ROUND_ROBIN}
      exportTo: [".", istio-system]`],
  ])('%s', (_title, kind, spec) => {
    const yaml = resource(kind, spec);
    expect(problems(yaml)).toEqual([]);
    expect(problems(yaml, 'warning')).toEqual([]);
  });


});
