// Fencing on the lease: every leader-only write asks first whether this replica may still assume it leads, by its own monotonic clock.
import type { KubeRequest, KubeTransport } from '../kube/client.js';
import type { Clock } from './clock.js';

/** A write refused because the leader's term is over: the lease was not renewed within the renew deadline. */
export class LeadershipLost extends Error {
  override readonly name = 'LeadershipLost';
}

/** What a leader-only writer calls right before it writes (an append, a request, a delivery). */
export interface Fence {
  /** Throws LeadershipLost once the term is over; `writer` names what was refused, for logs and metrics. */
  check(writer: string): void;
}

/** Without leader election there is one writer by construction: nothing to fence. */
export const OPEN_FENCE: Fence = { check: () => undefined };

/**
 * The fence of one leader term. The term holds while less than the renew deadline has passed
 * since the last successful renewal was *sent* (a standby counts its lease duration, which is
 * longer, from when it saw that renewal, which is later). The check reads the clock itself, so a
 * process resumed after SIGSTOP refuses its first write, whatever its timers and I/O callbacks
 * run first: the deadline timer may fire after them.
 */
export class LeaseFence implements Fence {
  private renewedAt: number;
  private lostReason: LeadershipLost | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly renewDeadlineMs: number,
    /** When the request that acquired the lease was sent. */
    acquiredAt: number,
    /** Called once, when the term is found over (by a check or by the elector): stop leading. */
    private readonly onLost: (reason: LeadershipLost, writer: string | undefined) => void,
    /** Called for every refused write. */
    private readonly onRefused: (writer: string) => void = () => undefined,
  ) {
    this.renewedAt = acquiredAt;
  }

  /** A renewal sent at `sentAt` succeeded. Ignored once the term is over: a lost term never comes back. */
  renewed(sentAt: number): void {
    if (this.lostReason === undefined) this.renewedAt = Math.max(this.renewedAt, sentAt);
  }

  /** Milliseconds since the last successful renewal was sent. */
  get sinceRenewalMs(): number {
    return this.clock.now() - this.renewedAt;
  }

  /** True once the term is over; the first call that finds the deadline passed ends it. */
  lost(writer?: string): boolean {
    if (this.lostReason === undefined && this.sinceRenewalMs >= this.renewDeadlineMs) {
      const reason = new LeadershipLost(
        `lease not renewed for ${Math.round(this.sinceRenewalMs)} ms (renew deadline ${this.renewDeadlineMs} ms): writes fenced${writer !== undefined ? `, first refused: ${writer}` : ''}`,
      );
      this.lostReason = reason;
      this.onLost(reason, writer);
    }
    return this.lostReason !== undefined;
  }

  check(writer: string): void {
    if (!this.lost(writer)) return;
    this.onRefused(writer);
    throw this.lostReason ?? new LeadershipLost('writes fenced');
  }
}

/** `configmaps`, `events`, `datacollectionpolicies/status`: what a write to an API path changes, for the writer label. */
export function writtenResource(path: string): string {
  const parts = path.split('?')[0]?.split('/').filter((p) => p !== '') ?? [];
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  return [rest[0], rest[2]].filter((p) => p !== undefined).join('/') || path;
}

/** The API transport of leader-only writers: reads pass, every write (any method but GET) checks the fence first. */
export function fencedTransport(inner: KubeTransport, fence: () => Fence): KubeTransport {
  const guard = (req: KubeRequest): void => {
    const method = req.method ?? 'GET';
    if (method !== 'GET') fence().check(`${method} ${writtenResource(req.path)}`);
  };
  // NOTE: async, so a refused write is a rejected promise like any other failed request, never a synchronous throw.
  return {
    ...(inner.wire !== undefined ? { wire: inner.wire } : {}),
    stream: async (req) => {
      guard(req);
      return inner.stream(req);
    },
    json: async (req) => {
      guard(req);
      return inner.json(req);
    },
    ...(inner.text !== undefined
      ? {
          text: async (req: KubeRequest) => {
            guard(req);
            if (inner.text === undefined) throw new Error('no text call');
            return inner.text(req);
          },
        }
      : {}),
  };
}
