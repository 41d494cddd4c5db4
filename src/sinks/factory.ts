// Builds the sink a policy's Sink entry describes.
import type { Sink } from '../api/policy.js';
import type { Log } from '../observability/log.js';
import { FileSink } from './file-sink.js';
import { HttpSink } from './http-sink.js';
import { OtlpSink } from './otlp-sink.js';
import type { HttpTransportOptions } from './http-transport.js';
import type { EventSink } from './sink.js';

export interface SinkDependencies {
  /** The bearer token from the sink's secretRef, resolved by the caller (it owns the Kubernetes client). */
  readonly token?: () => string | undefined | Promise<string | undefined>;
  /** PEM CA bundle for https endpoints with a private CA. */
  readonly ca?: string | Buffer;
  readonly timeoutMs?: number;
  /** Tries per batch inside the http/otlp sink; the dispatcher retries failed batches beyond that. */
  readonly retry?: HttpTransportOptions['retry'];
  readonly now?: () => number;
  readonly log?: Log;
  /** Checked right before each http/otlp request, retries included (leader fencing). */
  readonly beforeRequest?: () => void;
}

export class SinkConfigError extends Error {
  constructor(readonly sink: string, message: string) {
    super(`sink ${sink}: ${message}`);
    this.name = 'SinkConfigError';
  }
}

export function createSink(config: Sink, deps: SinkDependencies = {}): EventSink {
  switch (config.type) {
    case 'file':
      if (!config.path) throw new SinkConfigError(config.name, 'a file sink needs path');
      return new FileSink({ name: config.name, path: config.path, now: deps.now });
    case 'http':
    case 'otlp': {
      if (!config.url) throw new SinkConfigError(config.name, `an ${config.type} sink needs url`);
      const options = { name: config.name, url: config.url, token: deps.token, ca: deps.ca, timeoutMs: deps.timeoutMs, retry: deps.retry, log: deps.log, beforeRequest: deps.beforeRequest };
      return config.type === 'http' ? new HttpSink(options) : new OtlpSink({ ...options, now: deps.now });
    }
  }
}
