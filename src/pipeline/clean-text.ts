// Exported strings are clean text: no C0/C1 control characters, no ANSI escape sequences, no lone surrogates.
import { stripVTControlCharacters } from 'node:util';

/*
 * A Node's osImage, an Event's note or a reason is written by whoever controls the machine or the
 * object. Escape sequences in it would recolour or rewrite a terminal that shows the data, a CR/LF
 * would forge a line in a log or a CSV, and a lone surrogate is not valid UTF-8 at all. So every
 * string of an event is cleaned before the schema check, and the schema forbids what is left.
 *
 * Single-line text (every field but the two below) keeps no control character at all: tabs and line
 * breaks become a space. Multi-line text (a message, a stack trace) keeps LF and TAB, and CR LF or a
 * lone CR becomes LF. The schema's patterns (shortText, text, stackTrace) say the same.
 */

/** Fields whose text may span lines: the schema's `text` and `stackTrace`. */
export const MULTILINE_FIELDS: ReadonlySet<string> = new Set(['message', 'stackTrace']);

/** C0 controls, DEL and C1 controls. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
/** The same but TAB and LF. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_BUT_TAB_LF = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
/** A high surrogate without its low half, or a low one without its high half. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const LINE_BREAKS = /[\t\r\n]+/g;
// Cheap test first: most strings are clean, and cleaning allocates.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const DIRTY = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/;

export type TextShape = 'line' | 'multiline';

/**
 * The string as clean text: lone surrogates become U+FFFD, ANSI/VT escape sequences are removed
 * (Node's util.stripVTControlCharacters), line breaks are handled as `shape` says, and every other
 * control character is removed. NOTE: removing, not replacing, is what lets the PII guard see an
 * address that a control character was planted in to break it up ("bob\u0001@example.com").
 */
export function cleanText(value: string, shape: TextShape = 'line'): string {
  if (!DIRTY.test(value)) return value;
  let out = stripVTControlCharacters(value.replace(LONE_SURROGATE, '\ufffd'));
  if (shape === 'line') return out.replace(LINE_BREAKS, ' ').replace(CONTROL, '');
  out = out.replace(/\r\n?/g, '\n');
  return out.replace(CONTROL_BUT_TAB_LF, '');
}

/** Whether `value` is already clean text of the given shape (what the schema's patterns accept). */
export function isCleanText(value: string, shape: TextShape = 'line'): boolean {
  return cleanText(value, shape) === value;
}

/**
 * Any JSON value with every string cleaned: strings under a MULTILINE_FIELDS key as multi-line
 * text, all others as single-line. Keys are left alone (the schema names them all). A value that
 * is already clean comes back as the same object; one that is not comes back as a copy.
 */
export function cleanStrings(value: unknown, shape: TextShape = 'line'): unknown {
  if (typeof value === 'string') return cleanText(value, shape);
  if (Array.isArray(value)) {
    const out = value.map((v) => cleanStrings(v, shape));
    return out.every((v, i) => v === value[i]) ? value : out;
  }
  if (typeof value === 'object' && value !== null) {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const c = cleanStrings(v, MULTILINE_FIELDS.has(k) ? 'multiline' : 'line');
      if (c !== v) changed = true;
      out[k] = c;
    }
    return changed ? out : value;
  }
  return value;
}
