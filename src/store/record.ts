// One stored record per line: "<crc32 hex> <json>\n", so a torn or corrupted line is recognised on open.
import { crc32 } from 'node:zlib';

const SEP = 0x20; // the space after the 8-digit checksum

function checksum(json: string): string {
  return crc32(json).toString(16).padStart(8, '0');
}

export function encodeRecord(value: unknown): string {
  const json = JSON.stringify(value);
  return `${checksum(json)} ${json}\n`;
}

/** The value of one line (without its newline), or undefined if the line is torn or corrupt. */
export function decodeRecord(line: string): unknown {
  if (line.length < 10 || line.charCodeAt(8) !== SEP) return undefined;
  const json = line.slice(9);
  if (line.slice(0, 8) !== checksum(json)) return undefined;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}
