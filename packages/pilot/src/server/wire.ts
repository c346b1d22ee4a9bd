// DiscoveryResponse and DeltaDiscoveryResponse written as protobuf bytes by hand. Every proxy of a
// kind gets the same resources with a different nonce; encoding each resource once and splicing
// the shared bytes into each response saves re-encoding megabytes per proxy per push.
// A protobuf message is the concatenation of its encoded fields, in any order.
import { type Any__Output, type DiscoveryRequest__Output, encodeMessage, type Node__Output, type RouteConfiguration, type Status__Output, type VirtualHost } from '@weft/xds';

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** A length-delimited field (wire type 2): tag, length, payload. */
export function bytesField(field: number, payload: Uint8Array): Buffer {
  const tag = field * 8 + 2;
  const out = Buffer.allocUnsafe(varintSize(tag) + varintSize(payload.length) + payload.length);
  let pos = writeVarint(out, 0, tag);
  pos = writeVarint(out, pos, payload.length);
  out.set(payload, pos);
  return out;
}

export function stringField(field: number, value: string): Buffer {
  return value === '' ? Buffer.alloc(0) : bytesField(field, Buffer.from(value, 'utf8'));
}

/** google.protobuf.Any: type_url = 1, value = 2. */
export function anyBytes(any: Any__Output): Buffer {
  return Buffer.concat([stringField(1, any.type_url), bytesField(2, any.value)]);
}

// DiscoveryResponse: version_info = 1, resources = 2, type_url = 4, nonce = 5.
// DeltaDiscoveryResponse: system_version_info = 1, resources = 2, type_url = 4, nonce = 5, removed_resources = 6.
// Resource: version = 1, resource = 2, name = 3.

/** One element of DiscoveryResponse.resources. */
export function sotwResourceField(any: Any__Output): Buffer {
  return bytesField(2, anyBytes(any));
}

/** One element of DeltaDiscoveryResponse.resources: a Resource with name, version and the Any. */
export function deltaResourceField(name: string, version: string, any: Any__Output): Buffer {
  return bytesField(2, Buffer.concat([stringField(1, version), bytesField(2, anyBytes(any)), stringField(3, name)]));
}

/** A DiscoveryResponse around already-encoded resource fields. */
export function sotwResponse(version: string, resources: readonly Buffer[], typeUrl: string, nonce: string): Buffer {
  return Buffer.concat([stringField(1, version), ...resources, stringField(4, typeUrl), stringField(5, nonce)]);
}

/** A DeltaDiscoveryResponse around already-encoded resource fields. */
export function deltaResponse(version: string, resources: readonly Buffer[], typeUrl: string, removed: readonly string[], nonce: string): Buffer {
  return Buffer.concat([stringField(1, version), ...resources, stringField(4, typeUrl), stringField(5, nonce), ...removed.map((r) => bytesField(6, Buffer.from(r, 'utf8')))]);
}

// ------------------------------------------------------------------ route configurations

// RouteConfiguration: virtual_hosts = 2. A sidecar's route configuration holds a virtual host per
// service and VirtualService host; with thousands of VirtualServices, encoding it through
// protobufjs for every proxy (objects to messages to bytes, megabytes each) was most of a push's
// CPU and garbage. Translation shares the route lists of a VirtualService between proxies alike
// in what routes read, so a virtual host's bytes are kept per route list and per the rest of the
// virtual host (its name and domains), and each proxy's configuration is spliced from them.

const virtualHostCache = new WeakMap<object, Map<string, Buffer>>();

/** A virtual host as RouteConfiguration field 2 (tag, length, message); the message is its tail. */
function virtualHostField(vh: VirtualHost): Buffer {
  const routes = vh.routes;
  if (!routes || routes.length === 0) return bytesField(2, encodeMessage('envoy.config.route.v3.VirtualHost', vh));
  const { routes: _routes, name, domains, include_request_attempt_count, ...rest } = vh;
  // Name and domains are all most virtual hosts have besides routes; anything else goes in whole.
  let key = `${name ?? ''}\u0000${(domains ?? []).join('\u0001')}\u0000${include_request_attempt_count ? 1 : 0}`;
  for (const _ in rest) {
    key += JSON.stringify(rest);
    break;
  }
  let byRest = virtualHostCache.get(routes);
  if (!byRest) {
    byRest = new Map();
    virtualHostCache.set(routes, byRest);
  }
  let bytes = byRest.get(key);
  if (!bytes) {
    bytes = bytesField(2, encodeMessage('envoy.config.route.v3.VirtualHost', vh));
    byRest.set(key, bytes);
  }
  return bytes;
}

/** A virtual host's message bytes (a VHDS resource): the field from the same cache without its tag and length. */
export function virtualHostBytes(vh: VirtualHost): Buffer {
  const field = virtualHostField(vh);
  let pos = 1;
  while ((field[pos]! & 0x80) !== 0) pos++;
  return field.subarray(pos + 1);
}

/**
 * A RouteConfiguration's bytes: the other fields through protobufjs, each virtual host from the
 * cache. A step generator: it pauses every 64 virtual hosts, so that a caller can yield to the
 * event loop while the first proxy's thousands of virtual hosts are encoded.
 */
export function* routeConfigurationSteps(rc: RouteConfiguration): Generator<void, Buffer, void> {
  const { virtual_hosts, ...rest } = rc;
  const parts = [encodeMessage('envoy.config.route.v3.RouteConfiguration', rest)];
  let n = 0;
  for (const vh of virtual_hosts ?? []) {
    parts.push(virtualHostField(vh));
    if (++n % 64 === 0) yield;
  }
  return Buffer.concat(parts);
}

/** Runs a step generator to its end. */
export function drain<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export function encodeRouteConfiguration(rc: RouteConfiguration): Buffer {
  return drain(routeConfigurationSteps(rc));
}

// ------------------------------------------------------------------ requests

/**
 * A DiscoveryRequest whose resource names are decoded only when read. Envoy repeats its whole EDS
 * subscription (one name per cluster) in every ACK; `namesKey` (the names' encoded bytes) lets the
 * server see that nothing changed without decoding a thousand strings per ACK.
 */
export class LazyDiscoveryRequest implements DiscoveryRequest__Output {
  version_info = '';
  node: Node__Output | null = null;
  type_url = '';
  response_nonce = '';
  error_detail: Status__Output | null = null;
  resource_locators: DiscoveryRequest__Output['resource_locators'] = [];
  /** The encoded resource_names fields, as a string: equal keys, equal names in equal order. */
  namesKey = '';
  readonly #buf: Buffer;
  readonly #ranges: number[] = [];
  #names: string[] | undefined;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  get resource_names(): string[] {
    if (!this.#names) {
      const names: string[] = [];
      for (let i = 0; i < this.#ranges.length; i += 2) names.push(this.#buf.toString('utf8', this.#ranges[i], this.#ranges[i + 1]));
      this.#names = names;
    }
    return this.#names;
  }

  /** @internal */
  addName(start: number, end: number): void {
    this.#ranges.push(start, end);
  }
}

function readVarint(buf: Buffer, pos: number): [number, number] {
  let v = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new RangeError('truncated varint');
    const b = buf[pos++]!;
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [v, pos];
    shift += 7;
    if (shift > 63) throw new RangeError('varint too long');
  }
}

/**
 * Decodes a DiscoveryRequest (version_info = 1, node = 2, resource_names = 3, type_url = 4,
 * response_nonce = 5, error_detail = 6); node and error_detail go through the usual decoder.
 * Throws on malformed input (the caller falls back to the generated decoder for its error).
 */
export function decodeDiscoveryRequest(buf: Buffer, decodeNested: { node(b: Buffer): Node__Output; status(b: Buffer): Status__Output }): LazyDiscoveryRequest {
  const req = new LazyDiscoveryRequest(buf);
  let pos = 0;
  let namesStart = -1;
  let namesEnd = -1;
  let namesContiguous = true;
  while (pos < buf.length) {
    const tagStart = pos;
    let tag: number;
    [tag, pos] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      [, pos] = readVarint(buf, pos);
      continue;
    }
    if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      continue;
    }
    if (wire !== 2) throw new RangeError(`unsupported wire type ${wire}`);
    let len: number;
    [len, pos] = readVarint(buf, pos);
    const end = pos + len;
    if (end > buf.length) throw new RangeError('truncated field');
    switch (field) {
      case 1:
        req.version_info = buf.toString('utf8', pos, end);
        break;
      case 2:
        req.node = decodeNested.node(buf.subarray(pos, end));
        break;
      case 3:
        req.addName(pos, end);
        if (namesStart < 0) namesStart = tagStart;
        else if (namesEnd !== tagStart) namesContiguous = false;
        namesEnd = end;
        break;
      case 4:
        req.type_url = buf.toString('utf8', pos, end);
        break;
      case 5:
        req.response_nonce = buf.toString('utf8', pos, end);
        break;
      case 6:
        req.error_detail = decodeNested.status(buf.subarray(pos, end));
        break;
    }
    pos = end;
  }
  // Names interleaved with other fields (never seen from real clients): key by the decoded names.
  req.namesKey = namesStart < 0 ? '' : namesContiguous ? buf.toString('latin1', namesStart, namesEnd) : req.resource_names.join('\n');
  return req;
}
