// Certificate signing throughput and latency: through the CA API (in process) and through the
// gRPC signing service over TLS (bootstrap-token authentication, several requests in flight).
// CSRs are made before the timed loops (RSA key generation is slow); a handful of keys is reused
// across CSRs of distinct identities, which costs the CA exactly as much as fresh keys.
// Goal (issue 3): at least 100 certificates/s on the 2-core CI machine.
import { performance } from 'node:perf_hooks';
import { credentials, Metadata } from '@grpc/grpc-js';
import { CaServer, CertificateAuthority, createCaClient, createCsr, generateRsaKeyPair } from '@weft/citadel';
import { silentLogger } from '@weft/model';

const N = Number(process.env.BENCH_CSRS ?? 1000);
const KEYS = Number(process.env.BENCH_KEYS ?? 8);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function report(label: string, latencies: number[], totalMs: number): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  const rate = (latencies.length / totalMs) * 1000;
  console.log(
    `${label.padEnd(34)} ${rate.toFixed(0).padStart(5)} certificates/s   p50 ${percentile(sorted, 50).toFixed(2)} ms   p99 ${percentile(sorted, 99).toFixed(2)} ms   (n=${latencies.length})`,
  );
  return rate;
}

const ca = new CertificateAuthority(await CertificateAuthority.generateRoot(), { logger: silentLogger });
const prepStart = performance.now();
const keys = await Promise.all(Array.from({ length: KEYS }, () => generateRsaKeyPair()));
const requests = Array.from({ length: N }, (_, i) => {
  const sa = `sa-${i}`;
  const id = `spiffe://cluster.local/ns/bench/sa/${sa}`;
  return { id, csr: createCsr(id, keys[i % KEYS]!), token: ca.issueBootstrapToken('bench', sa) };
});
console.log(`prepared ${N} CSRs on ${KEYS} RSA-2048 keys in ${(performance.now() - prepStart).toFixed(0)} ms (not timed)`);

// 1. The CA API, one signature at a time.
for (const r of requests.slice(0, 50)) ca.sign(r.csr, { identity: r.id });
const apiLatencies: number[] = [];
const apiStart = performance.now();
for (const r of requests) {
  const t = performance.now();
  ca.sign(r.csr, { identity: r.id });
  apiLatencies.push(performance.now() - t);
}
const apiRate = report('sign via CA API (sequential)', apiLatencies, performance.now() - apiStart);

// 2. The gRPC service over TLS, client and server in this process (so they share the 2 cores).
const server = await CaServer.start({ ca, port: 0, logger: silentLogger });
// Checked against the serving certificate's `localhost` SAN (an IP as TLS server name draws a Node deprecation warning).
const client = createCaClient(server.address, credentials.createSsl(Buffer.from(ca.rootCertPem)), { 'grpc.ssl_target_name_override': 'localhost' });
function call(r: (typeof requests)[number]): Promise<number> {
  const md = new Metadata();
  md.set('authorization', `Bearer ${r.token}`);
  const t = performance.now();
  return new Promise((resolve, reject) => {
    client.CreateCertificate({ csr: r.csr, validity_duration: 3600 }, md, (err, res) => {
      if (err || !res || res.cert_chain.length !== 2) reject(err ?? new Error('bad response'));
      else resolve(performance.now() - t);
    });
  });
}
for (const r of requests.slice(0, 50)) await call(r);
const grpcLatencies: number[] = [];
const grpcStart = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < requests.length) grpcLatencies.push(await call(requests[next++]!));
  }),
);
const grpcRate = report(`sign via gRPC/TLS (${IN_FLIGHT} in flight)`, grpcLatencies, performance.now() - grpcStart);
const sequential: number[] = [];
const seqStart = performance.now();
for (const r of requests.slice(0, Math.min(300, N))) sequential.push(await call(r));
report('sign via gRPC/TLS (1 in flight)', sequential, performance.now() - seqStart);
client.close();
await server.close();
console.log(`goal: >= 100 certificates/s: ${Math.min(apiRate, grpcRate) >= 100 ? 'met' : 'NOT met'}`);
