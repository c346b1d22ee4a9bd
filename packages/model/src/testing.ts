import { KindRegistry } from './config/kinds.ts';
import { arr, duration, enumOf, int32, type KindSchema, obj, str, strMap, uint32 } from './schema/dsl.ts';

/** A small kind for tests of the loader and stores, independent of the real API schemas. */
export const widgetKind: KindSchema = {
  group: 'test.weft.dev',
  kind: 'Widget',
  versions: ['v1alpha1', 'v1'],
  plural: 'widgets',
  scope: 'Namespaced',
  crd: true,
  spec: obj(
    'WidgetSpec',
    {
      hosts: arr(str()),
      port: uint32(),
      weight: int32('Share of traffic.', { minimum: 0, maximum: 100 }),
      mode: enumOf(['ON', 'OFF']),
      timeout: duration(),
      labels: strMap(),
      match: obj('WidgetMatch', { exact: str(), prefix: str(), regex: str() }, { oneOf: [['exact'], ['prefix'], ['regex']] }),
      routes: arr(obj('WidgetRoute', { name: str(), weight: int32() }, { required: ['name'] })),
    },
  ),
};

export const testRegistry = (): KindRegistry => new KindRegistry([widgetKind]);
