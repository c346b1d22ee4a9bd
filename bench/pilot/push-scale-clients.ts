// Simulated remote proxies for push-scale.ts, in a process of their own so that what the bench
// measures is pilot's cost, not theirs. Each client holds one ADS stream as weft-proxy does
// (`--mode delta`: delta xDS with VHDS, the virtual hosts of its route configurations as
// resources of their own; `--mode sotw`: state of the world, as weft-proxy spoke before, and as
// Envoy-style and proxyless clients still do). Responses are never decoded: a client reads the
// nonce and type and ACKs, counting the bytes. Only what a client needs to subscribe is read:
// cluster names and types (EDS) and the route names of listeners (RDS), once per distinct bytes.
//   node push-scale-clients.ts --target 127.0.0.1:15010 --clients 1000 --mode delta
// Speaks JSON lines: prints {"msg":"ready"} once every client has ACKed all its types; a line
// `watch <type-url>` on stdin starts a window; `report` prints, per client, the time of its last
// ACK since the window began and whether it ACKed a response of that type, and the bytes received.
import { nodeId } from '@weft/mesh';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import http2 from 'node:http2';
import { ClientFeature, encodeMessage, TypeUrl } from '@weft/xds';
import { clusterNameAndType, edsType, namespace, routeNames } from './support.ts';

const { values } = parseArgs({ options: { target: { type: 'string' }, clients: { type: 'string', default: '1000' }, mode: { type: 'string', default: 'delta' } } });
const target = values.target!;
const count = Number(values.clients);
const mode = values.mode === 'sotw' ? 'sotw' : 'delta';
const VirtualHostType = 'type.googleapis.com/envoy.config.route.v3.VirtualHost';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

// ------------------------------------------------------------------ protobuf, just enough

interface Field {
  field: number;
  start: number;
  end: number;
}

function fields(buf: Buffer, from = 0, to = buf.length): Field[] {
  const out: Field[] = [];
  let pos = from;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (pos < to) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      out.push({ field: Math.floor(tag / 8), start: pos, end: pos + len });
      pos += len;
    } else break;
  }
  return out;
}

interface Response {
  typeUrl: string;
  nonce: string;
  /** Each resource's Any (type_url, value bytes). */
  resources: { typeUrl: string; value: Buffer }[];
}

/** DiscoveryResponse and DeltaDiscoveryResponse share type_url = 4 and nonce = 5; resources = 2 (an Any, or a Resource wrapping one at 2). */
function readResponse(buf: Buffer, delta: boolean, wantResources: (typeUrl: string) => boolean): Response {
  const r: Response = { typeUrl: '', nonce: '', resources: [] };
  const all = fields(buf);
  for (const f of all) {
    if (f.field === 4) r.typeUrl = buf.toString('utf8', f.start, f.end);
    else if (f.field === 5) r.nonce = buf.toString('utf8', f.start, f.end);
  }
  if (!wantResources(r.typeUrl)) return r;
  for (const f of all) {
    if (f.field !== 2) continue;
    let any = f;
    if (delta) {
      const inner = fields(buf, f.start, f.end).find((x) => x.field === 2);
      if (!inner) continue;
      any = inner;
    }
    let typeUrl = '';
    let value: Buffer = Buffer.alloc(0);
    for (const x of fields(buf, any.start, any.end)) {
      if (x.field === 1) typeUrl = buf.toString('utf8', x.start, x.end);
      else if (x.field === 2) value = buf.subarray(x.start, x.end);
    }
    r.resources.push({ typeUrl, value });
  }
  return r;
}

/** A protobuf string field: tag, length, bytes (strings here are far shorter than 2 MiB). */
function stringField(field: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const head: number[] = [field * 8 + 2];
  let n = bytes.length;
  while (n >= 0x80) {
    head.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  head.push(n);
  return Buffer.concat([Buffer.from(head), bytes]);
}

// ------------------------------------------------------------------ clients

/**
 * One gRPC stream over its own HTTP/2 connection (as each sidecar has), spoken directly on
 * node:http2: a 5-byte prefix (not compressed, length) before each message. grpc-js's client
 * machinery per message cost the clients more than the server's push cost it, and the clients'
 * time shows in every convergence figure.
 */
class RawGrpcStream {
  readonly #session: http2.ClientHttp2Session;
  readonly #stream: http2.ClientHttp2Stream;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #onMessage: ((message: Buffer) => void) | undefined;
  #onError: ((err: Error) => void) | undefined;

  constructor(method: string) {
    // 16 MiB, as the grpc-js clients of ads.ts ask (grpc-node.flow_control_window): a bigger window lets weftd hand more to the kernel at once.
    const window = 16 * 1024 * 1024;
    this.#session = http2.connect(`http://${target}`, { settings: { initialWindowSize: window } });
    this.#session.on('connect', () => this.#session.setLocalWindowSize(window));
    this.#session.on('error', (err) => this.#onError?.(err));
    this.#stream = this.#session.request({
      ':method': 'POST',
      ':path': `/envoy.service.discovery.v3.AggregatedDiscoveryService/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.#stream.on('data', (chunk: Buffer) => this.#read(chunk));
    this.#stream.on('error', (err) => this.#onError?.(err));
    this.#stream.on('trailers', (t) => {
      if (t['grpc-status'] && t['grpc-status'] !== '0') this.#onError?.(new Error(`grpc-status ${String(t['grpc-status'])}: ${String(t['grpc-message'] ?? '')}`));
    });
  }

  onMessage(handler: (message: Buffer) => void): void {
    this.#onMessage = handler;
  }

  onError(handler: (err: Error) => void): void {
    this.#onError = handler;
  }

  write(message: Buffer): void {
    const head = Buffer.allocUnsafe(5);
    head[0] = 0;
    head.writeUInt32BE(message.length, 1);
    this.#stream.write(Buffer.concat([head, message]));
  }

  #read(chunk: Buffer): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    while (this.#pendingBytes >= 5) {
      if (this.#pending[0]!.length < 5) this.#pending = [Buffer.concat(this.#pending)];
      const length = this.#pending[0]!.readUInt32BE(1);
      // Joined only once the whole message is here (a route configuration arrives in many chunks).
      if (this.#pendingBytes < 5 + length) return;
      const buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
      const message = buf.subarray(5, 5 + length);
      const rest = buf.subarray(5 + length);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#pendingBytes = rest.length;
      this.#onMessage?.(message);
    }
  }

  close(): void {
    this.#stream.close();
    this.#session.close();
  }
}

const needed = mode === 'delta' ? [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, VirtualHostType] : [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];

/** Encoded subscriptions, shared by every client with the same one (a thousand EDS names in every SotW ACK). */
const encodedNames = new Map<string, Buffer>();
function sotwNames(names: readonly string[]): Buffer {
  const key = names.join('\n');
  let b = encodedNames.get(key);
  if (!b) {
    b = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { resource_names: [...names] });
    encodedNames.set(key, b);
  }
  return b;
}

class SimulatedProxy {
  readonly #stream: RawGrpcStream;
  readonly #names = new Map<string, string[]>();
  readonly acked = new Set<string>();
  failed: string | undefined;
  bytes = 0;
  /** The current window: last ACK time and whether a response of the watched type came. */
  lastAck = 0;
  sawType = false;

  constructor(i: number) {
    this.#stream = new RawGrpcStream(mode === 'delta' ? 'DeltaAggregatedResources' : 'StreamAggregatedResources');
    const ip = `127.200.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    const node = {
      id: nodeId({ type: 'sidecar', ip, pod: `client-${i}`, namespace }),
      metadata: { fields: { NAMESPACE: { string_value: namespace } } },
      user_agent_name: 'weft-proxy',
      ...(mode === 'delta' ? { client_features: [ClientFeature.vhds] } : {}),
    };
    this.#stream.onMessage((b) => this.#onResponse(b));
    this.#stream.onError((err) => {
      this.failed = err.message;
    });
    this.#subscribe(TypeUrl.Cluster, [], node);
    this.#subscribe(TypeUrl.Listener, []);
  }

  #subscribe(type: string, names: readonly string[], node?: object): void {
    if (mode === 'delta') {
      this.#stream.write(encodeMessage('envoy.service.discovery.v3.DeltaDiscoveryRequest', { type_url: type, resource_names_subscribe: [...names], ...(node ? { node } : {}) }));
      return;
    }
    this.#names.set(type, [...names]);
    // The first request of a type has no nonce; later name changes ride on the last one.
    const head = encodeMessage('envoy.service.discovery.v3.DiscoveryRequest', { type_url: type, response_nonce: this.#nonces.get(type) ?? '', ...(node ? { node } : {}) });
    this.#stream.write(names.length ? Buffer.concat([head, sotwNames(names)]) : head);
  }

  readonly #nonces = new Map<string, string>();

  #ack(type: string, nonce: string): void {
    // Written by hand: an ACK is a type URL and a nonce (delta: fields 2 and 6; SotW: 4 and 5).
    if (mode === 'delta') {
      this.#stream.write(Buffer.concat([stringField(2, type), stringField(6, nonce)]));
      return;
    }
    this.#nonces.set(type, nonce);
    const head = Buffer.concat([stringField(4, type), stringField(5, nonce)]);
    const names = this.#names.get(type) ?? [];
    this.#stream.write(names.length ? Buffer.concat([head, sotwNames(names)]) : head);
  }

  #onResponse(buf: Buffer): void {
    this.bytes += buf.length;
    const r = readResponse(buf, mode === 'delta', (t) => t === TypeUrl.Cluster || t === TypeUrl.Listener);
    this.#ack(r.typeUrl, r.nonce);
    this.acked.add(r.typeUrl);
    this.lastAck = now();
    if (r.typeUrl === watchType) this.sawType = true;
    if (r.typeUrl === TypeUrl.Cluster) {
      const eds = r.resources.map((a) => clusterNameAndType(a.value)).filter((c) => c.type === edsType).map((c) => c.name);
      this.#follow(TypeUrl.ClusterLoadAssignment, eds);
    } else if (r.typeUrl === TypeUrl.Listener) {
      const rds = [...new Set(r.resources.flatMap((a) => routeNames({ type_url: a.typeUrl, value: a.value })))];
      const first = !this.#names.has(TypeUrl.RouteConfiguration);
      this.#follow(TypeUrl.RouteConfiguration, rds);
      // weft-proxy asks for the virtual hosts of its route configurations (all of them: `*`).
      if (first && mode === 'delta') this.#subscribe(VirtualHostType, ['*']);
    }
  }

  /** Subscribes to names not yet subscribed (delta: the additions; SotW: the whole new list). */
  #follow(type: string, names: string[]): void {
    const before = this.#names.get(type) ?? [];
    const known = new Set(before);
    const added = names.filter((n) => !known.has(n)).sort();
    if (added.length === 0 && this.#names.has(type)) return;
    if (mode === 'delta') {
      this.#names.set(type, [...before, ...added]);
      this.#subscribe(type, added);
    } else this.#subscribe(type, [...before, ...added].sort());
  }

  get complete(): boolean {
    return needed.every((t) => this.acked.has(t));
  }

  close(): void {
    this.#stream.close();
  }
}

let watchType = '';
const clients: SimulatedProxy[] = [];
for (let i = 0; i < count; i++) clients.push(new SimulatedProxy(i));
const print = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

const readyTimer = setInterval(() => {
  const failed = clients.filter((c) => c.failed);
  if (clients.every((c) => c.complete || c.failed)) {
    clearInterval(readyTimer);
    print({ msg: 'ready', at: now(), failed: failed.length, error: failed[0]?.failed, bytes: clients.reduce((n, c) => n + c.bytes, 0) });
  }
}, 20);

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'watch') {
    watchType = arg ?? '';
    for (const c of clients) {
      c.lastAck = 0;
      c.sawType = false;
      c.bytes = 0;
    }
    print({ msg: 'watching', type: watchType });
  } else if (cmd === 'report') {
    print({ msg: 'report', acks: clients.map((c) => (c.sawType ? c.lastAck : 0)), bytes: clients.reduce((n, c) => n + c.bytes, 0), failed: clients.filter((c) => c.failed).length });
  } else if (cmd === 'progress') {
    print({ msg: 'progress', saw: clients.filter((c) => c.sawType).length, last: Math.max(0, ...clients.map((c) => c.lastAck)) });
  }
});
input.on('close', () => {
  for (const c of clients) c.close();
  process.exit(0);
});
