// The logging surface every layer takes (pipeline, store, sinks, collectors); a winston Logger satisfies it.

export interface Log {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
}

const nothing = (): undefined => undefined;

/** For tests and tools that do not care. */
export const silentLog: Log = { debug: nothing, info: nothing, warn: nothing, error: nothing };
