// `dcp preview`: per configured sink, the exact JSON that would leave the cluster now, built and guarded as the operator does.
import { resolve } from 'node:path';
import { GROUP, PLURAL, POLICY_NAME, VERSION, type PolicySpec } from '../api/policy.js';
import { InvalidPolicyError, parsePolicy } from '../api/validation.js';
import { securitySnapshot } from '../collectors/security.js';
import { KubeClient, type KubeTransport } from '../kube/client.js';
import { NotFound } from '../kube/errors.js';
import type { LoadedKubeconfig } from '../kube/kubeconfig.js';
import type { Command } from './command.js';
import { parseOutput, type OutputFormat } from './events.js';
import { stringFlag, UsageError } from './flags.js';
import { loadKubeconfig } from './kubeconfig.js';
import { latestAggregates } from './preview/aggregates.js';
import { renderPreviewJson, renderPreviewTable } from './preview/render.js';
import { buildReport } from './preview/report.js';
import { readClusterSnapshot, type ClusterSnapshot } from './preview/snapshot.js';

const USAGE = `usage: dcp preview [flags]

Shows, per sink configured in the cluster's DataCollectionPolicy, the exact JSON that would leave
the cluster now: the current control-plane inventory and host OS facts, built and passed through
the same schema validation, PII guard and residency routing as 'dcp run'. Reads only; it creates
nothing (not even the device key).

flags:
  --kubeconfig F     kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespace N      operator namespace holding the device key (default $POD_NAMESPACE or dcp-system)
  --data-dir D       the operator's event store, for the daily aggregates central sinks get (default ./data)
  --output O         table (default): a summary per sink, then each body pretty-printed
                     json: {policy, cluster, deviceKey, sinks: [{name, type, region, destination,
                     receives, reason, events, bytes, requests, headers, body}], stored, dropped,
                     notes}; body is the exact string the sink would receive
  --body-events N    table output: events shown of each body (default 3; 'all', or 0 for none)`;

function parseBodyEvents(text: string | undefined): number {
  if (text === undefined) return 3;
  if (text === 'all') return Infinity;
  if (!/^\d+$/.test(text)) throw new UsageError(`--body-events "${text}" is not a whole number or 'all'`);
  return Number(text);
}

/** Reads the policy; undefined when there is none (or the API is not installed). */
async function readPolicy(transport: KubeTransport): Promise<PolicySpec | undefined> {
  try {
    return parsePolicy(await transport.json({ path: `/apis/${GROUP}/${VERSION}/${PLURAL}/${POLICY_NAME}` })).spec;
  } catch (err) {
    if (err instanceof NotFound) return undefined;
    throw err;
  }
}

export const previewCommand: Command = {
  summary: 'show the exact JSON each sink would receive now',
  usage: USAGE,
  options: {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'data-dir': { type: 'string' },
    output: { type: 'string', default: 'table' },
    'body-events': { type: 'string' },
  },
  async run(values, positionals) {
    let output: OutputFormat;
    let bodyEvents: number;
    let kc: LoadedKubeconfig;
    try {
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'dcp preview takes flags only');
      output = parseOutput(stringFlag(values, 'output'));
      bodyEvents = parseBodyEvents(stringFlag(values, 'body-events'));
      kc = await loadKubeconfig(stringFlag(values, 'kubeconfig'));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.error(`dcp preview: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    const client = new KubeClient(kc, { userAgent: 'dcp-preview' });
    const namespace = stringFlag(values, 'namespace') ?? process.env.POD_NAMESPACE ?? 'dcp-system';
    const dataDir = resolve(stringFlag(values, 'data-dir') ?? './data');
    try {
      let spec: PolicySpec | undefined;
      try {
        spec = await readPolicy(client);
      } catch (err) {
        const why = err instanceof InvalidPolicyError ? err.problems.join('; ') : err instanceof Error ? err.message : String(err);
        console.error(`dcp preview: cannot read DataCollectionPolicy "${POLICY_NAME}": ${why}`);
        return 1;
      }
      if (!spec) {
        console.error(`dcp preview: there is no DataCollectionPolicy "${POLICY_NAME}" (or its CRD is not installed): the operator collects nothing, so nothing would leave the cluster`);
        return 1;
      }
      const now = Date.now();
      let snapshot: ClusterSnapshot;
      try {
        snapshot = await readClusterSnapshot(client, namespace);
      } catch (err) {
        console.error(`dcp preview: cannot read the cluster: ${err instanceof Error ? err.message : String(err)}`);
        return 1;
      }
      // The security snapshot reads what the policy names (certificate namespaces); without the rights
      // to read it, the rest of the preview is still true, so it says so and goes on.
      if (spec.categories.security.enabled) {
        try {
          snapshot = { ...snapshot, security: await securitySnapshot({ transport: client, kubeSystem: snapshot.kubeSystem, spec, nowMs: now }) };
        } catch (err) {
          console.error(`dcp preview: the security snapshot is left out: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      const aggregates = await latestAggregates(dataDir);
      const report = await buildReport({ spec, snapshot, aggregates, now, operatorNamespace: namespace, dataDir });
      if (output === 'json') process.stdout.write(renderPreviewJson(report));
      else process.stdout.write(renderPreviewTable(report, { bodyEvents, maxWidth: process.stdout.isTTY ? process.stdout.columns : undefined }));
      return 0;
    } finally {
      client.destroy();
    }
  },
};
