// Small formatting helpers for what `dcp` prints for people: aligned tables, local ISO times, sizes, counts, JSON.

export type Align = 'left' | 'right';

export interface TableOptions {
  /** Per column; missing entries are left-aligned. */
  readonly align?: readonly Align[];
  /** Spaces between columns. @default 2 */
  readonly gap?: number;
  /**
   * Total width to fit (a terminal's columns). The last column is cut with '…' to fit; the
   * others keep their width, so columns stay aligned. @default Infinity
   */
  readonly maxWidth?: number;
}

/** Characters as a terminal shows them: code points, not UTF-16 units (so '…' and 'é' count as one). */
export function displayWidth(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** `text` cut to `width` characters, ending in '…' when something was cut. */
export function truncate(text: string, width: number): string {
  if (width <= 0) return '';
  if (displayWidth(text) <= width) return text;
  return `${[...text].slice(0, Math.max(0, width - 1)).join('')}…`;
}

function pad(text: string, width: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(text)));
  return align === 'right' ? fill + text : text + fill;
}

/**
 * An aligned table: the header, then one line per row. Lines carry no trailing spaces, so the
 * output diffs and greps cleanly. Cells must not contain newlines.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], options: TableOptions = {}): string[] {
  const gap = ' '.repeat(options.gap ?? 2);
  const columns = header.length;
  const widths = header.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const maxWidth = options.maxWidth ?? Infinity;
  if (Number.isFinite(maxWidth) && columns > 0) {
    const fixed = widths.slice(0, -1).reduce((sum, w) => sum + w + gap.length, 0);
    // The last column keeps at least its header's width, even on a terminal too narrow for it.
    widths[columns - 1] = Math.max(displayWidth(header[columns - 1] ?? ''), Math.min(widths[columns - 1] ?? 0, maxWidth - fixed));
  }
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        const cut = truncate(cell, width);
        return i === columns - 1 && (options.align?.[i] ?? 'left') === 'left' ? cut : pad(cut, width, options.align?.[i] ?? 'left');
      })
      .join(gap)
      .trimEnd();
  return [line(header), ...rows.map((r) => line(header.map((_, i) => r[i] ?? '')))];
}

/** Minutes east of UTC at instant `ms` on this machine (what Date's local getters use). */
export function localOffsetMinutes(ms: number): number {
  return -new Date(ms).getTimezoneOffset();
}

const two = (n: number): string => String(n).padStart(2, '0');

/** The wall-clock fields of `ms` at `offsetMinutes` east of UTC. */
function fieldsAt(ms: number, offsetMinutes: number): Date {
  // A UTC date shifted by the offset: its UTC getters read the local wall clock.
  return new Date(ms + offsetMinutes * 60_000);
}

/**
 * Local ISO time to the second: `2026-11-25 21:03:04`. The offset defaults to this machine's time
 * zone at that instant (so daylight saving is right for each time); tests pass it explicitly.
 */
export function localIsoTime(ms: number, offsetMinutes = localOffsetMinutes(ms)): string {
  const d = fieldsAt(ms, offsetMinutes);
  return `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}

/** Local time of day: `21:03:04`. */
export function localClock(ms: number, offsetMinutes = localOffsetMinutes(ms)): string {
  return localIsoTime(ms, offsetMinutes).slice(11);
}

/** Local date: `2026-11-25`. */
export function localDate(ms: number, offsetMinutes = localOffsetMinutes(ms)): string {
  return localIsoTime(ms, offsetMinutes).slice(0, 10);
}

/** `UTC`, `UTC+01:00`, `UTC-05:30`: says which local time the times are in. */
export function utcOffsetLabel(offsetMinutes: number): string {
  if (offsetMinutes === 0) return 'UTC';
  const sign = offsetMinutes > 0 ? '+' : '-';
  const abs = Math.abs(offsetMinutes);
  return `UTC${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}

/** The IANA zone name when the runtime knows it (e.g. `Europe/Berlin`), else undefined. */
export function timeZoneName(): string | undefined {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone === '' ? undefined : zone;
}

/** A number as people write it: integers plain, fractions to at most 3 decimals without trailing zeros. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toFixed(3)));
}

/** `512 B`, `4.1 KiB`, `2.3 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit] ?? 'TiB'}`;
}

/** `1 event`, `5 events`; irregular plurals passed explicitly. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** Counts of `items` by key, in first-seen order. */
export function countBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** The first `length` characters of an id: enough to tell events apart in a table. */
export function shortId(id: string, length = 12): string {
  return id.slice(0, length);
}

export interface PrettyJsonOptions {
  /** Containers deeper than this are written compact. @default Infinity */
  readonly depth?: number;
  /** Keys whose values are always written compact (e.g. an event's `data`, an OTLP record's `attributes`). */
  readonly compact?: ReadonlySet<string>;
  /** @default two spaces */
  readonly indent?: string;
}

/** JSON on one line with a space after ':' and ',' (as people write it), e.g. `{"nodes": 5, "pods": 40}`. */
export function oneLine(v: unknown): string {
  if (typeof v !== 'object' || v === null) return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => oneLine(x)).join(', ')}]`;
  return `{${Object.entries(v)
    .filter(([, x]) => x !== undefined)
    .map(([k, x]) => `${JSON.stringify(k)}: ${oneLine(x)}`)
    .join(', ')}}`;
}

/**
 * JSON indented like JSON.stringify(v, null, 2), but with chosen parts on one line: an array of
 * events shows one envelope field per line and each `data` as one line. Readable without being long.
 */
export function prettyJson(value: unknown, options: PrettyJsonOptions = {}): string {
  const maxDepth = options.depth ?? Infinity;
  const indent = options.indent ?? '  ';
  const render = (v: unknown, depth: number, at: string, key: string | undefined): string => {
    const compact = depth >= maxDepth || (key !== undefined && options.compact?.has(key) === true);
    if (compact || typeof v !== 'object' || v === null) return oneLine(v);
    const inner = at + indent;
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return `[\n${v.map((item) => inner + render(item, depth + 1, inner, undefined)).join(',\n')}\n${at}]`;
    }
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${render(x, depth + 1, inner, k)}`).join(',\n')}\n${at}}`;
  };
  return render(value, 0, '', undefined);
}
