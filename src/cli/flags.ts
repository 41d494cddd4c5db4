// Flag value parsing shared by the dcp commands: durations, log levels, addresses, usage errors.
import { LOG_LEVELS, type LogLevel } from '../observability/logger.js';
import { parseAddress } from '../observability/http.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A flag value that can never work: the command prints `dcp <command>: <message>` and exits 2.
 * With a `why`, the message is `<what> (<why>)`.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(what: string, why?: string) {
    super(why === undefined ? what : `${what} (${why})`);
  }
}

/** "500ms", "15s", "2m", "1h", "7d" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  const unit = m?.[2];
  if (!m || unit === undefined) throw new Error(`"${text}" is not a duration (e.g. 500ms, 15s, 2m, 1h, 7d)`);
  return Number(m[1]) * (UNITS[unit] ?? 1);
}

export function parseLogLevel(text: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new Error(`log level "${text}" is not one of ${LOG_LEVELS.join(', ')}`);
}

/** A positive duration flag, or a UsageError naming the flag. */
export function durationFlag(flag: string, text: string): number {
  const ms = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.test(text.trim()) ? parseDuration(text) : undefined;
  if (ms === undefined) throw new UsageError(`--${flag} "${text}" is not a duration`, 'use a number and a unit: 500ms, 15s, 2m, 1h');
  if (ms <= 0) throw new UsageError(`--${flag} "${text}" is not a duration`, 'it must be longer than zero');
  return ms;
}

export function logLevelFlag(text: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new UsageError(`--log-level "${text}" is not a log level`, `use one of ${LOG_LEVELS.join(', ')}`);
}

/** A listen address flag (`host:port` or `:port`), or a UsageError naming the flag. */
export function addressFlag(flag: string, text: string): { host: string | undefined; port: number } {
  try {
    return parseAddress(text);
  } catch {
    throw new UsageError(`--${flag} "${text}" is not a listen address`, 'use host:port or :port, e.g. 127.0.0.1:8080 or :8080, with a port from 0 to 65535');
  }
}

/** An error in a few words: `ENOENT: no such file or directory` without the syscall and path Node appends. */
export function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = ((err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '').trim();
  if (typeof e.code !== 'string' || !text.startsWith(`${e.code}:`)) return text;
  return text.replace(/, \w+(?: '.*')?$/, '');
}

export function stringFlag(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}
