// Get-or-create prom-client metrics, so several instances (and tests) can share one registry.
import { Counter, Gauge, register as defaultRegistry, type Registry } from 'prom-client';

export type { Registry };

export function counter<L extends string>(registry: Registry | undefined, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const reg = registry ?? defaultRegistry;
  const existing = reg.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [reg] });
}

export function gauge<L extends string>(registry: Registry | undefined, name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  const reg = registry ?? defaultRegistry;
  const existing = reg.getSingleMetric(name);
  if (existing instanceof Gauge) return existing as Gauge<L>;
  return new Gauge({ name, help, labelNames, registers: [reg] });
}

/**
 * A gauge with a `sink`-like label whose values are computed at scrape time. The newest caller owns it
 * (a new leader term builds new parts), so an old owner's label values do not linger in /metrics.
 */
export function scrapedGauge(registry: Registry | undefined, name: string, help: string, label: string, keys: () => string[], value: (key: string) => number): void {
  const reg = registry ?? defaultRegistry;
  reg.removeSingleMetric(name);
  new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [reg],
    collect() {
      this.reset();
      for (const key of keys()) this.set({ [label]: key }, value(key));
    },
  });
}
