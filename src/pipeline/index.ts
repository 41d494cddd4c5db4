// The event pipeline: envelope, validation, PII guard, routing and ingest. Public surface.
export * from '../api/event.js';
export { buildEvent, buildAggregate, eventId, timeBucket, type BuildEventInput } from '../api/envelope.js';
export { keyedHash, sha256Hex } from '../api/hash.js';
export { EventValidator, validateEvent, type Validation, type EventValidatorOptions } from './validate.js';
export { eventSchema, eventSchemaPath } from './schema.js';
export { DenySet, PiiGuard, detectPii, type PiiFinding, type PiiKind, type PiiGuardOptions } from './guard.js';
export { route, shouldDeliver, sinksFor, type Route, type RoutingPolicy } from './routing.js';
export { Ingest, type EventAppender, type IngestOptions, type IngestResult } from './ingest.js';
export { silentLog, type Log } from '../observability/log.js';
export { EXAMPLE_CLUSTER, EXAMPLE_DATA, exampleEvent } from './examples.js';
