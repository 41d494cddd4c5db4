// Records Kubernetes Events (events.k8s.io/v1) about an object, collapsing repeats into one Event with a series count.
import { randomBytes } from 'node:crypto';
import type { KubeTransport } from './client.js';
import { NotFound } from './errors.js';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export interface RecordedEvent {
  regarding: ObjectRef;
  type: EventType;
  /** CamelCase, why the action was taken. */
  reason: string;
  /** CamelCase, what was done (e.g. Reconcile, Collect). */
  action: string;
  note: string;
}

interface Sent {
  name: string;
  namespace: string;
  count: number;
  firstTime: string;
}

/** MicroTime: RFC 3339 with exactly six fractional digits, as events.k8s.io/v1 requires. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class EventRecorder {
  private readonly sent = new Map<string, Sent>();

  constructor(
    private readonly transport: KubeTransport,
    private readonly controller: string,
    private readonly instance: string,
    private readonly now: () => Date = () => new Date(),
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Never throws: an Event is best effort and must not fail a reconcile. */
  async record(event: RecordedEvent): Promise<void> {
    try {
      await this.send(event);
    } catch (err) {
      this.onError(err);
    }
  }

  private async send(event: RecordedEvent): Promise<void> {
    // Cluster-scoped objects get their Events in the default namespace, as kubectl describe expects.
    const namespace = event.regarding.namespace ?? 'default';
    const key = [event.regarding.kind, event.regarding.name, event.regarding.uid, event.type, event.reason, event.note].join('\u0000');
    const previous = this.sent.get(key);
    const now = microTime(this.now());
    if (previous) {
      previous.count += 1;
      try {
        await this.transport.json({
          method: 'PATCH',
          path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events/${previous.name}`,
          body: { series: { count: previous.count, lastObservedTime: now } },
        });
        return;
      } catch (err) {
        if (!(err instanceof NotFound)) throw err;
        this.sent.delete(key); // expired by the API server's event TTL: start a new one
      }
    }
    const name = `${event.regarding.name}.${randomBytes(8).toString('hex')}`;
    await this.transport.json({
      method: 'POST',
      path: `/apis/events.k8s.io/v1/namespaces/${namespace}/events`,
      body: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name, namespace },
        eventTime: now,
        reportingController: this.controller,
        reportingInstance: this.instance,
        action: event.action,
        reason: event.reason,
        note: event.note.slice(0, 1024),
        type: event.type,
        regarding: event.regarding,
      },
    });
    if (this.sent.size > 1000) this.sent.clear();
    this.sent.set(key, { name, namespace, count: 1, firstTime: now });
  }
}
