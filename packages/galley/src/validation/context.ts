import { type Config, type FieldPath, ProblemList, type SpecByGroupKind } from '@weft/model';

/**
 * What a validator sees: the whole resource, and a way to report problems at paths relative to
 * the spec (`['http', 0, 'route']`), which come out located at the field in the source file.
 */
export class ValidationContext {
  readonly config: Config;
  readonly out: ProblemList;
  /** Where the spec sits in the document: `['spec']`, or `[]` for kinds whose body is top-level. */
  readonly base: FieldPath;

  constructor(config: Config, base: FieldPath = ['spec']) {
    this.config = config;
    this.base = base;
    this.out = new ProblemList(config.source);
  }

  error(path: FieldPath, message: string, code?: string): void {
    this.out.error([...this.base, ...path], message, code);
  }
  warning(path: FieldPath, message: string, code?: string): void {
    this.out.warning([...this.base, ...path], message, code);
  }
  /** A problem at a metadata field (`['name']` -> `metadata.name`). */
  metaError(path: FieldPath, message: string): void {
    this.out.error(['metadata', ...path], message);
  }
}

export type GroupKindWithSpec = keyof SpecByGroupKind;
export type SpecValidator<S> = (spec: S, ctx: ValidationContext) => void;

/** One kind's semantic validator. */
export interface KindValidator {
  readonly groupKind: GroupKindWithSpec;
  /** Groups of kinds share code by composing functions; the table stays explicit. */
  readonly validate: (spec: unknown, ctx: ValidationContext) => void;
}

/** Binds a validator to the spec type of its kind, so the function is checked against the schema's type. */
export function kindValidator<K extends GroupKindWithSpec>(groupKind: K, validate: SpecValidator<SpecByGroupKind[K]>): KindValidator {
  return { groupKind, validate: validate as (spec: unknown, ctx: ValidationContext) => void };
}
