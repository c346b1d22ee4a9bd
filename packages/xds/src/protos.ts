// Envoy's protos as shipped inside @grpc/grpc-js-xds (its deps/ folder), loaded once, on first use.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fromJSON, type PackageDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { IConversionOptions, Root, Type } from 'protobufjs';

/**
 * How messages become JavaScript objects, everywhere in Weft: proto field names as written
 * (snake_case, as in Envoy's docs), 64-bit integers and enums as strings, defaults filled in and
 * the name of the set member for each oneof. The generated types assume exactly these options.
 */
export const conversionOptions = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const satisfies IConversionOptions & { keepCase: boolean };

/** The folder holding envoy-api, googleapis, xds (with udpa) and protoc-gen-validate. */
export function envoyProtoDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
}

/** Include directories, relative to `envoyProtoDir()`. */
export const envoyIncludeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'] as const;

/** The Envoy protos Weft uses: everything else comes in only as their imports. */
export const envoyProtoFiles = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'xds/type/v3/typed_struct.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
] as const;

export interface EnvoyProtos {
  /** protobufjs reflection, for encoding and decoding any message by its full name. */
  root: Root;
  /**
   * The same protos as a gRPC package definition (services and message types), built on first
   * use: it doubles the reflection objects, so processes that only need a service or two (the
   * proxy) use `serviceDefinitionOf` instead.
   */
  readonly packageDefinition: PackageDefinition;
}

let loaded: EnvoyProtos | undefined;

/** Parses the Envoy protos (a few hundred milliseconds) the first time it is called; later calls reuse them. */
export function loadEnvoyProtos(): EnvoyProtos {
  if (loaded) return loaded;
  const base = envoyProtoDir();
  const root = loadRoot(
    envoyIncludeDirs.map((d) => join(base, d)),
    envoyProtoFiles,
  );
  let packageDefinition: PackageDefinition | undefined;
  loaded = {
    root,
    get packageDefinition() {
      packageDefinition ??= fromJSON(root.toJSON(), conversionOptions);
      return packageDefinition;
    },
  };
  return loaded;
}

/** One gRPC method as @grpc/grpc-js wants it (what proto-loader would build). */
export interface GrpcMethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: object) => Buffer;
  requestDeserialize: (bytes: Buffer) => object;
  responseSerialize: (value: object) => Buffer;
  responseDeserialize: (bytes: Buffer) => object;
  originalName: string;
}

function serializer(type: Type): (value: object) => Buffer {
  return (value) => {
    const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), conversionOptions);
}

/**
 * A service's gRPC definition straight from the protobufjs root, with Weft's conversion options
 * (the same shape and conversion proto-loader produces, without its second copy of every type).
 */
export function serviceDefinitionOf(root: Root, name: string): Record<string, GrpcMethodDefinition> | undefined {
  const service = root.lookup(name);
  if (!(service instanceof protobuf.Service)) return undefined;
  const out: Record<string, GrpcMethodDefinition> = {};
  for (const m of service.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    out[m.name] = {
      path: `/${name}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: serializer(req),
      requestDeserialize: deserializer(req),
      responseSerialize: serializer(res),
      responseDeserialize: deserializer(res),
      originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
    };
  }
  return out;
}

/** Loads proto files into a fresh protobufjs Root, resolving imports against `includeDirs`. */
export function loadRoot(includeDirs: readonly string[], files: readonly string[]): Root {
  const root = new protobuf.Root();
  const fallback = root.resolvePath.bind(root);
  root.resolvePath = (origin: string, target: string) => {
    if (isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const full = join(dir, target);
      if (existsSync(full)) return full;
    }
    return fallback(origin, target);
  };
  root.loadSync([...files], { keepCase: conversionOptions.keepCase });
  root.resolveAll();
  return root;
}
