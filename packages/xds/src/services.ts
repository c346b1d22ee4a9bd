import { type ChannelCredentials, type ChannelOptions, makeGenericClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import type {
  AggregatedDiscoveryServiceClient,
  AggregatedDiscoveryServiceDefinition,
} from './generated/envoy/service/discovery/v3/AggregatedDiscoveryService.ts';
import type { SecretDiscoveryServiceClient, SecretDiscoveryServiceDefinition } from './generated/envoy/service/secret/v3/SecretDiscoveryService.ts';
import { loadEnvoyProtos, serviceDefinitionOf } from './protos.ts';

export const adsServiceName = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const sdsServiceName = 'envoy.service.secret.v3.SecretDiscoveryService';

const services = new Map<string, ServiceDefinition>();

function service<T extends ServiceDefinition>(name: string): T {
  let def = services.get(name);
  if (!def) {
    const built = serviceDefinitionOf(loadEnvoyProtos().root, name);
    if (!built) throw new Error(`${name} is not a service in the loaded protos`);
    def = built as unknown as ServiceDefinition;
    services.set(name, def);
  }
  return def as T;
}

/** ADS (`StreamAggregatedResources`, `DeltaAggregatedResources`), for `server.addService`. */
export function adsServiceDefinition(): AggregatedDiscoveryServiceDefinition {
  return service(adsServiceName);
}

/** SDS (`StreamSecrets`, `FetchSecrets`, `DeltaSecrets`), for `server.addService`. */
export function sdsServiceDefinition(): SecretDiscoveryServiceDefinition {
  return service(sdsServiceName);
}

/** A typed ADS client. `target` is a gRPC target: `host:port`, `unix:/path`. */
export function createAdsClient(target: string, credentials: ChannelCredentials, options?: ChannelOptions): AggregatedDiscoveryServiceClient {
  const Client = makeGenericClientConstructor(adsServiceDefinition(), 'AggregatedDiscoveryService');
  return new Client(target, credentials, options) as unknown as AggregatedDiscoveryServiceClient;
}

/** A typed SDS client. `target` is a gRPC target: `host:port`, `unix:/path`. */
export function createSdsClient(target: string, credentials: ChannelCredentials, options?: ChannelOptions): SecretDiscoveryServiceClient {
  const Client = makeGenericClientConstructor(sdsServiceDefinition(), 'SecretDiscoveryService');
  return new Client(target, credentials, options) as unknown as SecretDiscoveryServiceClient;
}
