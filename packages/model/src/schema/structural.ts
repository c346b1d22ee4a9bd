import { parseDuration } from '@weft/mesh';
import { parseTimestamp } from '../config/order.ts';
import type { FieldPath, ProblemList } from '../problem.ts';
import type { Schema } from './dsl.ts';

const intRanges: Record<string, [number, number]> = {
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function article(type: string): string {
  return type === 'object' || type === 'integer' || type === 'array' ? `an ${type === 'array' ? 'list' : type}` : `a ${type}`;
}

/** Nearest known names to `name`, for "did you mean" hints. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  const lower = name.toLowerCase();
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase());
    if (d < bestScore) {
      bestScore = d;
      best = k;
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/**
 * Checks `value` against `schema` the way the Kubernetes API server checks a structural CRD
 * schema: types, enums, unknown fields, formats, ranges and oneof exclusivity. Every problem is
 * collected; nothing stops at the first. `null` counts as unset, as it does for protojson.
 */
export function validateStructure(schema: Schema, value: unknown, path: FieldPath, out: ProblemList): void {
  if (value === null || value === undefined) return;
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value === 'number' ? !Number.isInteger(value) : typeof value !== 'string') {
      out.error(path, `expected an integer or a string, got ${describe(value)}`);
    }
    return;
  }
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.error(path, `expected an object, got ${describe(value)}`);
        return;
      }
      const obj = value as Record<string, unknown>;
      const props = schema.properties;
      if (props) {
        for (const key of Object.keys(obj)) {
          const sub = props[key];
          if (sub) validateStructure(sub, obj[key], [...path, key], out);
          else if (!schema['x-kubernetes-preserve-unknown-fields']) {
            const hint = suggest(key, Object.keys(props));
            out.error([...path, key], `unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
          }
        }
      } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        const sub = schema.additionalProperties;
        for (const key of Object.keys(obj)) validateStructure(sub, obj[key], [...path, key], out);
      }
      for (const req of schema.required ?? []) {
        if (obj[req] === undefined || obj[req] === null) out.error([...path, req], `required field "${req}" is missing`);
      }
      if (schema.oneOf) {
        const set = schema.oneOf.filter((alt) => alt.some((f) => obj[f] !== undefined && obj[f] !== null));
        if (set.length > 1) {
          const names = set.map((alt) => alt.find((f) => obj[f] !== undefined && obj[f] !== null)!);
          out.error([...path, names[1]!], `only one of ${schema.oneOf.map((a) => a.join('/')).join(', ')} may be set, found ${names.join(' and ')}`);
        }
      }
      return;
    }
    case 'array': {
      if (!Array.isArray(value)) {
        out.error(path, `expected a list, got ${describe(value)}`);
        return;
      }
      if (schema.minItems !== undefined && value.length < schema.minItems) out.error(path, `must have at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) out.error(path, `must have at most ${schema.maxItems} items, has ${value.length}`);
      if (schema.items) for (let i = 0; i < value.length; i++) validateStructure(schema.items, value[i], [...path, i], out);
      return;
    }
    case 'string': {
      if (typeof value !== 'string') {
        out.error(path, `expected a string, got ${describe(value)}`);
        return;
      }
      if (schema.enum && !schema.enum.includes(value)) {
        out.error(path, `${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
      } else if (schema.format === 'duration' && parseDuration(value) === undefined) {
        out.error(path, `${JSON.stringify(value)} is not a duration (use a number and a unit: 10ms, 1.5s, 2m, 1h)`);
      } else if (schema.format === 'date-time' && parseTimestamp(value) === undefined) {
        out.error(path, `${JSON.stringify(value)} is not an RFC 3339 time (such as 2024-05-01T12:00:00Z)`);
      }
      if (schema.minLength !== undefined && value.length < schema.minLength) out.error(path, `must be at least ${schema.minLength} characters`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) out.error(path, `must be at most ${schema.maxLength} characters, is ${value.length}`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) out.error(path, `${JSON.stringify(value)} does not match ${schema.pattern}`);
      return;
    }
    case 'integer':
    case 'number': {
      let n = value;
      // protojson writes 64-bit integers as strings.
      if (typeof n === 'string' && schema.format === 'int64' && /^-?\d+$/.test(n)) n = Number(n);
      if (typeof n !== 'number' || Number.isNaN(n)) {
        out.error(path, `expected ${article(schema.type)}, got ${describe(value)}`);
        return;
      }
      if (schema.type === 'integer' && !Number.isInteger(n)) {
        out.error(path, `expected an integer, got ${n}`);
        return;
      }
      const range = schema.format ? intRanges[schema.format] : undefined;
      const min = schema.minimum ?? range?.[0];
      const max = schema.maximum ?? range?.[1];
      if (min !== undefined && n < min) out.error(path, `${n} is below the minimum ${min}`);
      else if (max !== undefined && n > max) out.error(path, `${n} is above the maximum ${max}`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') out.error(path, `expected a boolean (true or false), got ${describe(value)}`);
      return;
    default:
      return;
  }
}
