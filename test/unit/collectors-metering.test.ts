// The billing meter's pure core: averages, interval cutting, back-fill, interval changes and the persisted form.
import { expect } from 'chai';
import fc from 'fast-check';
import {
  advanceWatermark,
  closedIntervals,
  initialMeterState,
  intervalsFrom,
  MalformedMeterState,
  mergePoints,
  openIntervalEnd,
  parseMeterState,
  pruneHistory,
  serializeMeterState,
  timeWeightedAverage,
  withIntervalSeconds,
  withPoints,
  type MeterState,
  type VCorePoint,
} from '../../src/collectors/metering.js';

const MIN = 60_000;
const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const at = (minutes: number): number => T0 + minutes * MIN;
const p = (minutes: number, vCores: number): VCorePoint => ({ t: at(minutes), vCores });

function take<T>(gen: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  for (const x of gen) {
    if (out.length >= n) break;
    out.push(x);
  }
  return out;
}

describe('collectors: time-weighted average of vCores', function () {
  it('is the constant value over an interval with no change', function () {
    expect(timeWeightedAverage([p(-30, 4)], at(0), at(60))).to.equal(4);
  });

  it('weights a change in the middle of the interval by time', function () {
    // 4 vCores for 15 minutes, 8 for 45: (4·15 + 8·45) / 60 = 7
    expect(timeWeightedAverage([p(-5, 4), p(15, 8)], at(0), at(60))).to.equal(7);
  });

  it('handles several changes, including to zero', function () {
    // 2 for 10 min, 0 for 20, 6 for 30: (20 + 0 + 180) / 60
    expect(timeWeightedAverage([p(0, 2), p(10, 0), p(30, 6)], at(0), at(60))).to.be.closeTo(200 / 60, 1e-12);
  });

  it('carries the last known value forward across a gap with no observation', function () {
    // Observed 4 at -300 min (before a long outage), nothing since: still 4.
    expect(timeWeightedAverage([p(-300, 4)], at(0), at(60))).to.equal(4);
  });

  it('counts time before the first observation as 0: metering starts at the first observation', function () {
    // First observed at minute 20 with 6 vCores: 6 · 40 / 60
    expect(timeWeightedAverage([p(20, 6)], at(0), at(60))).to.equal(4);
  });

  it('is undefined for an interval that ends before, or exactly at, the first observation', function () {
    expect(timeWeightedAverage([p(60, 6)], at(0), at(60))).to.equal(undefined);
    expect(timeWeightedAverage([], at(0), at(60))).to.equal(undefined);
  });

  it('ignores points after the interval and uses the one in effect at its start', function () {
    expect(timeWeightedAverage([p(-10, 1), p(-5, 3), p(30, 5), p(60, 100), p(90, 7)], at(0), at(60))).to.equal(4);
  });

  it('sums in millicore-milliseconds, so fractional vCores average exactly', function () {
    expect(timeWeightedAverage([p(0, 0.1), p(30, 0.2)], at(0), at(60))).to.equal(0.15);
    expect(timeWeightedAverage([p(0, 3.5)], at(0), at(60))).to.equal(3.5);
  });

  it('refuses an empty interval', function () {
    expect(() => timeWeightedAverage([p(0, 1)], at(1), at(1))).to.throw(RangeError);
  });
});

describe('collectors: metering intervals', function () {
  it('cuts time into epoch-aligned intervals of the given length', function () {
    const got = take(intervalsFrom(3600, at(0)), 3);
    expect(got).to.deep.equal([
      { start: at(0), end: at(60) },
      { start: at(60), end: at(120) },
      { start: at(120), end: at(180) },
    ]);
  });

  it('closes only intervals that have ended, and says where the next one starts', function () {
    const r = closedIntervals([p(10, 4)], at(0), at(150), 3600);
    expect(r.intervals.map((i) => [i.start, i.end])).to.deep.equal([
      [at(0), at(60)],
      [at(60), at(120)],
    ]);
    expect(r.watermark).to.equal(at(120));
  });

  it('closes an interval exactly at its end, not before', function () {
    expect(closedIntervals([p(0, 4)], at(0), at(60) - 1, 3600).intervals).to.have.length(0);
    expect(closedIntervals([p(0, 4)], at(0), at(60), 3600).intervals).to.have.length(1);
  });

  it('back-fills every interval missed during an outage from the recorded history', function () {
    // A leader saw 4 until minute 70, 8 from 70; then no leader ran until minute 300.
    const r = closedIntervals([p(0, 4), p(70, 8)], at(0), at(300), 3600);
    expect(r.intervals.map((i) => i.quantity)).to.deep.equal([4, (4 * 10 + 8 * 50) / 60, 8, 8, 8]);
    expect(r.intervals.map((i) => i.intervalSeconds)).to.deep.equal([3600, 3600, 3600, 3600, 3600]);
    expect(r.watermark).to.equal(at(300));
  });

  it('does not bill intervals before the first observation but moves past them', function () {
    const r = closedIntervals([p(130, 2)], at(0), at(180), 3600);
    expect(r.intervals.map((i) => [i.start, i.quantity])).to.deep.equal([[at(120), 2 * 50 / 60]]);
    expect(r.watermark).to.equal(at(180));
  });

  it('gives a back-fill in batches when limited', function () {
    const first = closedIntervals([p(0, 1)], at(0), at(600), 3600, 4);
    expect(first.intervals).to.have.length(4);
    expect(first.watermark).to.equal(at(240));
    const rest = closedIntervals([p(0, 1)], first.watermark, at(600), 3600, 4);
    expect(rest.intervals[0]?.start).to.equal(at(240));
  });

  it('leaves no gap and no overlap between consecutive intervals over many changes', function () {
    const history = [p(0, 1), p(7, 2), p(61, 3), p(62, 0), p(200, 5)];
    const r = closedIntervals(history, at(0), at(24 * 60), 900);
    for (let i = 1; i < r.intervals.length; i++) expect(r.intervals[i]?.start).to.equal(r.intervals[i - 1]?.end);
    expect(r.intervals).to.have.length(96);
    // The sum of quantity × length equals the integral of the history.
    const billed = r.intervals.reduce((s, i) => s + i.quantity * i.intervalSeconds, 0);
    const integral = (1 * 7 + 2 * 54 + 3 * 1 + 0 * 138 + 5 * (1440 - 200)) * 60;
    expect(billed).to.be.closeTo(integral, 1e-6);
  });

  it('names the end of the interval still open', function () {
    const s = initialMeterState(at(10), 3600);
    expect(openIntervalEnd(s, at(10))).to.equal(at(60));
    expect(openIntervalEnd(s, at(60))).to.equal(at(120));
  });
});

describe('collectors: meter state', function () {
  it('starts metering at the interval that holds the first observation', function () {
    expect(initialMeterState(at(25), 3600)).to.deep.equal({ watermark: at(0), schedule: [{ from: at(0), intervalSeconds: 3600 }], history: [] });
  });

  it('merges points in time order, the later-merged winning a tie, and drops repeats of the value before', function () {
    const merged = mergePoints([p(0, 4), p(10, 8)], [p(5, 4), p(10, 6), p(20, 6), p(30, 2)]);
    expect(merged).to.deep.equal([p(0, 4), p(10, 6), p(30, 2)]);
  });

  it('prunes history to the point in effect at the watermark and later ones', function () {
    expect(pruneHistory([p(0, 1), p(10, 2), p(70, 3)], at(60))).to.deep.equal([p(10, 2), p(70, 3)]);
    expect(pruneHistory([p(70, 3)], at(60))).to.deep.equal([p(70, 3)]);
  });

  it('advances the watermark, pruning history and schedule, and never moves it back', function () {
    let s: MeterState = withPoints(initialMeterState(at(5), 3600), [p(5, 1), p(30, 2), p(90, 3)]);
    s = advanceWatermark(s, at(60));
    expect(s.watermark).to.equal(at(60));
    expect(s.history).to.deep.equal([p(30, 2), p(90, 3)]);
    expect(advanceWatermark(s, at(0))).to.equal(s);
  });

  it('an interval change takes effect at the end of the interval in progress', function () {
    const s = withIntervalSeconds(initialMeterState(at(0), 3600), 900, at(20));
    expect(s.schedule).to.deep.equal([
      { from: at(0), intervalSeconds: 3600 },
      { from: at(60), intervalSeconds: 900 },
    ]);
    const r = closedIntervals([p(0, 4)], s.watermark, at(120), s.schedule);
    expect(r.intervals.map((i) => [(i.start - T0) / MIN, i.intervalSeconds])).to.deep.equal([
      [0, 3600],
      [60, 900],
      [75, 900],
      [90, 900],
      [105, 900],
    ]);
  });

  it('a longer interval that does not divide the boundary runs one short interval to realign with the epoch', function () {
    // 15-minute intervals, changed to hourly during [00:15, 00:30): from 00:30 one interval to 01:00, then hourly.
    let s = initialMeterState(at(0), 900);
    s = withIntervalSeconds(s, 3600, at(20));
    const r = closedIntervals([p(0, 2)], s.watermark, at(180), s.schedule);
    expect(r.intervals.map((i) => [(i.start - T0) / MIN, (i.end - T0) / MIN])).to.deep.equal([
      [0, 15],
      [15, 30],
      [30, 60],
      [60, 120],
      [120, 180],
    ]);
  });

  it('an interval change is idempotent, and changing back before the boundary cancels it', function () {
    const s0 = initialMeterState(at(0), 3600);
    const s1 = withIntervalSeconds(s0, 900, at(20));
    expect(withIntervalSeconds(s1, 900, at(40))).to.equal(s1);
    expect(withIntervalSeconds(s1, 3600, at(40)).schedule).to.deep.equal(s0.schedule);
    // After the boundary the new length is simply in effect.
    expect(withIntervalSeconds(s1, 900, at(70))).to.equal(s1);
  });

  it('an interval change while back-filling applies after the interval holding now, not the watermark', function () {
    const s = withIntervalSeconds(initialMeterState(at(0), 3600), 600, at(250));
    expect(s.schedule[1]).to.deep.equal({ from: at(300), intervalSeconds: 600 });
  });

  it('keeps the regime in effect at the watermark when it advances past a change', function () {
    let s = withIntervalSeconds(initialMeterState(at(0), 3600), 900, at(20));
    s = advanceWatermark(s, at(75));
    expect(s.schedule).to.deep.equal([{ from: at(60), intervalSeconds: 900 }]);
  });

  it('round-trips through its JSON form with readable times', function () {
    const s = withIntervalSeconds(withPoints(initialMeterState(at(5), 3600), [p(5, 1.5), p(30, 2)]), 900, at(20));
    const text = serializeMeterState(s);
    expect(text).to.contain('2026-03-01T00:00:00.000Z');
    expect(parseMeterState(text)).to.deep.equal(s);
  });

  it('refuses a state it did not write rather than guessing', function () {
    for (const bad of [
      'nope',
      '{}',
      JSON.stringify({ version: 2 }),
      JSON.stringify({ version: 1, watermark: 'x', schedule: [], history: [] }),
      JSON.stringify({ version: 1, watermark: '2026-03-01T00:00:00Z', schedule: [], history: [] }),
      JSON.stringify({ version: 1, watermark: '2026-03-01T00:00:00Z', schedule: [{ from: '2026-03-01T00:00:00Z', intervalSeconds: 0 }], history: [] }),
      JSON.stringify({ version: 1, watermark: '2026-03-01T00:00:00Z', schedule: [{ from: '2026-03-01T00:00:00Z', intervalSeconds: 60 }], history: [['2026-03-01T00:00:00Z', -1]] }),
      JSON.stringify({
        version: 1,
        watermark: '2026-03-01T00:00:00Z',
        schedule: [{ from: '2026-03-01T00:00:00Z', intervalSeconds: 60 }],
        history: [
          ['2026-03-01T00:10:00Z', 1],
          ['2026-03-01T00:05:00Z', 2],
        ],
      }),
    ]) {
      expect(() => parseMeterState(bad), bad).to.throw(MalformedMeterState);
    }
  });
});

describe('collectors: metering properties', function () {
  const historyArb = fc
    .array(fc.tuple(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 64_000 })), { minLength: 1, maxLength: 30 })
    .map((pairs) => mergePoints([], [...new Map(pairs.map(([m, mc]) => [m, mc / 1000])).entries()].sort((a, b) => a[0] - b[0]).map(([m, v]) => p(m, v))));
  const lengthArb = fc.constantFrom(60, 300, 600, 900, 1800, 3600);

  it('bills the integral of the history exactly, with no gap and no overlap', function () {
    fc.assert(
      fc.property(historyArb, lengthArb, (history, seconds) => {
        const first = history[0];
        if (first === undefined) return;
        const s = initialMeterState(first.t, seconds);
        const end = at(720);
        const r = closedIntervals(history, s.watermark, end, seconds);
        for (let i = 1; i < r.intervals.length; i++) expect(r.intervals[i]?.start).to.equal(r.intervals[i - 1]?.end);
        const billed = r.intervals.reduce((sum, i) => sum + i.quantity * (i.end - i.start), 0);
        let integral = 0;
        for (let i = 0; i < history.length; i++) {
          const from = history[i]?.t ?? 0;
          const to = Math.min(history[i + 1]?.t ?? r.watermark, r.watermark);
          if (to > from) integral += (history[i]?.vCores ?? 0) * (to - from);
        }
        expect(billed).to.be.closeTo(integral, 1e-6 * Math.max(1, integral));
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same intervals whether closed in one pass or across restarts with the state pruned in between', function () {
    fc.assert(
      fc.property(historyArb, lengthArb, fc.array(fc.integer({ min: 0, max: 720 }), { maxLength: 6 }), (history, seconds, restarts) => {
        const first = history[0];
        if (first === undefined) return;
        const start = initialMeterState(first.t, seconds);
        const once = closedIntervals(history, start.watermark, at(720), seconds).intervals;
        let state = withPoints(start, history);
        const pieces = [];
        for (const minute of [...restarts.sort((a, b) => a - b), 720]) {
          const r = closedIntervals(state.history, state.watermark, at(minute), state.schedule);
          pieces.push(...r.intervals);
          state = parseMeterState(serializeMeterState(advanceWatermark(state, r.watermark)));
        }
        expect(pieces).to.deep.equal(once);
      }),
      { numRuns: 300 },
    );
  });
});
