// Counts and sums over a cache, kept up to date from its change events instead of by iterating it.
import type { ChangeHandler, ReadStore } from './store.js';

/**
 * A running total per group, e.g. Pods by phase or CPU millicores of all Nodes. Each change
 * moves one value's contribution out of its old group and into its new one, so a change costs
 * O(1) whatever the size of the cache. Use integer weights (millicores, not cores): repeated
 * adding and subtracting of fractions would drift.
 */
export class Tally<T> {
  private readonly totals = new Map<string, number>();
  private sum = 0;

  constructor(
    private readonly groupOf: (value: T) => string | undefined,
    private readonly weightOf: (value: T) => number = () => 1,
  ) {}

  /** Subscribe this to a store (with `replay: true` if the store may already hold values). */
  readonly handler: ChangeHandler<T> = (_type, _key, newValue, oldValue) => {
    if (oldValue !== undefined) this.add(oldValue, -1);
    if (newValue !== undefined) this.add(newValue, 1);
  };

  /** Subscribes to `store`, counting what it already holds; returns the unsubscribe function. */
  attach(store: ReadStore<T>): () => void {
    return store.subscribe(this.handler, { replay: true });
  }

  get(group: string): number {
    return this.totals.get(group) ?? 0;
  }

  /** The sum over all groups. */
  get total(): number {
    return this.sum;
  }

  /** Groups with a non-zero total. */
  groups(): ReadonlyMap<string, number> {
    return this.totals;
  }

  private add(value: T, sign: 1 | -1): void {
    const group = this.groupOf(value);
    if (group === undefined) return;
    const w = sign * this.weightOf(value);
    const next = (this.totals.get(group) ?? 0) + w;
    // Dropping empty groups keeps a gauge from reporting phases that no Pod is in any more.
    if (next === 0) this.totals.delete(group);
    else this.totals.set(group, next);
    this.sum += w;
  }
}
