// KEP-1623 condition helpers: set a condition without touching lastTransitionTime unless its status changed.
import type { Condition, ConditionType } from './policy.js';

export type ConditionStatus = Condition['status'];

export interface DesiredCondition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * Returns the conditions with `desired` applied: existing ones of other types stay, a type whose
 * status is unchanged keeps its lastTransitionTime, and the result is ordered by `desired`.
 */
export function applyConditions(existing: readonly Condition[] | undefined, desired: readonly DesiredCondition[], generation: number, now: Date): Condition[] {
  const byType = new Map((existing ?? []).map((c) => [c.type, c]));
  const out: Condition[] = desired.map((d) => {
    const old = byType.get(d.type);
    byType.delete(d.type);
    return {
      type: d.type,
      status: d.status,
      observedGeneration: generation,
      lastTransitionTime: old && old.status === d.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      reason: d.reason,
      message: d.message,
    };
  });
  return [...out, ...byType.values()];
}

export function findCondition(conditions: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: ConditionType): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/** Conditions whose status or reason differs between two lists: the transitions worth an Event. */
export function conditionTransitions(before: readonly Condition[] | undefined, after: readonly Condition[]): Condition[] {
  return after.filter((c) => {
    const old = findCondition(before, c.type as ConditionType);
    return !old || old.status !== c.status || old.reason !== c.reason;
  });
}
