// Locates and loads schemas/event.schema.json, the event contract, from source or dist layouts.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RELATIVE = join('schemas', 'event.schema.json');

/** Walks up from this module (src/pipeline or dist/src/pipeline) to the package root. */
export function eventSchemaPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, RELATIVE);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`cannot find ${RELATIVE} above ${fileURLToPath(import.meta.url)}`);
}

let cached: Record<string, unknown> | undefined;

export function eventSchema(): Record<string, unknown> {
  cached ??= JSON.parse(readFileSync(eventSchemaPath(), 'utf8')) as Record<string, unknown>;
  return cached;
}
