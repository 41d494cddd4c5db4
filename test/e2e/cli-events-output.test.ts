// `dcp events` output: everything reaches a slow pipe before the process exits; a damaged store is reported with counts.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { DcpEvent } from '../../src/api/event.js';
import { exampleEvent } from '../../src/pipeline/examples.js';
import { EventStore } from '../../src/store/event-store.js';
import { DCP, runDcp } from './operator-process.js';

/** Runs a command with stdout on a real pipe that this side reads slowly, so the pipe fills up. */
function throughSlowPipe(args: string[]): Promise<{ stdout: Buffer; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DCP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    // Paused at first: the writer meets a full 64 KiB pipe, as with `| jq` on a busy machine.
    child.stdout.pause();
    setTimeout(() => {
      child.stdout.on('data', (c: Buffer) => {
        chunks.push(c);
        child.stdout.pause();
        setTimeout(() => child.stdout.resume(), 2);
      });
      child.stdout.resume();
    }, 500);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(chunks), stderr, code }));
  });
}

describe('dcp events output', function () {
  this.timeout(120_000);
  let dir: string;
  let stored: DcpEvent[];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'dcp-events-output-'));
    const now = Date.now();
    const store = await EventStore.open({ dataDir: join(dir, 'big'), now: () => now, registry: new Registry() });
    stored = [];
    for (let i = 0; i < 8000; i++) stored.push(exampleEvent('HostError', new Date(now - 3_600_000 + i), `pipe-${i}`));
    await store.append(stored);
    await store.close();
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes more than 1 MB of JSON through a slow pipe, whole and parseable, with exit 0', async function () {
    const r = await throughSlowPipe(['events', '--data-dir', join(dir, 'big'), '--output', 'json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.length).to.be.greaterThan(1 << 20);
    const events = JSON.parse(r.stdout.toString('utf8')) as DcpEvent[];
    expect(events.map((e) => e.id)).to.deep.equal(stored.map((e) => e.id));
    // The table too: its last line is the footer, so a cut-off table would show.
    const table = await throughSlowPipe(['events', '--data-dir', join(dir, 'big')]);
    expect(table.code, table.stderr).to.equal(0);
    expect(table.stdout.length).to.be.greaterThan(1 << 20);
    expect(table.stdout.toString('utf8').trimEnd().split('\n').at(-1)).to.match(/^8000 events · hostErrors 8000 · times in /);
  });

  it('reports corrupt and unreadable files on stderr with counts, and exits 1 when nothing could be read', async function () {
    const bad = join(dir, 'bad');
    mkdirSync(join(bad, 'raw'), { recursive: true });
    // 5,000 random-looking bytes with newlines: a day file that is not a store's.
    const junk = Buffer.alloc(5000);
    for (let i = 0; i < junk.length; i++) junk[i] = i % 250 === 249 ? 10 : 33 + ((i * 7919) % 90);
    writeFileSync(join(bad, 'raw', '2026-12-01.jsonl'), junk);
    // A day "file" that cannot be read at all.
    mkdirSync(join(bad, 'raw', '2026-12-02.jsonl'));
    const r = await runDcp(['events', '--data-dir', bad]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr.split('\n').slice(0, 2)).to.deep.equal([
      'dcp events: skipped 20 corrupt records; 1 file without one readable record; 1 file unreadable (raw/2026-12-02.jsonl: EISDIR: illegal operation on a directory, read)',
      `dcp events: nothing in ${bad} could be read`,
    ]);
  });

  it('reads what it can beside a damaged file: the good events, the count of the rest on stderr, exit 0', async function () {
    const mixed = join(dir, 'mixed');
    const now = Date.now();
    const store = await EventStore.open({ dataDir: mixed, now: () => now, registry: new Registry() });
    await store.append([exampleEvent('HostError', new Date(now - 1000), 'good')]);
    await store.close();
    writeFileSync(join(mixed, 'raw', '2026-01-01.jsonl'), 'not a record\nnor this\n');
    const r = await runDcp(['events', '--data-dir', mixed, '--output', 'json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('dcp events: skipped 2 corrupt records; 1 file without one readable record\n');
    expect((JSON.parse(r.stdout) as DcpEvent[]).map((e) => e.id)).to.have.length(1);
  });
});
