// The collectors: one file per category, plus the projections their caches keep and the state billing persists.
export * from './collector.js';
export * from './projections.js';
export * from './inventory.js';
export * from './device-key.js';
export * from './host-os.js';
export * from './metering.js';
export * from './billing-state.js';
export * from './billing.js';
export * from './host-events.js';
export * from './certificates.js';
export * from './kms.js';
export * from './security.js';
