// Restart backoff: the delay sequence, its jitter and cap, and the reset after a healthy period, on injected time and randomness.
import { expect } from 'chai';
import { Backoff } from '../../src/runtime/backoff.js';
import { backoffDelay } from '../../src/sinks/backoff.js';
import { DEFAULT_SINK_BACKOFF } from '../../src/sinks/dispatcher.js';

/** Delays asked for at the given times. */
function delays(b: Backoff, times: number[]): number[] {
  return times.map((t) => b.next(t));
}

describe('restart backoff', function () {
  it('doubles from 800 ms and stops at 30 s when the jitter draws 0', function () {
    const b = new Backoff({ random: () => 0 });
    expect(delays(b, [0, 1, 2, 3, 4, 5, 6, 7, 8])).to.deep.equal([800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]);
  });

  it('adds up to one base delay of jitter, never beyond the 30 s cap', function () {
    const b = new Backoff({ random: () => 0.999_999 });
    const seq = delays(b, [0, 1, 2, 3, 4, 5, 6]);
    expect(seq.slice(0, 5)).to.deep.equal([1600, 3200, 6400, 12_800, 25_600]);
    expect(seq.slice(5)).to.deep.equal([30_000, 30_000]);
  });

  it('spreads the first delay of many clients between 800 ms and 1.6 s', function () {
    const draws = [0, 0.25, 0.5, 0.75];
    const firsts = draws.map((r) => new Backoff({ random: () => r }).next(0));
    expect(firsts).to.deep.equal([800, 1000, 1200, 1400]);
  });

  it('starts again from 800 ms once the previous failure is more than two minutes old', function () {
    const b = new Backoff({ random: () => 0 });
    expect(delays(b, [0, 1_000, 3_000])).to.deep.equal([800, 1600, 3200]);
    // Healthy for 2 min + 1 ms after the last failure.
    expect(b.next(3_000 + 120_001)).to.equal(800);
  });

  it('keeps growing while failures come closer than the reset period', function () {
    const b = new Backoff({ random: () => 0 });
    let t = 0;
    const seq: number[] = [];
    for (let i = 0; i < 8; i++) {
      const d = b.next(t);
      seq.push(d);
      t += d + 500; // the retry fails half a second after it starts
    }
    expect(seq).to.deep.equal([800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000]);
  });

  it('bounds the attempts while the API server is down: at most 18 in 5 minutes, whatever the jitter draws', function () {
    for (const r of [0, 0.5, 1]) {
      const b = new Backoff({ random: () => r });
      let t = 0;
      let attempts = 0;
      while (t < 300_000) {
        attempts += 1;
        t += b.next(t);
      }
      expect(attempts, `random=${r}`).to.be.at.most(18);
    }
  });

  it('follows its options for tests: initial, factor, cap and reset period', function () {
    const b = new Backoff({ initialMs: 10, factor: 3, maxMs: 100, jitter: 0, resetAfterMs: 50 });
    expect(delays(b, [0, 1, 2, 3])).to.deep.equal([10, 30, 90, 100]);
    expect(b.next(100)).to.equal(10);
    b.reset();
    expect(b.attempts).to.equal(0);
  });
});

describe('sink delivery backoff', function () {
  it('tries a failing sink again within a minute however long it has failed (a 5-minute ceiling left one 346 s behind after an outage)', function () {
    for (const random of [() => 0, () => 0.999_999]) {
      const delays = Array.from({ length: 40 }, (_, attempt) => backoffDelay(attempt, { ...DEFAULT_SINK_BACKOFF, random }));
      expect(Math.max(...delays)).to.be.at.most(60_000);
      expect(delays[0]).to.be.at.least(500);
    }
  });
});
