// `dcp events`: reads the event store read-only (beside a running operator) and prints events as a table or as stored JSON.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CATEGORY_NAMES, type CategoryName } from '../api/policy.js';
import { isEventOf, type DataValue, type DcpEvent } from '../api/event.js';
import { EventStore, type Stream } from '../store/event-store.js';
import type { OpenReport } from '../store/partitions.js';
import type { Command } from './command.js';
import { parseDuration, stringFlag, UsageError } from './flags.js';
import {
  countBy,
  formatNumber,
  formatTable,
  localClock,
  localIsoTime,
  localOffsetMinutes,
  plural,
  shortId,
  timeZoneName,
  truncate,
  utcOffsetLabel,
} from './table.js';

const USAGE = `usage: dcp events [flags]

Prints the events the operator stored, oldest first. Reads the store read-only, so it is safe
beside a running 'dcp run' on the same --data-dir.

flags:
  --data-dir D      event store directory (default ./data, as for dcp run)
  --category C      only this category: ${CATEGORY_NAMES.join(', ')}
  --since S         only events newer than a duration ago (30s, 15m, 1h, 7d) or an RFC 3339 time
  --limit N         only the newest N matching events
  --aggregates      the daily de-identified aggregates (DailyAggregate) instead of raw events
  --output O        table (default): aligned columns, local times, a summary of each event's data
                    json: one JSON array, one stored envelope per line, each byte for byte as
                    stored (pipe to jq; 'jq -c .[]' gives JSON lines)`;

export { UsageError };

export type OutputFormat = 'json' | 'table';

export interface EventsFlags {
  readonly dataDir: string;
  readonly category?: CategoryName;
  readonly since?: Date;
  readonly limit?: number;
  readonly stream: Stream;
  readonly output: OutputFormat;
}

export function parseOutput(text: string | undefined): OutputFormat {
  if (text === undefined || text === 'table') return 'table';
  if (text === 'json') return 'json';
  throw new UsageError(`--output "${text}" is not one of json, table`);
}

export function parseCategory(text: string): CategoryName {
  const found = CATEGORY_NAMES.find((c) => c === text);
  if (found) return found;
  // Category names are camelCase in the policy; accept any case, but say the right spelling.
  const folded = CATEGORY_NAMES.find((c) => c.toLowerCase() === text.toLowerCase());
  if (folded) return folded;
  throw new UsageError(`unknown category "${text}"; valid categories: ${CATEGORY_NAMES.join(', ')}`);
}

/** A duration ago ("1h") or an absolute RFC 3339 time. */
export function parseSince(text: string, now: number): Date {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) throw new UsageError(`--since "${text}" is not an RFC 3339 time`);
    return new Date(ms);
  }
  try {
    return new Date(now - parseDuration(text));
  } catch (err) {
    throw new UsageError(`--since: ${err instanceof Error ? err.message : String(err)}, or an RFC 3339 time`);
  }
}

export function parseLimit(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new UsageError(`--limit "${text}" is not a positive whole number`);
  return Number(text);
}

export function parseEventsFlags(values: Record<string, unknown>, now: number): EventsFlags {
  const category = stringFlag(values, 'category');
  const since = stringFlag(values, 'since');
  const limit = stringFlag(values, 'limit');
  return {
    dataDir: resolve(stringFlag(values, 'data-dir') ?? './data'),
    ...(category !== undefined ? { category: parseCategory(category) } : {}),
    ...(since !== undefined ? { since: parseSince(since, now) } : {}),
    ...(limit !== undefined ? { limit: parseLimit(limit) } : {}),
    stream: values['aggregates'] === true ? 'aggregates' : 'raw',
    output: parseOutput(stringFlag(values, 'output')),
  };
}

// ---- summaries: a compact line of each event's data, in the words of its schema ----

/** `key=value`; strings that are not a plain token are quoted, so spaces cannot blur two fields together. */
function kv(key: string, value: DataValue | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return `${key}=${formatNumber(value)}`;
  if (typeof value === 'boolean') return `${key}=${String(value)}`;
  if (typeof value === 'string') return `${key}=${/^[\w.:/+@-]+$/.test(value) ? value : JSON.stringify(value)}`;
  return `${key}={${Object.entries(value)
    .map(([k, v]) => kv(k, v))
    .filter((s) => s !== undefined)
    .join(' ')}}`;
}

const fields = (parts: readonly (string | undefined)[]): string => parts.filter((p) => p !== undefined && p !== '').join(' ');

const MESSAGE_WIDTH = 60;

/** A half-open interval in local time: `[21:00:00, 21:10:00)`, with dates when it is not within one local day. */
function interval(start: string, end: string, offsetMinutes: number | undefined): string {
  const a = Date.parse(start);
  const b = Date.parse(end);
  if (Number.isNaN(a) || Number.isNaN(b)) return `[${start}, ${end})`;
  const sameDay = localIsoTime(a, offsetMinutes).slice(0, 10) === localIsoTime(b - 1, offsetMinutes).slice(0, 10);
  const fmt = (ms: number): string => (sameDay ? localClock(ms, offsetMinutes) : localIsoTime(ms, offsetMinutes));
  return `[${fmt(a)}, ${fmt(b)})`;
}

/**
 * One line about an event's data: `nodes=5 pods=40 vCores=34`, `osImage="Ubuntu 22.04.5 LTS" cpu=4
 * ready=true`, `[21:00:00, 21:10:00) quantity=12.5`. Times are local (offsetMinutes east of UTC,
 * this machine's zone when undefined).
 */
export function summarize(event: DcpEvent, offsetMinutes?: number): string {
  if (isEventOf(event, 'ControlPlaneInventory')) {
    const d = event.data;
    // Running is the normal case; only the phases worth a look are named.
    const phases = d.podsByPhase
      ? Object.entries(d.podsByPhase)
          .filter(([phase, n]) => phase !== 'Running' && n > 0)
          .map(([phase, n]) => kv(phase.toLowerCase(), n))
      : [];
    return fields([kv('nodes', d.nodes), kv('pods', d.pods), kv('vCores', d.vCores), ...phases]);
  }
  if (isEventOf(event, 'HostOsInfo')) {
    const d = event.data;
    const flags = (['unschedulable', 'memoryPressure', 'diskPressure', 'pidPressure'] as const).filter((f) => d[f] === true);
    return fields([
      kv('osImage', d.osImage),
      kv('cpu', d.cpuCount),
      kv('ready', d.ready),
      ...flags,
      kv('model', d.model),
      kv('arch', d.architecture),
      kv('device', typeof d.deviceId === 'string' ? shortId(d.deviceId, 8) : undefined),
    ]);
  }
  if (isEventOf(event, 'CoreUsage')) {
    const d = event.data;
    return fields([interval(d.intervalStart, d.intervalEnd, offsetMinutes), kv('quantity', d.quantity)]);
  }
  if (isEventOf(event, 'HostError')) {
    const d = event.data;
    return fields([kv('component', d.component), kv('reason', d.reason), kv('count', d.count), kv('message', truncate(d.message, MESSAGE_WIDTH)), d.stackTrace ? '+stackTrace' : undefined]);
  }
  if (isEventOf(event, 'LinuxVmEvent')) {
    const d = event.data;
    return fields([kv('kind', d.kind), kv('reason', d.reason), kv('count', d.count), kv('message', truncate(d.message, MESSAGE_WIDTH))]);
  }
  if (isEventOf(event, 'CertificateStatus')) {
    const d = event.data;
    return fields([kv('state', d.state), kv('daysToExpiry', d.daysToExpiry), kv('notAfter', d.notAfter.slice(0, 10)), kv('source', d.source), kv('sha256', shortId(d.fingerprintSha256, 8))]);
  }
  if (isEventOf(event, 'KmsStatus')) {
    const d = event.data;
    return fields([kv('healthy', d.healthy), `healthyProviders=${d.healthyProviders}/${d.providers}`, kv('keyIdHash', d.keyIdHash ? shortId(d.keyIdHash, 8) : undefined)]);
  }
  if (isEventOf(event, 'AuditExportStatus')) {
    const d = event.data;
    return fields([kv('state', d.state), kv('profile', d.profile), kv('destination', d.destinationType), kv('received', d.eventsReceived), kv('exported', d.eventsExported)]);
  }
  if (isEventOf(event, 'DailyAggregate')) {
    const d = event.data;
    const numeric = Object.entries(d.numeric ?? {});
    // A field that never changed that day is one value; one that did shows its range and average.
    const shown = numeric.slice(0, 3).map(([name, s]) => (s.min === s.max ? kv(name, s.min) : `${name}=${formatNumber(s.min)}..${formatNumber(s.max)}(avg ${formatNumber(s.avg)})`));
    return fields([kv('of', d.eventName), kv('day', d.day), kv('count', d.count), ...shown, numeric.length > 3 ? `+${numeric.length - 3} more` : undefined]);
  }
  // A name this build does not know (a newer operator wrote it): its scalar fields, as they are.
  return fields(
    Object.entries(event.data)
      .slice(0, 6)
      .map(([k, v]) => kv(k, v)),
  );
}

export interface EventsTableOptions {
  /** Minutes east of UTC for every time shown; this machine's zone (per instant) when undefined. */
  readonly offsetMinutes?: number;
  /** A terminal's width: SUMMARY is cut to fit. @default Infinity (pipes get everything) */
  readonly maxWidth?: number;
  /** Filters in words for the empty message and the footer, e.g. "hostOs, since 1h". */
  readonly filters?: string;
  /** More events matched than shown (--limit). */
  readonly truncatedAt?: number;
  /** How many events the store holds, for the empty message. */
  readonly storeEvents?: number;
  /** The events are daily aggregates (--aggregates). */
  readonly aggregates?: boolean;
}

/** The table `dcp events` prints, with a footer counting events per category. Pure. */
export function renderEventsTable(events: readonly DcpEvent[], options: EventsTableOptions = {}): string {
  const off = options.offsetMinutes;
  if (events.length === 0 && options.aggregates) {
    const match = options.filters ? ` match ${options.filters}` : ' yet';
    return `No daily aggregates${match}: the store writes them after each finished UTC day (one per category and event name).\n`;
  }
  if (events.length === 0) {
    const held = options.storeEvents !== undefined ? ` (the store holds ${plural(options.storeEvents, 'event')})` : '';
    return `No events${options.filters ? ` match ${options.filters}` : ''}${held}.\n`;
  }
  const rows = events.map((e) => {
    const ms = Date.parse(e.time);
    return [Number.isNaN(ms) ? e.time : localIsoTime(ms, off), e.category, e.name, shortId(e.id), summarize(e, off)];
  });
  const lines = formatTable(['TIME', 'CATEGORY', 'NAME', 'ID', 'SUMMARY'], rows, { maxWidth: options.maxWidth });
  const byCategory = countBy(events, (e) => e.category);
  // Categories in the policy's order, so two footers compare at a glance.
  const order = [...CATEGORY_NAMES, ...[...byCategory.keys()].filter((c) => !(CATEGORY_NAMES as readonly string[]).includes(c))];
  const counts = order.filter((c) => byCategory.has(c)).map((c) => `${c} ${byCategory.get(c) ?? 0}`);
  const newest = Date.parse(events[events.length - 1]?.time ?? '');
  const zoneOffset = off ?? localOffsetMinutes(Number.isNaN(newest) ? Date.now() : newest);
  const zone = off === undefined ? timeZoneName() : undefined;
  const when = `times in ${utcOffsetLabel(zoneOffset)}${zone && zone !== 'UTC' ? ` (${zone})` : ''}`;
  const shown = options.truncatedAt !== undefined ? `newest ${plural(events.length, 'event')} shown (--limit ${options.truncatedAt}); older ones match too` : plural(events.length, 'event');
  lines.push('', [shown, ...counts, when].join(' · '));
  return `${lines.join('\n')}\n`;
}

/**
 * The JSON output: an array with one envelope per line. NOTE: each line is JSON.stringify of the
 * parsed record, which reproduces the stored bytes exactly (the store wrote them with
 * JSON.stringify, and a parse/stringify round trip keeps key order, numbers and escapes).
 */
export function renderEventsJson(events: readonly DcpEvent[]): string {
  if (events.length === 0) return '[]\n';
  return `[\n${events.map((e) => JSON.stringify(e)).join(',\n')}\n]\n`;
}

/** What could not be read, with counts, or undefined when everything could. */
export function describeDamage(report: OpenReport): string | undefined {
  const parts: string[] = [];
  const records = report.corruptRecords + report.skippedTailRecords;
  if (records > 0) parts.push(`skipped ${plural(records, 'corrupt record')}`);
  if (report.filesWithoutRecords > 0) parts.push(`${plural(report.filesWithoutRecords, 'file')} without one readable record`);
  if (report.unreadableFiles.length > 0) {
    const first = report.unreadableFiles[0];
    parts.push(`${plural(report.unreadableFiles.length, 'file')} unreadable${first ? ` (${first.file}: ${first.error}${report.unreadableFiles.length > 1 ? ', …' : ''})` : ''}`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** Why `dataDir` is not an event store, or undefined when it is one. */
async function notAStore(dataDir: string): Promise<string | undefined> {
  const isDir = async (p: string): Promise<boolean | undefined> => {
    try {
      return (await stat(p)).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  const dir = await isDir(dataDir);
  if (dir === undefined) return `no event store at ${dataDir}: the directory does not exist (dcp run creates it; pass the --data-dir it was given)`;
  if (!dir) return `no event store at ${dataDir}: it is not a directory`;
  if ((await isDir(join(dataDir, 'raw'))) !== true && (await isDir(join(dataDir, 'aggregates'))) !== true) {
    return `no event store at ${dataDir}: it has no raw/ or aggregates/ directory (is it the --data-dir dcp run was given?)`;
  }
  return undefined;
}

function describeFilters(flags: EventsFlags, values: Record<string, unknown>): string {
  const parts: string[] = [];
  if (flags.category) parts.push(`category ${flags.category}`);
  const since = stringFlag(values, 'since');
  if (since !== undefined) parts.push(/^\d{4}-/.test(since) ? `since ${since}` : `the last ${since}`);
  return parts.join(', ');
}

export const eventsCommand: Command = {
  summary: 'print stored events (table or JSON)',
  usage: USAGE,
  options: {
    'data-dir': { type: 'string' },
    category: { type: 'string' },
    since: { type: 'string' },
    limit: { type: 'string' },
    aggregates: { type: 'boolean', default: false },
    output: { type: 'string', default: 'table' },
  },
  async run(values, positionals) {
    let flags: EventsFlags;
    try {
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'dcp events takes flags only');
      flags = parseEventsFlags(values, Date.now());
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.error(`dcp events: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    const problem = await notAStore(flags.dataDir);
    if (problem) {
      console.error(`dcp events: ${problem}`);
      return 1;
    }
    const store = await EventStore.open({ dataDir: flags.dataDir, readOnly: true });
    try {
      const damage = describeDamage(store.openReport);
      if (damage) console.error(`dcp events: ${damage}`);
      // One more than asked tells whether --limit cut anything off, without reading everything twice.
      const read = await store.read({ stream: flags.stream, category: flags.category, since: flags.since, limit: flags.limit === undefined ? undefined : flags.limit + 1 });
      const truncated = flags.limit !== undefined && read.length > flags.limit;
      const events = truncated ? read.slice(1) : read;
      // Nothing readable in a store that has files: not "No events", a failure.
      if (damage && store.stats().bytes === 0) {
        console.error(`dcp events: nothing in ${flags.dataDir} could be read`);
        return 1;
      }
      if (flags.output === 'json') {
        process.stdout.write(renderEventsJson(events));
      } else {
        const columns = process.stdout.isTTY ? process.stdout.columns : undefined;
        process.stdout.write(
          renderEventsTable(events, {
            maxWidth: columns,
            filters: describeFilters(flags, values) || undefined,
            truncatedAt: truncated ? flags.limit : undefined,
            storeEvents: flags.stream === 'raw' ? store.stats().events : undefined,
            aggregates: flags.stream === 'aggregates',
          }),
        );
      }
    } finally {
      await store.close();
    }
    return 0;
  },
};
