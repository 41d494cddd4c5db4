// The certificate builder the demo fleet and tests use lives with the code that needs it in production.
export * from '../src/audit/x509.js';
