// The billing meter's pure core: vCore history, interval schedule, time-weighted averages and the intervals to bill.
//
// How quantity is defined (the contract of every CoreUsage event):
// - Intervals are aligned to the Unix epoch: with length I they are [k·I, (k+1)·I).
// - The vCores in effect at time t are those of the last recorded change point at or before t.
//   Time with no observation after one was made (no leader ran, the operator was down) carries the
//   last known vCores forward: the Nodes did not go away because nobody was watching them.
// - Time before the very first observation is not billed: it counts as 0 vCores, and an interval
//   that ends before the first observation has no event at all. Metering therefore starts with the
//   interval that holds the first observation, billed for the part of it that was observed.
// - quantity = ∫ vCores dt over [start, end) / (end − start): the time-weighted average, a double.
// - A change of the interval length takes effect at the end of the interval in progress; if the new
//   length does not divide that instant, one shorter interval runs up to the next multiple of it,
//   after which intervals are aligned to the epoch again. The schedule of lengths is part of the
//   persisted state, so every replica cuts time into the same intervals.
import { toMillicores } from './projections.js';

/** vCores observed from time `t` (epoch ms) on, until the next point. */
export interface VCorePoint {
  readonly t: number;
  readonly vCores: number;
}

/** From `from` (epoch ms) on, intervals are `intervalSeconds` long. */
export interface IntervalRegime {
  readonly from: number;
  readonly intervalSeconds: number;
}

/** Interval lengths over time, sorted by `from`; before the first entry, the first applies. */
export type IntervalSchedule = readonly IntervalRegime[];

/** What the meter persists (in the `dcp-billing` ConfigMap). */
export interface MeterState {
  /** End of the last interval emitted = start of the first one not yet emitted (epoch ms). */
  readonly watermark: number;
  /** Sorted by `from`; the first entry is the one in effect at the watermark. */
  readonly schedule: IntervalSchedule;
  /**
   * Change points sorted by `t`, each with a different value from the previous one: the one in
   * effect at the watermark (if any) and every later one. Pruned as intervals close.
   */
  readonly history: readonly VCorePoint[];
}

/** One closed interval and what it bills. */
export interface CoreUsageInterval {
  readonly start: number;
  readonly end: number;
  readonly intervalSeconds: number;
  /** Time-weighted average vCores over [start, end). */
  readonly quantity: number;
}

/** The persisted state is not something this code wrote. */
export class MalformedMeterState extends Error {
  override readonly name = 'MalformedMeterState';
}

function asSchedule(schedule: number | IntervalSchedule): IntervalSchedule {
  const s = typeof schedule === 'number' ? [{ from: 0, intervalSeconds: schedule }] : schedule;
  if (s.length === 0) throw new RangeError('an interval schedule needs at least one entry');
  for (const r of s) {
    if (!Number.isInteger(r.intervalSeconds) || r.intervalSeconds < 1) throw new RangeError(`interval of ${r.intervalSeconds} s`);
  }
  return s;
}

/** The entry in effect at `t`: the last one starting at or before it, else the first. */
function regimeAt(schedule: IntervalSchedule, t: number): IntervalRegime {
  let found = schedule[0];
  for (const r of schedule) {
    if (r.from <= t) found = r;
    else break;
  }
  if (found === undefined) throw new RangeError('empty interval schedule');
  return found;
}

/** The intervals from `from` on, back to back, without end. */
export function* intervalsFrom(schedule: number | IntervalSchedule, from: number): Generator<{ start: number; end: number }> {
  const s = asSchedule(schedule);
  let start = from;
  for (;;) {
    const lengthMs = regimeAt(s, start).intervalSeconds * 1000;
    let end = (Math.floor(start / lengthMs) + 1) * lengthMs;
    const next = s.find((r) => r.from > start);
    if (next !== undefined && next.from < end) end = next.from;
    yield { start, end };
    start = end;
  }
}

/** Index of the last point with t ≤ time, or -1. */
function lastAtOrBefore(history: readonly VCorePoint[], time: number): number {
  let lo = 0;
  let hi = history.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const p = history[mid];
    if (p !== undefined && p.t <= time) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * The time-weighted average vCores over [start, end), or undefined when nothing was observed before
 * `end` (such an interval is not billed). Time before the first point counts as 0. The integral is
 * summed in integer millicore-milliseconds, so the result does not depend on the order of additions.
 */
export function timeWeightedAverage(history: readonly VCorePoint[], start: number, end: number): number | undefined {
  if (!(end > start)) throw new RangeError(`empty interval [${start}, ${end})`);
  const first = history[0];
  if (first === undefined || first.t >= end) return undefined;
  let i = Math.max(0, lastAtOrBefore(history, start));
  let sum = 0;
  for (; i < history.length; i++) {
    const p = history[i];
    if (p === undefined || p.t >= end) break;
    const from = Math.max(p.t, start);
    const to = Math.min(history[i + 1]?.t ?? end, end);
    if (to > from) sum += toMillicores(p.vCores) * (to - from);
  }
  return sum / (end - start) / 1000;
}

export interface ClosedIntervals {
  /** The intervals to bill, oldest first. */
  readonly intervals: CoreUsageInterval[];
  /** The end of the last closed interval looked at (billed or not): the next watermark. */
  readonly watermark: number;
}

/**
 * Every interval from `watermark` on that has ended by `now`, with its quantity; intervals with no
 * observation before their end are passed over unbilled. `limit` bounds one call, so a long
 * back-fill goes out in batches.
 */
export function closedIntervals(
  history: readonly VCorePoint[],
  watermark: number,
  now: number,
  schedule: number | IntervalSchedule,
  limit = Infinity,
): ClosedIntervals {
  const intervals: CoreUsageInterval[] = [];
  let next = watermark;
  for (const { start, end } of intervalsFrom(schedule, watermark)) {
    if (end > now || intervals.length >= limit) break;
    const quantity = timeWeightedAverage(history, start, end);
    if (quantity !== undefined) intervals.push({ start, end, intervalSeconds: (end - start) / 1000, quantity });
    next = end;
  }
  return { intervals, watermark: next };
}

/** The end of the first interval from the watermark that is still open at `now`. */
export function openIntervalEnd(state: MeterState, now: number): number {
  for (const { end } of intervalsFrom(state.schedule, state.watermark)) {
    if (end > now) return end;
  }
  throw new Error('unreachable');
}

/** The state of a meter that never ran: metering starts with the interval holding the first observation. */
export function initialMeterState(firstObservation: number, intervalSeconds: number): MeterState {
  const lengthMs = intervalSeconds * 1000;
  const watermark = Math.floor(firstObservation / lengthMs) * lengthMs;
  return { watermark, schedule: [{ from: watermark, intervalSeconds }], history: [] };
}

/**
 * The history with `points` merged in: sorted by t, a later-merged point wins on an equal t, and a
 * point repeating the value before it is dropped (it changes no integral). The first point is always
 * kept: it marks the start of observation.
 */
export function mergePoints(history: readonly VCorePoint[], points: readonly VCorePoint[]): VCorePoint[] {
  if (points.length === 0) return [...history];
  const byTime = new Map<number, VCorePoint>();
  for (const p of history) byTime.set(p.t, p);
  for (const p of points) byTime.set(p.t, p);
  const sorted = [...byTime.values()].sort((a, b) => a.t - b.t);
  const out: VCorePoint[] = [];
  for (const p of sorted) {
    const prev = out[out.length - 1];
    if (prev === undefined || toMillicores(prev.vCores) !== toMillicores(p.vCores)) out.push(p);
  }
  return out;
}

/** Keeps the point in effect at `watermark` and every later one. */
export function pruneHistory(history: readonly VCorePoint[], watermark: number): VCorePoint[] {
  const i = lastAtOrBefore(history, watermark);
  return i <= 0 ? [...history] : history.slice(i);
}

/**
 * The state with the interval length set to `intervalSeconds` from the end of the interval in
 * progress at `now` (or at the watermark, if that is later) on. Idempotent, and a change back
 * before the boundary cancels the pending one.
 */
export function withIntervalSeconds(state: MeterState, intervalSeconds: number, now: number): MeterState {
  asSchedule(intervalSeconds);
  const t = Math.max(now, state.watermark);
  const kept = state.schedule.filter((r, i) => i === 0 || r.from <= t);
  const lengthMs = regimeAt(kept, t).intervalSeconds * 1000;
  const boundary = (Math.floor(t / lengthMs) + 1) * lengthMs;
  const schedule = regimeAt(kept, boundary).intervalSeconds === intervalSeconds ? kept : [...kept, { from: boundary, intervalSeconds }];
  if (sameSchedule(schedule, state.schedule)) return state;
  return { ...state, schedule };
}

export function sameSchedule(a: IntervalSchedule, b: IntervalSchedule): boolean {
  return a.length === b.length && a.every((r, i) => r.from === b[i]?.from && r.intervalSeconds === b[i]?.intervalSeconds);
}

/** The state after the intervals up to `to` were stored: watermark moved, history and schedule pruned. */
export function advanceWatermark(state: MeterState, to: number): MeterState {
  if (to <= state.watermark) return state;
  const current = regimeAt(state.schedule, to);
  return {
    watermark: to,
    schedule: state.schedule.filter((r) => r === current || r.from > to),
    history: pruneHistory(state.history, to),
  };
}

/** The state with observed points merged in, pruned to the watermark. */
export function withPoints(state: MeterState, points: readonly VCorePoint[]): MeterState {
  if (points.length === 0) return state;
  return { ...state, history: pruneHistory(mergePoints(state.history, points), state.watermark) };
}

interface SerializedState {
  version: 1;
  watermark: string;
  schedule: { from: string; intervalSeconds: number }[];
  /** [time, vCores] pairs. */
  history: [string, number][];
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** JSON with RFC 3339 times, so `kubectl get configmap dcp-billing -o yaml` can be read by a person. */
export function serializeMeterState(state: MeterState): string {
  const s: SerializedState = {
    version: 1,
    watermark: iso(state.watermark),
    schedule: state.schedule.map((r) => ({ from: iso(r.from), intervalSeconds: r.intervalSeconds })),
    history: state.history.map((p) => [iso(p.t), p.vCores]),
  };
  return JSON.stringify(s);
}

function time(v: unknown, what: string): number {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw new MalformedMeterState(`${what} is not a time`);
  return ms;
}

/** Parses what serializeMeterState wrote; throws MalformedMeterState for anything else. */
export function parseMeterState(text: string): MeterState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MalformedMeterState('not JSON');
  }
  const o = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : undefined;
  if (o?.['version'] !== 1) throw new MalformedMeterState('unknown version');
  const watermark = time(o['watermark'], 'watermark');
  const rawSchedule = o['schedule'];
  const rawHistory = o['history'];
  if (!Array.isArray(rawSchedule) || rawSchedule.length === 0) throw new MalformedMeterState('schedule is not a non-empty list');
  if (!Array.isArray(rawHistory)) throw new MalformedMeterState('history is not a list');
  const schedule = rawSchedule.map((r: unknown, i): IntervalRegime => {
    const e = typeof r === 'object' && r !== null ? (r as Record<string, unknown>) : {};
    const seconds = e['intervalSeconds'];
    if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1) throw new MalformedMeterState(`schedule[${i}].intervalSeconds`);
    return { from: time(e['from'], `schedule[${i}].from`), intervalSeconds: seconds };
  });
  const history = rawHistory.map((p: unknown, i): VCorePoint => {
    if (!Array.isArray(p) || p.length !== 2) throw new MalformedMeterState(`history[${i}] is not a pair`);
    const vCores: unknown = p[1];
    if (typeof vCores !== 'number' || !Number.isFinite(vCores) || vCores < 0) throw new MalformedMeterState(`history[${i}] vCores`);
    return { t: time(p[0], `history[${i}]`), vCores };
  });
  for (let i = 1; i < schedule.length; i++) {
    if ((schedule[i]?.from ?? 0) <= (schedule[i - 1]?.from ?? 0)) throw new MalformedMeterState('schedule is not sorted');
  }
  for (let i = 1; i < history.length; i++) {
    if ((history[i]?.t ?? 0) <= (history[i - 1]?.t ?? 0)) throw new MalformedMeterState('history is not sorted');
  }
  return { watermark, schedule, history };
}
