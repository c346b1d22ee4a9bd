// `exportTo`, as Istio's push context reads it for ServiceEntries, VirtualServices,
// DestinationRules and the Service annotation: `*` everyone (it wins over anything else in the
// list), `~` no one (when no `*`), `.` the config's own namespace, anything else a namespace by name.
// No list (or an empty one) takes the mesh's default for the kind (MeshConfig's
// defaultServiceExportTo, defaultVirtualServiceExportTo, defaultDestinationRuleExportTo), and
// without one, everyone.

/** The annotation that scopes a Kubernetes Service's visibility (`networking.istio.io/exportTo: ".,other"`). */
export const ExportToAnnotation = 'networking.istio.io/exportTo';

/** Who sees a config: `*` (everyone) or the namespaces by name; empty is no one. */
export type ExportScope = ReadonlySet<string>;

const everyone: ExportScope = new Set(['*']);

/** The namespaces `exportTo` of a config in `namespace` makes it visible to; `defaultExportTo` when it gives none. */
export function exportScope(exportTo: readonly string[] | undefined, namespace: string, defaultExportTo?: readonly string[]): ExportScope {
  if ((!exportTo || exportTo.length === 0) && defaultExportTo && defaultExportTo.length > 0) return exportScope(defaultExportTo, namespace);
  if (!exportTo || exportTo.length === 0 || exportTo.includes('*')) return everyone;
  if (exportTo.includes('~')) return new Set();
  return new Set(exportTo.map((e) => (e === '.' ? namespace : e)));
}

/** Whether a config with this scope is visible from `namespace`. */
export function isExportedTo(scope: ExportScope, namespace: string): boolean {
  return scope.has('*') || scope.has(namespace);
}
