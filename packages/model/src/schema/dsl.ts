/**
 * The schema language every Weft kind is written in: a structural OpenAPI v3 subset
 * (what Kubernetes accepts as a CRD `openAPIV3Schema`) plus a few Weft-only keys
 * (prefixed notes below) that the CRD generator strips.
 *
 * From one schema come: the TypeScript types (scripts/generate.ts -> src/generated/types.ts),
 * the CRD manifests (deploy/crds/), and structural validation (structural.ts).
 */
export type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';

export interface Schema {
  type?: SchemaType;
  description?: string;
  /** Object fields. */
  properties?: Readonly<Record<string, Schema>>;
  /** Map values (`additionalProperties: {type: string}` is `Record<string, string>`). */
  additionalProperties?: Schema | boolean;
  items?: Schema;
  /** Allowed string values. */
  enum?: readonly string[];
  /**
   * `int32`, `uint32`, `int64`, `double`, `float`, and Weft-checked string formats:
   * `duration` (Go/protojson duration such as `1.5s`, `10ms`, `1h30m`), `date-time` (RFC 3339).
   */
  format?: string;
  required?: readonly string[];
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  nullable?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  /** Weft-only: the TypeScript interface name generated for this object (Istio's proto message name). */
  name?: string;
  /** Weft-only: groups of fields of which at most one may be set (a proto `oneof`). */
  oneOf?: readonly (readonly string[])[];
}

// Small builders so schemas read like the proto they describe.
type Opts = Omit<Schema, 'type' | 'properties' | 'items'>;

export const str = (description?: string, o: Opts = {}): Schema => ({ type: 'string', ...(description ? { description } : {}), ...o });
export const bool = (description?: string): Schema => ({ type: 'boolean', ...(description ? { description } : {}) });
export const int32 = (description?: string, o: Opts = {}): Schema => ({ type: 'integer', format: 'int32', ...(description ? { description } : {}), ...o });
export const uint32 = (description?: string, o: Opts = {}): Schema => ({ type: 'integer', format: 'uint32', minimum: 0, maximum: 4294967295, ...(description ? { description } : {}), ...o });
export const int64 = (description?: string, o: Opts = {}): Schema => ({ type: 'integer', format: 'int64', ...(description ? { description } : {}), ...o });
export const double = (description?: string, o: Opts = {}): Schema => ({ type: 'number', format: 'double', ...(description ? { description } : {}), ...o });
export const duration = (description?: string): Schema => ({ type: 'string', format: 'duration', ...(description ? { description } : {}) });
export const enumOf = (values: readonly string[], description?: string): Schema => ({ type: 'string', enum: values, ...(description ? { description } : {}) });
export const arr = (items: Schema, description?: string, o: Opts = {}): Schema => ({ type: 'array', items, ...(description ? { description } : {}), ...o });
export const map = (values: Schema, description?: string): Schema => ({ type: 'object', additionalProperties: values, ...(description ? { description } : {}) });
export const strMap = (description?: string): Schema => map({ type: 'string' }, description);
export const anyObject = (description?: string): Schema => ({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true, ...(description ? { description } : {}) });
/** A named object type: `obj('HTTPRoute', {...})` generates `interface HTTPRoute`. */
export const obj = (name: string, properties: Record<string, Schema>, o: Opts = {}): Schema => ({ type: 'object', name, properties, ...o });

/** One API kind and everything the platform needs to know about it. */
export interface KindSchema {
  group: string;
  kind: string;
  /** Served versions, oldest first; the last one is the storage version. */
  versions: readonly string[];
  plural: string;
  singular?: string;
  shortNames?: readonly string[];
  categories?: readonly string[];
  scope: 'Namespaced' | 'Cluster';
  /** Whether a CRD is generated (false for built-in Kubernetes kinds such as Service). */
  crd: boolean;
  /** The spec schema; its `name` is the generated spec type (e.g. `VirtualServiceSpec`). */
  spec: Schema;
  /**
   * The kind has no `spec`: the fields described by `spec` sit at the top level of the object,
   * beside `apiVersion`/`kind`/`metadata` (ServiceAccount, ConfigMap, Secret).
   */
  bodyAtTopLevel?: boolean;
  /** Optional status schema (left open: status is written by controllers). */
  status?: Schema;
  /** kubectl columns. */
  printerColumns?: readonly { name: string; type: string; jsonPath: string; description?: string }[];
}
