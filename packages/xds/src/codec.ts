import type { Type } from 'protobufjs';
import type { Any, Any__Output } from './generated/google/protobuf/Any.ts';
import type { XdsInput, XdsMessageName, XdsOutput } from './messages.ts';
import { conversionOptions, loadEnvoyProtos } from './protos.ts';
import { messageNameOf } from './type-urls.ts';

const types = new Map<string, Type>();

/** The protobufjs reflection type of a full message name; throws for a name the loaded protos lack. */
export function messageType(name: string): Type {
  let type = types.get(name);
  if (!type) {
    type = loadEnvoyProtos().root.lookupType(name);
    types.set(name, type);
  }
  return type;
}

/** Encodes a message, given as a plain object with proto field names, to protobuf bytes. */
export function encodeMessage<N extends string>(name: N, value: XdsInput<N>): Buffer {
  const type = messageType(name);
  const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes protobuf bytes to a plain object in Weft's conversion (see `conversionOptions`). */
export function decodeMessage<N extends string>(name: N, bytes: Uint8Array): XdsOutput<N> {
  const type = messageType(name);
  return type.toObject(type.decode(bytes), conversionOptions) as XdsOutput<N>;
}

/** Wraps a message in a google.protobuf.Any. */
export function encodeAny<U extends string>(
  typeUrl: U,
  value: XdsInput<U extends `${string}/${infer N}` ? N : string>,
): Any__Output & { type_url: U } {
  const name: string = messageNameOf(typeUrl);
  return { type_url: typeUrl, value: encodeMessage(name, value as XdsInput<string>) };
}

/**
 * Unwraps a google.protobuf.Any. With `expected`, a different type URL is an error and the result
 * is typed; without it, the result is typed as the union of the known messages.
 */
export function decodeAny<U extends string = `type.googleapis.com/${XdsMessageName}`>(
  any: Any | Any__Output,
  expected?: U,
): XdsOutput<U extends `${string}/${infer N}` ? N : string> {
  if (!('type_url' in any)) throw new Error('decodeAny: expected {type_url, value}, got an @type object');
  if (expected !== undefined && any.type_url !== expected) {
    throw new Error(`decodeAny: expected ${expected}, got ${any.type_url}`);
  }
  const value = typeof any.value === 'string' ? Buffer.from(any.value, 'base64') : any.value;
  return decodeMessage(messageNameOf(any.type_url), value) as XdsOutput<U extends `${string}/${infer N}` ? N : string>;
}
