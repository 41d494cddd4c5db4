// The runtime's public surface: caches (store, reflector), work queue, controller, leader election, time.
export * from './aggregate.js';
export * from './backoff.js';
export * from './caches.js';
export * from './clock.js';
export * from './controller.js';
export * from './leader.js';
export * from './queue.js';
export * from './reflector-machine.js';
export * from './reflector.js';
export * from './store.js';
export * from './watch-metrics.js';
