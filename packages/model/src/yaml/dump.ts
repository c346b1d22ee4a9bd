// Writing resources back as YAML (`weftctl apply` keeps each applied object in a file of its own).
import jsyaml from 'js-yaml';

/** `value` as block-style YAML, the way it would be read back (core schema: strings that look like numbers or booleans are quoted). */
export function toYaml(value: unknown): string {
  return jsyaml.dump(value, { schema: jsyaml.CORE_SCHEMA, noRefs: true, lineWidth: -1, sortKeys: false });
}
