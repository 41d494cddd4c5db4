// The list → watch loop of a reflector as a pure state machine: what happened in, next state and effects out.
import { Gone, RequestStalled, ResourceVersionTooLarge, TooManyRequests, TransportError, WatchClosedEarly, errorReason } from '../kube/errors.js';
import type { WatchEventType } from '../kube/json-lines.js';

/** Where a list starts: "" is the most recent state (a consistent read). */
export interface ListFrom {
  readonly resourceVersion: string;
  /** Set with a non-empty resourceVersion: any state at least that new will do. */
  readonly match?: 'NotOlderThan';
}

export interface Listing {
  readonly phase: 'Listing';
  readonly from: ListFrom;
  /** The next page's continue token; undefined asks for the first page. */
  readonly continueToken: string | undefined;
  /** The list already started over once because its continue token expired. */
  readonly restartedForExpiredToken: boolean;
}

export interface Watching {
  readonly phase: 'Watching';
  /** The last resourceVersion seen (list, event or bookmark): the next watch starts here. */
  readonly resourceVersion: string;
}

export interface BackingOff {
  readonly phase: 'BackingOff';
  /** Why: the restart reason, also the metric label. */
  readonly reason: string;
  readonly error: unknown;
  /**
   * True when the wait precedes a relist the server asked for (410, too large): the server is up,
   * so the driver uses a separate, short backoff; otherwise a restart after a failure.
   */
  readonly resync: boolean;
  /** Where to go once the delay has passed. */
  readonly next: Listing | Watching;
}

export interface Stopped {
  readonly phase: 'Stopped';
}

export type ReflectorState = Listing | Watching | BackingOff | Stopped;

export type ReflectorInput =
  /** A page arrived; its items are already collected by the driver. */
  | { readonly kind: 'ListPage'; readonly resourceVersion: string; readonly continueToken: string | undefined }
  | { readonly kind: 'ListFailed'; readonly error: unknown }
  /** One watch event; for ERROR, `error` is the typed error built from its Status. */
  | { readonly kind: 'WatchEvent'; readonly type: WatchEventType; readonly resourceVersion: string | undefined; readonly error?: unknown }
  /** The server ended the watch cleanly (its timeoutSeconds ran out, or it was shutting down). */
  | { readonly kind: 'WatchClosed'; readonly durationMs: number; readonly events: number }
  | { readonly kind: 'WatchFailed'; readonly error: unknown }
  | { readonly kind: 'BackoffElapsed' }
  | { readonly kind: 'Stop' };

export type ReflectorEffect =
  /** Apply the current watch event's object to the store. */
  | { readonly kind: 'ApplyEvent' }
  /** The list is complete: replace the store with the collected pages, delivering the difference. */
  | { readonly kind: 'CommitList'; readonly resourceVersion: string }
  /** A relist begins because the watch can no longer continue from its resourceVersion. */
  | { readonly kind: 'Relist'; readonly reason: string }
  /** A list or watch failed and will be started again. */
  | { readonly kind: 'Restart'; readonly reason: string; readonly error: unknown };

export interface Step {
  readonly state: ReflectorState;
  readonly effects: readonly ReflectorEffect[];
}

export interface MachineOptions {
  /** A watch that ends cleanly sooner than this with no event counts as a failure. @default 1000 */
  readonly minWatchMs?: number;
}

export const initialState: Listing = {
  phase: 'Listing',
  // NOTE: "" and not "0": a list at "0" is served from the watch cache, which ignores `limit` on
  // older servers and would return 30k Pods in one 200 MB body.
  from: { resourceVersion: '' },
  continueToken: undefined,
  restartedForExpiredToken: false,
};

function listing(from: ListFrom): Listing {
  return { phase: 'Listing', from, continueToken: undefined, restartedForExpiredToken: false };
}

function watching(resourceVersion: string): Watching {
  return { phase: 'Watching', resourceVersion };
}

function backOff(error: unknown, next: Listing | Watching, resync = false): Step {
  const reason = errorReason(error);
  return { state: { phase: 'BackingOff', reason, error, resync, next }, effects: [{ kind: 'Restart', reason, error }] };
}

const same = (state: ReflectorState): Step => ({ state, effects: [] });

/** Advances the machine by one input. Inputs that do not fit the current phase leave it unchanged. */
export function step(state: ReflectorState, input: ReflectorInput, options: MachineOptions = {}): Step {
  if (input.kind === 'Stop' || state.phase === 'Stopped') return same({ phase: 'Stopped' });
  switch (state.phase) {
    case 'Listing':
      return stepListing(state, input);
    case 'Watching':
      return stepWatching(state, input, options.minWatchMs ?? 1000);
    case 'BackingOff':
      return input.kind === 'BackoffElapsed' ? same(state.next) : same(state);
  }
}

function stepListing(state: Listing, input: ReflectorInput): Step {
  if (input.kind === 'ListPage') {
    if (input.continueToken !== undefined && input.continueToken !== '') {
      return same({ ...state, continueToken: input.continueToken });
    }
    return { state: watching(input.resourceVersion), effects: [{ kind: 'CommitList', resourceVersion: input.resourceVersion }] };
  }
  if (input.kind !== 'ListFailed') return same(state);
  const err = input.error;
  if (err instanceof Gone && state.continueToken !== undefined && !state.restartedForExpiredToken) {
    // The continue token outlived the server's compaction window (about 5 minutes): start the
    // same list over from its first page, at once, as client-go's pager does.
    const next: Listing = { ...state, continueToken: undefined, restartedForExpiredToken: true };
    return { state: next, effects: [{ kind: 'Restart', reason: 'continue_expired', error: err }] };
  }
  if ((err instanceof Gone || err instanceof ResourceVersionTooLarge) && state.from.resourceVersion !== '') {
    // The server cannot serve "not older than" our last version (compacted, or it is behind):
    // list the most recent state instead.
    return { state: listing({ resourceVersion: '' }), effects: [{ kind: 'Restart', reason: errorReason(err), error: err }] };
  }
  // Anything else (401/403/429/5xx, network): wait and retry. A dead continue token cannot be
  // retried; any other page is asked for again where the list stopped.
  const next: Listing = err instanceof Gone ? { ...state, continueToken: undefined } : state;
  return backOff(err, next);
}

function stepWatching(state: Watching, input: ReflectorInput, minWatchMs: number): Step {
  switch (input.kind) {
    case 'WatchEvent':
      if (input.type === 'ERROR') return watchFailed(state, input.error);
      if (input.type === 'BOOKMARK') return same(advance(state, input.resourceVersion));
      return { state: advance(state, input.resourceVersion), effects: [{ kind: 'ApplyEvent' }] };
    case 'WatchClosed':
      if (input.durationMs < minWatchMs && input.events === 0) {
        // A server that accepts the watch and hangs up at once would otherwise be hammered.
        return backOff(new WatchClosedEarly(`watch closed after ${input.durationMs} ms with no event`), state);
      }
      // A normal close (timeoutSeconds ran out): watch again from the last version, no relist.
      return same(state);
    case 'WatchFailed':
      return watchFailed(state, input.error);
    default:
      return same(state);
  }
}

function advance(state: Watching, resourceVersion: string | undefined): Watching {
  return resourceVersion === undefined || resourceVersion === '' || resourceVersion === state.resourceVersion
    ? state
    : watching(resourceVersion);
}

function watchFailed(state: Watching, err: unknown): Step {
  if (err instanceof Gone || err instanceof ResourceVersionTooLarge) {
    // Events were lost: relist and let the store deliver the difference. After Gone, ask for a
    // state not older than what we had (cheap for the server, never going back in time); after
    // "too large", the server is behind that version, so ask for the most recent state.
    const from: ListFrom =
      err instanceof Gone && state.resourceVersion !== ''
        ? { resourceVersion: state.resourceVersion, match: 'NotOlderThan' }
        : { resourceVersion: '' };
    const step = backOff(err, listing(from), true);
    return { state: step.state, effects: [{ kind: 'Relist', reason: errorReason(err) }, ...step.effects] };
  }
  // 401/403/429/5xx, network, stalled, malformed: the resourceVersion is still good.
  return backOff(err, state);
}

/** The minimum delay the server asked for, if the error carries one (429 Retry-After). */
export function serverRetryAfterMs(err: unknown): number | undefined {
  return err instanceof TooManyRequests ? err.retryAfterMs : undefined;
}

/** The failure got no HTTP answer at all (refused, reset, silent): the server may be down rather than refusing. */
export function serverUnreachable(err: unknown): boolean {
  return err instanceof TransportError || err instanceof RequestStalled;
}
