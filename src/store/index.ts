// The embedded event store: public surface.
export {
  EventStore,
  DEFAULT_RETENTION,
  StoreClosedError,
  StoreReadOnlyError,
  type AppendResult,
  type EventStoreOptions,
  type ReadQuery,
  type Retention,
  type StorePosition,
  type StoreStats,
  type StoredRecord,
  type Stream,
  type SweepReport,
} from './event-store.js';
export { type OpenReport } from './partitions.js';
export { StoreLockedError } from './lock.js';
export { storeFailureReason, type StoreFailureReason } from './errors.js';
export { WriteHealth, type StoreWriter, type WriteFailure } from './write-health.js';
export { aggregateDay, DayAggregator } from './aggregate.js';
