// Crash safety: a writer killed with SIGKILL mid-write leaves a store that opens with every acknowledged event.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { DcpEvent } from '../../src/api/event.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { EventStore } from '../../src/store/event-store.js';
import { encodeRecord } from '../../src/store/record.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const PARTITION = '2026-03-01.jsonl';

/**
 * The child: appends batches of varied size (some records large, so one write spans many pages)
 * and prints the ids of each batch only after append() resolved, i.e. after fsync.
 */
const CHILD = `
const { EventStore } = await import(process.env.STORE_MODULE);
const { exampleEvent } = await import(process.env.EXAMPLES_MODULE);
const store = await EventStore.open({ dataDir: process.env.DATA_DIR, now: () => ${NOW} });
const round = process.env.ROUND;
for (let b = 0; ; b++) {
  const size = 1 + (b * 37) % 150;
  const batch = [];
  for (let i = 0; i < size; i++) {
    const e = exampleEvent('HostError', new Date(${NOW}), round + '-' + b + '-' + i);
    batch.push(i % 10 === 0 ? { ...e, data: { ...e.data, message: 'x'.repeat(3000) } } : e);
  }
  process.stdout.write('try ' + JSON.stringify(batch.map((e) => e.id)) + '\\n');
  await store.append(batch);
  process.stdout.write('ack ' + JSON.stringify(batch.map((e) => e.id)) + '\\n');
}
`;

interface ChildRun {
  acked: Set<string>;
  tried: Set<string>;
}

/** Runs the child until it has acknowledged `batches` batches (plus a varying moment more), then SIGKILLs it. */
function runAndKill(dataDir: string, round: number, batches: number): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      ROUND: String(round),
      STORE_MODULE: new URL('../../src/store/event-store.js', import.meta.url).href,
      EXAMPLES_MODULE: new URL('../../src/pipeline/examples.js', import.meta.url).href,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: ChildRun = { acked: new Set(), tried: new Set() };
  let buffered = '';
  let stderr = '';
  let ackedBatches = 0;
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      buffered += c.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const ids = JSON.parse(line.slice(4)) as string[];
        for (const id of ids) (line.startsWith('ack') ? run.acked : run.tried).add(id);
        if (line.startsWith('ack') && ++ackedBatches === batches) {
          // Kill at a moment that differs per round: sometimes in a write, sometimes in an fsync.
          setTimeout(() => child.kill('SIGKILL'), round % 4);
        }
      }
    });
    child.on('error', reject);
    // 'close', not 'exit': a 'try' line still in the pipe at the kill must be read before the store is checked.
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve(run);
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

describe('store crash safety', function () {
  let dir: string;
  const open = (): Promise<EventStore> => EventStore.open({ dataDir: dir, now: () => NOW, registry: new Registry() });

  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'dcp-crash-'));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged event when a writer process is killed mid-write, round after round', async function () {
    this.timeout(60_000);
    const acked = new Set<string>();
    const tried = new Set<string>();
    for (let round = 0; round < 6; round++) {
      const run = await runAndKill(dir, round, 20 + round * 7);
      for (const id of run.acked) acked.add(id);
      for (const id of run.tried) tried.add(id);
      const store = await open();
      const report = store.openReport;
      const stored = new Set((await store.read()).map((e) => e.id));
      // Every acknowledged event survived; nothing appeared that was never written; only the torn tail was cut.
      for (const id of acked) expect(stored.has(id), `acked ${id} lost in round ${round}`).to.equal(true);
      for (const id of stored) expect(tried.has(id), `unknown ${id}`).to.equal(true);
      expect(report.tornRecords).to.be.at.most(1);
      expect(report.corruptRecords).to.equal(0);
      // The file now ends on a record boundary, so the next writer appends cleanly.
      const text = await readFile(join(dir, 'raw', PARTITION), 'utf8');
      expect(text.endsWith('\n')).to.equal(true);
      await store.close();
    }
  });

  it('drops a torn last record, reports it, and appends cleanly after it', async function () {
    const a = exampleEvent('HostError', new Date(NOW), 'a');
    const b = exampleEvent('HostError', new Date(NOW), 'b');
    let store = await open();
    await store.append([a]);
    await store.close();
    const file = join(dir, 'raw', PARTITION);
    const goodSize = (await stat(file)).size;
    // What a kill in the middle of write(2) leaves: the first half of a record, no newline.
    const torn = encodeRecord(b);
    await appendFile(file, torn.slice(0, torn.length >> 1));
    store = await open();
    expect(store.openReport).to.include({ events: 1, tornRecords: 1, truncatedBytes: (torn.length >> 1) });
    expect((await stat(file)).size).to.equal(goodSize);
    await store.append([b]);
    expect((await store.read()).map((e) => e.id)).to.deep.equal([a.id, b.id]);
    await store.close();
  });

  it('treats a complete line with a wrong checksum at the end as torn, and one in the middle as corrupt', async function () {
    const events: DcpEvent[] = ['a', 'b', 'c'].map((k) => exampleEvent('HostError', new Date(NOW), k));
    const lines = events.map((e) => encodeRecord(e));
    const flip = (line: string): string => line.replace('HostError', 'HostErrox');
    const file = join(dir, 'raw', PARTITION);
    let store = await open();
    await store.close();
    await writeFile(file, [lines[0], flip(lines[1] as string), lines[2], flip(lines[2] as string)].join(''));
    store = await open();
    expect(store.openReport).to.include({ events: 2, tornRecords: 1, corruptRecords: 1 });
    expect((await store.read()).map((e) => e.id)).to.deep.equal([events[0]?.id, events[2]?.id]);
    await store.close();
  });
});
