// Store benchmark: events/s appended with durable (fsync'd) batching, and open() time after a SIGKILL with N events stored.
// Usage: node dist/bench/store-throughput.js [--quick]   (about 30-60 s; --quick about 10 s)
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { EVENT_CATALOG, type CollectedEventName, type DcpEvent } from '../src/api/event.js';
import { exampleEvent } from '../src/pipeline/examples.js';
import { EventStore } from '../src/store/event-store.js';

const NAMES = Object.keys(EVENT_CATALOG) as CollectedEventName[];
const T0 = Date.now();
let seq = 0;

/** A realistic mix of event names, each a distinct fact. */
function makeEvents(n: number): DcpEvent[] {
  return Array.from({ length: n }, () => {
    const i = seq++;
    return exampleEvent(NAMES[i % NAMES.length] as CollectedEventName, new Date(T0), `bench-${process.pid}-${i}`);
  });
}

async function withStore<T>(fn: (store: EventStore, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'dcp-bench-'));
  const store = await EventStore.open({ dataDir: dir, registry: new Registry() });
  try {
    return await fn(store, dir);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Row {
  readonly mode: string;
  readonly events: number;
  readonly seconds: number;
  readonly bytes: number;
}

/** Appends for about `seconds`: `writers` concurrent callers, each awaiting `batch` events per call. */
async function throughput(mode: string, writers: number, batch: number, seconds: number): Promise<Row> {
  return withStore(async (store) => {
    const deadline = performance.now() + seconds * 1000;
    const start = performance.now();
    let events = 0;
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (performance.now() < deadline) {
          const r = await store.append(makeEvents(batch));
          events += r.stored;
        }
      }),
    );
    return { mode, events, seconds: (performance.now() - start) / 1000, bytes: store.stats().bytes };
  });
}

/** Child mode: store `n` events, print "ready", then keep appending until killed. */
async function child(dir: string, n: number): Promise<void> {
  const store = await EventStore.open({ dataDir: dir, registry: new Registry() });
  for (let done = 0; done < n; done += 1000) await store.append(makeEvents(Math.min(1000, n - done)));
  process.stdout.write('ready\n');
  for (;;) await store.append(makeEvents(500));
}

interface Recovery {
  readonly stored: number;
  readonly bytes: number;
  readonly openMs: number;
  readonly torn: number;
}

async function recovery(n: number): Promise<Recovery> {
  const dir = await mkdtemp(join(tmpdir(), 'dcp-bench-kill-'));
  try {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (c: Buffer) => {
        if (c.toString().includes('ready')) setTimeout(() => proc.kill('SIGKILL'), 5);
      });
      proc.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error('child ended on its own'))));
    });
    const start = performance.now();
    const store = await EventStore.open({ dataDir: dir, registry: new Registry() });
    const openMs = performance.now() - start;
    const result = { stored: store.stats().events, bytes: store.stats().bytes, openMs, torn: store.openReport.tornRecords };
    await store.close();
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const pad = (s: string | number, w: number): string => String(s).padStart(w);

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const secs = quick ? 1 : 4;
  console.log(`store throughput (durable: every append resolves after fsync), ${secs} s per mode\n`);
  console.log(`${'mode'.padEnd(36)}${pad('events', 10)}${pad('events/s', 12)}${pad('MB/s', 8)}`);
  for (const [mode, writers, batch] of [
    ['1 writer, 1 event per append', 1, 1],
    ['1 writer, 100 events per append', 1, 100],
    ['64 writers, 1 event each (group)', 64, 1],
    ['16 writers, 100 events each (group)', 16, 100],
  ] as const) {
    const r = await throughput(mode, writers, batch, secs);
    console.log(`${mode.padEnd(36)}${pad(r.events, 10)}${pad(Math.round(r.events / r.seconds), 12)}${pad((r.bytes / r.seconds / 1e6).toFixed(1), 8)}`);
  }
  console.log(`\nrecovery: open() after SIGKILL of a writer mid-append\n`);
  console.log(`${pad('events', 10)}${pad('MB', 8)}${pad('open ms', 10)}${pad('µs/event', 10)}${pad('torn', 6)}`);
  for (const n of quick ? [10_000, 50_000] : [10_000, 100_000, 300_000]) {
    const r = await recovery(n);
    console.log(`${pad(r.stored, 10)}${pad((r.bytes / 1e6).toFixed(1), 8)}${pad(r.openMs.toFixed(0), 10)}${pad(((r.openMs * 1000) / r.stored).toFixed(1), 10)}${pad(r.torn, 6)}`);
  }
}

const childAt = process.argv.indexOf('--child');
if (childAt !== -1) await child(process.argv[childAt + 1] ?? '', Number(process.argv[childAt + 2]));
else await main();
