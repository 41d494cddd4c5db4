// Per-sink delivery cursors, persisted atomically in <dataDir>/cursors/<sink>.json.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StorePosition, Stream } from '../store/event-store.js';
import { writeFileAtomic } from '../store/segment.js';
import type { WriteHealth } from '../store/write-health.js';

/** How far a sink has got in each stream; a missing stream means "from the oldest record kept". */
export type SinkCursor = { [S in Stream]?: StorePosition };

const SINK_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function isPosition(v: unknown): v is StorePosition {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as { partition?: unknown; offset?: unknown };
  return typeof p.partition === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(p.partition) && Number.isSafeInteger(p.offset) && (p.offset as number) >= 0;
}

export class CursorStore {
  private readonly dir: string;

  constructor(
    dataDir: string,
    private readonly health?: WriteHealth,
    /**
     * Checked again right before a save replaces the cursor (after its data is written and synced):
     * a leader paused in the middle of a save must not move the cursor once its lease has lapsed.
     */
    private readonly beforeCommit?: () => void,
  ) {
    this.dir = join(dataDir, 'cursors');
  }

  private file(sink: string): string {
    // Sink names are DNS labels by the CRD; checking again keeps a bad name from escaping the directory.
    if (!SINK_NAME.test(sink)) throw new Error(`invalid sink name: ${JSON.stringify(sink)}`);
    return join(this.dir, `${sink}.json`);
  }

  async load(sink: string): Promise<SinkCursor> {
    let text: string;
    try {
      text = await readFile(this.file(sink), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const cursor: SinkCursor = {};
    if (isPosition(parsed['raw'])) cursor.raw = parsed['raw'];
    if (isPosition(parsed['aggregates'])) cursor.aggregates = parsed['aggregates'];
    return cursor;
  }

  /** Durable before it resolves: a cursor must never claim more than was delivered. */
  async save(sink: string, cursor: SinkCursor): Promise<void> {
    let refused = false;
    const beforeCommit = (): void => {
      try {
        this.beforeCommit?.();
      } catch (err) {
        refused = true;
        throw err;
      }
    };
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(this.file(sink), `${JSON.stringify(cursor)}\n`, { beforeCommit });
    } catch (err) {
      // A refusal is not a failing disk: the write health stays as it was.
      if (!refused) this.health?.failed('cursor', err);
      throw err;
    }
    this.health?.succeeded('cursor');
  }
}
