// Splits a watch response body (one JSON object per line) into events, whatever the chunk boundaries.
import { MalformedResponse } from './errors.js';

const NEWLINE = 0x0a;

/**
 * Collects bytes until a newline and hands out whole lines. Works on bytes, not strings, so a
 * multi-byte UTF-8 character split across two chunks is decoded only once it is whole.
 */
export class LineSplitter {
  // Bytes of the line being collected, in arrival order; joined once when its newline comes.
  private parts: Buffer[] = [];

  /** Returns the lines completed by this chunk, without their newline; empty lines are dropped. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    let nl = chunk.indexOf(NEWLINE, start);
    while (nl !== -1) {
      let bytes = chunk.subarray(start, nl);
      if (this.parts.length > 0) {
        this.parts.push(bytes);
        bytes = Buffer.concat(this.parts);
        this.parts = [];
      }
      addLine(lines, bytes);
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    // NOTE: subarray shares memory with the chunk; that is fine because the chunk is not reused by node.
    if (start < chunk.length) this.parts.push(chunk.subarray(start));
    return lines;
  }

  /** At the end of the body: the unterminated last line, if any. */
  flush(): string | undefined {
    if (this.parts.length === 0) return undefined;
    const lines: string[] = [];
    addLine(lines, Buffer.concat(this.parts));
    this.parts = [];
    return lines[0];
  }
}

function addLine(lines: string[], bytes: Buffer): void {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0d) end -= 1;
  if (end === 0) return;
  const line = bytes.toString('utf8', 0, end);
  if (line.trim() !== '') lines.push(line);
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One event of a watch: for ERROR, `object` is a metav1.Status. */
export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: unknown;
}

const TYPES: ReadonlySet<string> = new Set<WatchEventType>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** Parses one line of a watch body; throws MalformedResponse when it is not a watch event. */
export function parseWatchEvent(line: string): WatchEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new MalformedResponse(`watch event is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new MalformedResponse('watch event is not an object');
  const { type, object } = parsed as { type?: unknown; object?: unknown };
  if (typeof type !== 'string' || !TYPES.has(type)) throw new MalformedResponse(`unknown watch event type ${String(type)}`);
  if (typeof object !== 'object' || object === null) throw new MalformedResponse(`watch event ${type} has no object`);
  return { type: type as WatchEventType, object };
}
