// Shared by the collectors' unit tests: run a collector until the test stops it, and let pending work happen.
import type { Collector } from '../../src/collectors/collector.js';

/** Lets resolved promises and immediates run (watch deliveries, flushes) before the test looks. */
export async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export interface RunningCollector<C> {
  readonly collector: C;
  stop(): Promise<void>;
}

/** Starts `collector.run`, lets its first step happen, and returns how to stop it (resolving once it has). */
export async function startRun<C extends Pick<Collector, 'run'>>(collector: C): Promise<RunningCollector<C>> {
  const ctl = new AbortController();
  const done = collector.run(ctl.signal);
  await settle();
  return {
    collector,
    stop: async () => {
      ctl.abort();
      await done;
    },
  };
}
