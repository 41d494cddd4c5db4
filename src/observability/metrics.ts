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
