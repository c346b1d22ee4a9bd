// Validation throughput on a generated 5,000-resource corpus of the kinds users apply most.
// Prints resources per second for validation (structure and Istio's rules), for YAML parsing, and both.
// Goal (issue 2): at least 20,000 resources/s validated on the 2-core CI machine.
import { performance } from 'node:perf_hooks';
import { decodeResource, defaultKindRegistry, parseYamlDocuments } from '@weft/model';
import { validateLoaded } from '@weft/galley';

const N = Number(process.env.BENCH_RESOURCES ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

function resource(i: number): string {
  const ns = `team-${i % 50}`;
  const svc = `svc-${i}`;
  switch (i % 6) {
    case 0:
      return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${svc}, namespace: ${ns}}
spec:
  hosts: [${svc}]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
      uri: {prefix: /api}
    fault: {delay: {percentage: {value: 10}, fixedDelay: 7s}}
    route:
    - destination: {host: ${svc}, subset: v2}
  - route:
    - destination: {host: ${svc}, subset: v1, port: {number: 9080}}
      weight: 80
    - destination: {host: ${svc}, subset: v3, port: {number: 9080}}
      weight: 20
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
    timeout: 10s
`;
    case 1:
      return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${svc}, namespace: ${ns}}
spec:
  host: ${svc}
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    connectionPool: {tcp: {maxConnections: 100}, http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 1}}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}}
  - {name: v3, labels: {version: v3}}
`;
    case 2:
      return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-${i}, namespace: ${ns}}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["${svc}.example.com"]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["${svc}.example.com"]
    tls: {mode: SIMPLE, credentialName: ${svc}-cert}
`;
    case 3:
      return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${svc}, namespace: ${ns}}
spec:
  hosts: [${svc}.external.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
`;
    case 4:
      return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${svc}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: ${svc}}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/${ns}/sa/frontend"]}}]
    to: [{operation: {methods: [GET, POST], paths: ["/api/*"]}}]
    when: [{key: "request.headers[x-tenant]", values: [a, b]}]
`;
    default:
      return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${svc}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: ${svc}}}
  mtls: {mode: STRICT}
  portLevelMtls: {"8080": {mode: PERMISSIVE}}
`;
  }
}

const corpus = Array.from({ length: N }, (_, i) => resource(i)).join('---\n');
const opts = { registry: defaultKindRegistry() };
console.log(`corpus: ${N} resources, ${(corpus.length / 1024 / 1024).toFixed(2)} MiB of YAML, ${ROUNDS} rounds`);

let parseMs = Number.POSITIVE_INFINITY;
let validateMs = Number.POSITIVE_INFINITY;
let invalid = 0;
for (let round = 0; round < ROUNDS; round++) {
  const t0 = performance.now();
  const { documents, problems } = parseYamlDocuments(corpus, 'corpus.yaml');
  const t1 = performance.now();
  invalid = 0;
  for (const d of documents) if (!validateLoaded(decodeResource(d, opts)).valid) invalid++;
  const t2 = performance.now();
  if (documents.length !== N) throw new Error(`parsed ${documents.length} of ${N}: ${JSON.stringify(problems.slice(0, 3))}`);
  parseMs = Math.min(parseMs, t1 - t0);
  validateMs = Math.min(validateMs, t2 - t1);
}
if (invalid > 0) throw new Error(`${invalid} corpus resources were invalid; the corpus must be valid`);
const rate = (ms: number) => Math.round((N / ms) * 1000).toLocaleString('en-US');
console.log(`validate (structure + Istio rules): ${rate(validateMs)} resources/s  (${validateMs.toFixed(0)} ms, best of ${ROUNDS})`);
console.log(`parse YAML:                          ${rate(parseMs)} resources/s  (${parseMs.toFixed(0)} ms, best of ${ROUNDS})`);
console.log(`end to end (parse + validate):       ${rate(parseMs + validateMs)} resources/s`);
console.log('goal: >= 20,000 resources/s validated');
