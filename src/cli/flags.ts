// Flag value parsing shared by the dcp commands: durations and log levels.
import { LOG_LEVELS, type LogLevel } from '../observability/logger.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

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

export function stringFlag(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}
