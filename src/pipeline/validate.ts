// Validates every event against schemas/event.schema.json before it is stored; invalid ones are counted, logged, dropped.
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { CATEGORY_NAMES, type CategoryName } from '../api/policy.js';
import type { DcpEvent } from '../api/event.js';
import { eventSchema } from './schema.js';
import { silentLog, type Log } from '../observability/log.js';
import { counter, type Registry } from '../observability/metrics.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives as the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

let compiled: ValidateFunction | undefined;

function compiledValidator(): ValidateFunction {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: false });
  addFormats(ajv);
  compiled = ajv.compile(eventSchema());
  return compiled;
}

export type Validation = { ok: true; event: DcpEvent } | { ok: false; problems: string[] };

function describe(e: ErrorObject): string {
  const where = e.instancePath || '/';
  const extra = e.params['additionalProperty'];
  // Naming the extra key tells the collector author what to remove; values are never logged.
  if (typeof extra === 'string') return `${where} must not have property '${extra.slice(0, 64)}'`;
  return `${where} ${e.message ?? 'is invalid'}`;
}

/** Pure check: the schema, plus what JSON Schema cannot say without $data. */
export function validateEvent(candidate: unknown): Validation {
  const validate = compiledValidator();
  if (!validate(candidate)) {
    // if/then failures repeat the inner error; keep the messages that say something.
    const problems = [...new Set((validate.errors ?? []).filter((e) => e.keyword !== 'if').map(describe))];
    return { ok: false, problems };
  }
  const event = candidate as DcpEvent;
  if (event.name === 'DailyAggregate' && event.data['category'] !== event.category) {
    return { ok: false, problems: ['/data/category must equal /category'] };
  }
  return { ok: true, event };
}

/** A label value for a possibly bogus category, keeping metric cardinality bounded. */
export function categoryLabel(candidate: unknown): CategoryName | 'unknown' {
  const c = typeof candidate === 'object' && candidate !== null ? (candidate as { category?: unknown }).category : undefined;
  return CATEGORY_NAMES.find((n) => n === c) ?? 'unknown';
}

export interface EventValidatorOptions {
  readonly registry?: Registry;
  readonly log?: Log;
}

/** The pipeline stage: validateEvent plus the `dcp_events_invalid_total` counter and a log line. */
export class EventValidator {
  private readonly invalid;
  private readonly log: Log;

  constructor(options: EventValidatorOptions = {}) {
    this.invalid = counter(options.registry, 'dcp_events_invalid_total', 'Events dropped because they failed schema validation.', ['category']);
    this.log = options.log ?? silentLog;
  }

  /** The event if it is valid; undefined (counted and logged) if not. */
  admit(candidate: unknown): DcpEvent | undefined {
    const result = validateEvent(candidate);
    if (result.ok) return result.event;
    const category = categoryLabel(candidate);
    this.invalid.inc({ category });
    const name = typeof candidate === 'object' && candidate !== null ? (candidate as { name?: unknown }).name : undefined;
    // NOTE: log what failed, never the values: an invalid event may carry exactly what the schema keeps out.
    this.log.warn('dropped schema-invalid event', { category, name: typeof name === 'string' ? name.slice(0, 64) : undefined, problems: result.problems.slice(0, 10) });
    return undefined;
  }
}
