// Where the billing meter keeps its state across restarts and leader changes: the `dcp-billing` ConfigMap, written compare-and-swap.
import type { KubeTransport } from '../kube/client.js';
import { MalformedResponse, NotFound } from '../kube/errors.js';
import { asRecord, asString, resourceVersionOf } from '../kube/resource.js';
import { parseMeterState, serializeMeterState, type MeterState } from './metering.js';

export const BILLING_CONFIGMAP = 'dcp-billing';
/** The data key holding the state as JSON (see metering.ts serializeMeterState). */
export const BILLING_STATE_KEY = 'state.json';

export interface StoredMeterState {
  readonly state: MeterState;
  /** The object's resourceVersion: the precondition of the next write. */
  readonly resourceVersion: string;
}

/** Durable meter state with optimistic concurrency. */
export interface MeterStateStore {
  /** The stored state, or undefined when there is none yet. */
  load(signal?: AbortSignal): Promise<StoredMeterState | undefined>;
  /**
   * Creates the state (`resourceVersion` undefined) or replaces the version read. Throws the kube
   * Conflict error when the object exists already (create) or was changed since (replace); the
   * caller then loads again and re-applies its change.
   */
  save(state: MeterState, resourceVersion: string | undefined, signal?: AbortSignal): Promise<StoredMeterState>;
}

export interface ConfigMapMeterStateStoreOptions {
  readonly transport: KubeTransport;
  /** The operator namespace. */
  readonly namespace: string;
  /** @default 'dcp-billing' */
  readonly name?: string;
}

/** MeterStateStore on a ConfigMap through the API server: GET, POST to create, PUT with resourceVersion to replace. */
export class ConfigMapMeterStateStore implements MeterStateStore {
  private readonly transport: KubeTransport;
  private readonly namespace: string;
  readonly name: string;

  constructor(options: ConfigMapMeterStateStoreOptions) {
    this.transport = options.transport;
    this.namespace = options.namespace;
    this.name = options.name ?? BILLING_CONFIGMAP;
  }

  private path(withName: boolean): string {
    const base = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/configmaps`;
    return withName ? `${base}/${encodeURIComponent(this.name)}` : base;
  }

  async load(signal?: AbortSignal): Promise<StoredMeterState | undefined> {
    let obj: unknown;
    try {
      obj = await this.transport.json({ path: this.path(true), signal });
    } catch (err) {
      if (err instanceof NotFound) return undefined;
      throw err;
    }
    return this.parse(obj);
  }

  async save(state: MeterState, resourceVersion: string | undefined, signal?: AbortSignal): Promise<StoredMeterState> {
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/name': 'dcp-operator', 'app.kubernetes.io/component': 'billing-meter' },
        // NOTE: the precondition: a replace of a version someone else has already replaced is refused (409).
        ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      },
      data: {
        [BILLING_STATE_KEY]: serializeMeterState(state),
        // For people reading the ConfigMap; the meter reads only state.json.
        watermark: new Date(state.watermark).toISOString(),
      },
    };
    const answer =
      resourceVersion === undefined
        ? await this.transport.json({ method: 'POST', path: this.path(false), body, signal })
        : await this.transport.json({ method: 'PUT', path: this.path(true), body, signal });
    return this.parse(answer);
  }

  private parse(obj: unknown): StoredMeterState {
    const resourceVersion = resourceVersionOf(obj);
    if (resourceVersion === undefined) throw new MalformedResponse(`ConfigMap ${this.name} has no resourceVersion`);
    const text = asString(asRecord(asRecord(obj)?.['data'])?.[BILLING_STATE_KEY]);
    if (text === undefined) throw new MalformedResponse(`ConfigMap ${this.name} has no data.${BILLING_STATE_KEY}`);
    return { state: parseMeterState(text), resourceVersion };
  }
}
