// The formatting helpers of the dcp commands: aligned tables, local ISO times, sizes, counts and readable JSON.
import { expect } from 'chai';
import {
  countBy,
  displayWidth,
  formatBytes,
  formatNumber,
  formatTable,
  localClock,
  localDate,
  localIsoTime,
  oneLine,
  plural,
  prettyJson,
  shortId,
  truncate,
  utcOffsetLabel,
} from '../../src/cli/table.js';

/** Where each header word starts: the column positions every row must share. */
function starts(header: string): number[] {
  return [...header.matchAll(/\S+/g)].map((m) => m.index);
}

describe('formatTable', function () {
  const header = ['TIME', 'CATEGORY', 'ID', 'SUMMARY'];
  const rows = [
    ['2026-11-25 21:03:04', 'hostOs', 'a1', 'osImage="Ubuntu 22.04.5 LTS" cpu=4'],
    ['2026-11-25 21:03:05', 'controlPlane', 'b22', 'nodes=5 pods=40'],
  ];

  it('starts every cell of a column at the same position as its header', function () {
    const lines = formatTable(header, rows);
    const cols = starts(lines[0] ?? '');
    expect(cols).to.have.length(4);
    for (const [r, line] of lines.slice(1).entries()) {
      for (const [i, at] of cols.entries()) expect(line.slice(at).startsWith(rows[r]?.[i] ?? '?'), `row ${r} column ${i}`).to.equal(true);
    }
  });

  it('leaves no trailing spaces and separates columns by two spaces', function () {
    const lines = formatTable(['A', 'B'], [['x', ''], ['longer', 'y']]);
    for (const l of lines) expect(l).to.equal(l.trimEnd());
    expect(lines[2]).to.equal('longer  y');
  });

  it('right-aligns the columns asked for', function () {
    const lines = formatTable(['NAME', 'EVENTS'], [['a', '5'], ['b', '120']], { align: ['left', 'right'] });
    expect(lines).to.deep.equal(['NAME  EVENTS', 'a          5', 'b        120']);
  });

  it('cuts only the last column to fit a terminal, keeping the others aligned', function () {
    const lines = formatTable(header, rows, { maxWidth: 60 });
    for (const l of lines) expect(displayWidth(l)).to.be.at.most(60);
    expect(lines[1]?.endsWith('…')).to.equal(true);
    expect(starts(lines[0] ?? '')).to.deep.equal(starts(formatTable(header, rows)[0] ?? ''));
  });

  it('counts characters, not UTF-16 units, so accented and symbol cells stay aligned', function () {
    const lines = formatTable(['A', 'B'], [['é—', 'x'], ['ab', 'y']]);
    expect(lines[1]?.indexOf('x')).to.equal(lines[2]?.indexOf('y'));
  });
});

describe('truncate and displayWidth', function () {
  it('leaves text that fits alone and ends cut text with an ellipsis of the exact width', function () {
    expect(truncate('abc', 3)).to.equal('abc');
    expect(truncate('abcdef', 4)).to.equal('abc…');
    expect(displayWidth(truncate('ééééé', 3))).to.equal(3);
    expect(truncate('abc', 0)).to.equal('');
  });
});

describe('local ISO times', function () {
  const t = Date.parse('2026-11-25T20:03:04.567Z');

  it('writes the wall-clock time at the given offset to the second', function () {
    expect(localIsoTime(t, 60)).to.equal('2026-11-25 21:03:04');
    expect(localIsoTime(t, 0)).to.equal('2026-11-25 20:03:04');
    expect(localIsoTime(t, 330)).to.equal('2026-11-26 01:33:04');
    expect(localIsoTime(t, -600)).to.equal('2026-11-25 10:03:04');
  });

  it('gives the time of day and the date on their own', function () {
    expect(localClock(t, 60)).to.equal('21:03:04');
    expect(localDate(t, 330)).to.equal('2026-11-26');
  });

  it('uses this machine’s zone when no offset is given', function () {
    const d = new Date(t);
    const expected = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
    expect(localIsoTime(t)).to.equal(expected);
  });

  it('names the offset as UTC±hh:mm', function () {
    expect(utcOffsetLabel(0)).to.equal('UTC');
    expect(utcOffsetLabel(60)).to.equal('UTC+01:00');
    expect(utcOffsetLabel(-210)).to.equal('UTC-03:30');
    expect(utcOffsetLabel(345)).to.equal('UTC+05:45');
  });
});

describe('numbers, sizes and counts', function () {
  it('writes integers plainly and fractions to at most three decimals', function () {
    expect(formatNumber(34)).to.equal('34');
    expect(formatNumber(12.5)).to.equal('12.5');
    expect(formatNumber(1 / 3)).to.equal('0.333');
    expect(formatNumber(0.1 + 0.2)).to.equal('0.3');
  });

  it('writes sizes in B, KiB and MiB', function () {
    expect(formatBytes(512)).to.equal('512 B');
    expect(formatBytes(2560)).to.equal('2.5 KiB');
    expect(formatBytes(3 * 1024 * 1024)).to.equal('3.0 MiB');
    expect(formatBytes(200 * 1024)).to.equal('200 KiB');
  });

  it('says 1 event and 2 events', function () {
    expect(plural(1, 'event')).to.equal('1 event');
    expect(plural(2, 'event')).to.equal('2 events');
    expect(plural(0, 'entry', 'entries')).to.equal('0 entries');
  });

  it('counts by key in first-seen order', function () {
    expect([...countBy(['b', 'a', 'b'], (x) => x)]).to.deep.equal([
      ['b', 2],
      ['a', 1],
    ]);
  });

  it('shortens ids to 12 characters by default', function () {
    expect(shortId('0123456789abcdef')).to.equal('0123456789ab');
    expect(shortId('0123456789abcdef', 4)).to.equal('0123');
  });
});

describe('prettyJson', function () {
  const events = [
    { id: 'a', cluster: { id: 'c', region: 'eastus' }, data: { nodes: 5, podsByPhase: { Running: 3 } } },
    { id: 'b', cluster: { id: 'c', region: 'eastus' }, data: { osImage: 'Ubuntu "22.04"' } },
  ];

  it('is the same JSON value, only laid out', function () {
    expect(JSON.parse(prettyJson(events, { compact: new Set(['data']) }))).to.deep.equal(events);
    expect(JSON.parse(prettyJson(events, { depth: 1 }))).to.deep.equal(events);
  });

  it('puts the values of compact keys on one line and indents the rest', function () {
    const text = prettyJson(events, { compact: new Set(['cluster', 'data']) });
    expect(text).to.include('\n    "data": {"nodes": 5, "podsByPhase": {"Running": 3}}');
    expect(text).to.include('\n    "cluster": {"id": "c", "region": "eastus"}');
    expect(text.startsWith('[\n  {\n    "id": "a",')).to.equal(true);
  });

  it('writes one-line JSON with a space after colons and commas', function () {
    expect(oneLine({ a: [1, 'x'], b: null })).to.equal('{"a": [1, "x"], "b": null}');
  });
});
