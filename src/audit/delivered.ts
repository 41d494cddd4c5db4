// Which events the destination already holds (by auditID and stage), so a batch sent twice is written once.
import { readFile, rename, writeFile } from 'node:fs/promises';

export interface DeliveredSetOptions {
  /** Keys older than this are forgotten (the API server does not resend that late). */
  readonly retentionMs: number;
  readonly now: () => number;
  /** @default 500000 */
  readonly maxEntries?: number;
}

export class DeliveredSet {
  // Insertion order is delivery order, so pruning walks from the front.
  private readonly keys = new Map<string, number>();
  private dirty = false;

  constructor(private readonly options: DeliveredSetOptions) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    this.keys.delete(key);
    this.keys.set(key, this.options.now());
    this.dirty = true;
  }

  get size(): number {
    return this.keys.size;
  }

  prune(): void {
    const cutoff = this.options.now() - this.options.retentionMs;
    const max = this.options.maxEntries ?? 500_000;
    for (const [key, at] of this.keys) {
      if (at > cutoff && this.keys.size <= max) break;
      this.keys.delete(key);
      this.dirty = true;
    }
  }

  async load(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return; // first start
    }
    for (const line of text.split('\n')) {
      const i = line.lastIndexOf(' ');
      const at = Number(line.slice(i + 1));
      if (i > 0 && Number.isFinite(at)) this.keys.set(line.slice(0, i), at);
    }
    this.prune();
  }

  /** Writes the set atomically (temporary file, then rename), only when it changed. */
  async save(file: string): Promise<void> {
    if (!this.dirty) return;
    this.prune();
    const lines: string[] = [];
    for (const [key, at] of this.keys) lines.push(`${key} ${at}`);
    await writeFile(`${file}.tmp`, lines.join('\n'), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    this.dirty = false;
  }
}
