// The kube layer's public surface: the HTTP client, typed errors, watch parsing, object helpers, projections, Lease calls.
export * from './client.js';
export * from './errors.js';
export * from './json-lines.js';
export * from './lease.js';
export * from './pager.js';
export * from './projections.js';
export * from './resource.js';
export * from './protobuf.js';
export * from './wire.js';
