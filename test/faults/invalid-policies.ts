// Invalid DataCollectionPolicies generated from the CRD's own schema: for every field, values that break its type,
// range, enum, pattern or length; for every object, unknown and missing fields; plus the CEL rules' cases. Each
// comes with the field path the API server's refusal must name.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CRD_DIR } from '../e2e/harness.js';
import { REGION, SUBSCRIPTION } from '../e2e/pipeline-helpers.js';
import { between } from './campaign.js';

interface SchemaNode {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly maxItems?: number;
}

/** One refused policy: its YAML, what was broken, and what the refusal must contain (the field's path, the field). */
export interface InvalidPolicy {
  readonly what: string;
  readonly yaml: string;
  readonly mustName: readonly string[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Segment = string | number;
/** A breakage: where (segments from the policy's root) it puts which value, or what it removes. */
interface Breakage {
  readonly what: string;
  readonly at: readonly Segment[];
  readonly value?: Json;
  readonly remove?: boolean;
  /** The policy before the breakage, when the base does not fit (e.g. a file sink for a missing path). */
  readonly base?: (policy: { [key: string]: Json }) => void;
  /** Besides the path of `at`: the refusal must also contain these. */
  readonly alsoNames?: readonly string[];
  /** The refusal names this path instead of `at` (CEL rules report the object they sit on). */
  readonly reportedAt?: readonly Segment[];
}

const SINKS = 3;
const NAMESPACES = 2;

function basePolicy(): { [key: string]: Json } {
  return {
    apiVersion: 'datacollection.arc.io/v1alpha1',
    kind: 'DataCollectionPolicy',
    metadata: { name: 'default' },
    spec: {
      subscriptionId: SUBSCRIPTION,
      region: REGION,
      retention: { rawDays: 28, aggregateDays: 365 },
      categories: {
        billing: { intervalSeconds: 3600 },
        controlPlane: { enabled: true, intervalSeconds: 60 },
        hostErrors: { enabled: true },
        hostOs: { enabled: true },
        linuxVm: { enabled: true, systemNamespaces: ['kube-system', 'dcp-system'] },
        security: { enabled: true, expiryWarningDays: 30, certificateNamespaces: ['kube-system', 'dcp-system'] },
      },
      export: {
        forwardAggregatesToCentral: false,
        sinks: Array.from({ length: SINKS }, (_, i) => ({ name: `sink-${i}`, type: 'http', url: `https://sink-${i}.example/ingest`, region: REGION })),
      },
      diagnostics: { auditExport: { enabled: false, profile: 'kube-audit-admin', bufferMaxMiB: 256, intermediateRetentionHours: 48, destination: { type: 'file', path: '/var/lib/dcp/audit' } } },
    },
  };
}

/** `spec.export.sinks[2].url`, as the API server prints a field path. */
export const fieldPath = (at: readonly Segment[]): string => at.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');

function setAt(root: { [key: string]: Json }, at: readonly Segment[], value: Json | undefined): void {
  let node: Json = root;
  // A breakage inside an object the base leaves out (a sink's secretRef) makes the object.
  for (const s of at.slice(0, -1)) node = ((node as Record<string, Json>)[s as string] ??= {});
  const last = at[at.length - 1] as Segment;
  if (value === undefined) delete (node as Record<string, Json>)[last as string];
  else (node as Record<string, Json>)[last as string] = value;
}

function policySchema(): SchemaNode {
  const crd = parse(readFileSync(join(CRD_DIR, 'datacollection.arc.io_datacollectionpolicies.yaml'), 'utf8')) as { spec: { versions: { schema: { openAPIV3Schema: SchemaNode } }[] } };
  const schema = crd.spec.versions[0]?.schema.openAPIV3Schema;
  if (schema === undefined) throw new Error('the CRD has no schema');
  return schema;
}

/** Every breakage the schema allows at one node (arrays: of one item, whose index the generator picks). */
function breakagesOf(node: SchemaNode, at: Segment[], index: (length: number) => number, word: () => string): Breakage[] {
  const out: Breakage[] = [];
  const name = String(at[at.length - 1]);
  switch (node.type) {
    case 'integer':
      out.push({ what: `${name} as a string`, at, value: 'ten' }, { what: `${name} as a fraction`, at, value: (node.minimum ?? 1) + 0.5 });
      if (node.minimum !== undefined) out.push({ what: `${name} below ${node.minimum}`, at, value: node.minimum - 1 - index(1000) });
      if (node.maximum !== undefined) out.push({ what: `${name} above ${node.maximum}`, at, value: node.maximum + 1 + index(100_000) });
      break;
    case 'boolean':
      // Not 'yes' or 'on': kubectl reads YAML 1.1, where those are booleans.
      out.push({ what: `${name} as a string`, at, value: 'always' }, { what: `${name} as a number`, at, value: 1 });
      break;
    case 'string':
      out.push({ what: `${name} as a number`, at, value: 42 }, { what: `${name} as an object`, at, value: { value: 'x' } });
      if (node.enum !== undefined) out.push({ what: `${name} outside its enum`, at, value: `${word()}land` });
      if (node.pattern !== undefined) out.push({ what: `${name} against its pattern`, at, value: `Bad_${word()}.` });
      if (node.maxLength !== undefined) out.push({ what: `${name} longer than ${node.maxLength}`, at, value: `/${'a'.repeat(node.maxLength + index(64))}` });
      if (node.minLength !== undefined && node.minLength > 0) out.push({ what: `${name} empty`, at, value: '' });
      break;
    case 'array':
      out.push({ what: `${name} as a string`, at, value: 'all' });
      if (node.maxItems !== undefined) {
        const n = node.maxItems + 1 + index(8);
        const items: Json[] =
          node.items?.type === 'object'
            ? Array.from({ length: n }, (_, i) => ({ name: `many-${i}`, type: 'http', url: `https://many-${i}.example/`, region: REGION }))
            : Array.from({ length: n }, (_, i) => `ns-${i}`);
        out.push({ what: `${n} ${name} (at most ${node.maxItems})`, at, value: items });
      }
      break;
    case 'object': {
      const field = `${word()}Field`;
      out.push({ what: `an unknown field in ${name}`, at: [...at, field], value: true, reportedAt: [...at, field] });
      if (at.length > 1) out.push({ what: `${name} as a string`, at, value: 'everything' });
      for (const req of node.required ?? []) out.push({ what: `${name} without ${req}`, at: [...at, req], remove: true });
      break;
    }
  }
  return out;
}

/** All the schema's breakages, array items at a chosen index, in a stable order. */
function schemaBreakages(schema: SchemaNode, index: (length: number) => number, word: () => string): Breakage[] {
  const out: Breakage[] = [];
  const walk = (node: SchemaNode, at: Segment[]): void => {
    out.push(...breakagesOf(node, at, index, word));
    for (const [key, child] of Object.entries(node.properties ?? {})) walk(child, [...at, key]);
    if (node.items !== undefined) {
      const length = at[at.length - 1] === 'sinks' ? SINKS : NAMESPACES;
      walk(node.items, [...at, index(length)]);
    }
  };
  const spec = schema.properties?.['spec'];
  if (spec === undefined) throw new Error('the CRD schema has no spec');
  walk(spec, ['spec']);
  // The root's own required fields.
  for (const req of spec.required ?? []) out.push({ what: `spec without ${req}`, at: ['spec', req], remove: true });
  return out;
}

/** The CEL rules' breakages: each reported on the object the rule sits on, with a message naming the field. */
function celBreakages(index: (length: number) => number, word: () => string): Breakage[] {
  const k = index(SINKS);
  const sink: Segment[] = ['spec', 'export', 'sinks', k];
  const destination: Segment[] = ['spec', 'diagnostics', 'auditExport', 'destination'];
  const other = ['westus', 'northeurope', 'japaneast', 'brazilsouth'][index(4)] ?? 'westus';
  return [
    { what: 'metadata.name other than default', at: ['metadata', 'name'], value: `${word()}-policy` },
    { what: 'subscriptionId not a GUID', at: ['spec', 'subscriptionId'], value: `${word()}-0000` },
    { what: `a sink in region ${other}`, at: [...sink, 'region'], value: other, reportedAt: ['spec'], alsoNames: ['region'] },
    { what: 'a central sink without forwarding', at: [...sink, 'region'], value: 'central', reportedAt: ['spec', 'export'], alsoNames: ['forwardAggregatesToCentral'] },
    { what: 'a sink url without http(s)', at: [...sink, 'url'], value: `${['ftp', 'file', 'gopher', 'ws'][index(4)] ?? 'ftp'}://${word()}.example/`, reportedAt: sink, alsoNames: ['url'] },
    { what: 'a sink url without a scheme', at: [...sink, 'url'], value: `${word()}.example/ingest`, reportedAt: sink, alsoNames: ['url'] },
    { what: 'an http sink without url', at: [...sink, 'url'], remove: true, reportedAt: sink, alsoNames: ['url'] },
    { what: 'an http sink with a path', at: [...sink, 'path'], value: '/var/lib/x', reportedAt: sink, alsoNames: ['path'] },
    { what: 'a file sink without path', at: [...sink, 'url'], remove: true, base: (p) => setAt(p, [...sink, 'type'], 'file'), reportedAt: sink, alsoNames: ['path'] },
    { what: 'a file sink with a url', at: [...sink, 'type'], value: 'file', base: (p) => setAt(p, [...sink, 'path'], '/x'), reportedAt: sink, alsoNames: ['url'] },
    { what: 'two sinks with one name', at: [...sink, 'name'], value: `sink-${(k + 1) % SINKS}`, reportedAt: ['spec', 'export', 'sinks'], alsoNames: ['Duplicate value'] },
    { what: 'an http audit destination without url', at: [...destination, 'type'], value: 'http', base: (p) => setAt(p, [...destination, 'path'], undefined), reportedAt: destination, alsoNames: ['url'] },
    { what: 'an azureBlob audit destination without secretRef', at: [...destination, 'type'], value: 'azureBlob', base: (p) => setAt(p, [...destination, 'path'], undefined), reportedAt: destination, alsoNames: ['secretRef'] },
    { what: 'an audit resourceId not a resource ID', at: [...destination, 'resourceId'], value: `${word()}-cluster`, reportedAt: destination, alsoNames: ['resourceId'] },
  ];
}

/** `count` invalid policies, chosen with `random` from the schema's and the CEL rules' breakages. */
export function invalidPolicies(random: () => number, count: number): InvalidPolicy[] {
  const index = (length: number): number => between(random, 0, Math.max(0, length - 1));
  const word = (): string => Array.from({ length: between(random, 3, 8) }, () => String.fromCharCode(97 + index(26))).join('');
  const schema = policySchema();
  const out: InvalidPolicy[] = [];
  for (let i = 0; i < count; i++) {
    // Drawn afresh each time: the array indexes and words change from one policy to the next.
    const all = [...schemaBreakages(schema, index, word), ...celBreakages(index, word)];
    const b = all[index(all.length)] as Breakage;
    const policy = basePolicy();
    b.base?.(policy);
    setAt(policy, b.at, b.remove === true ? undefined : b.value);
    out.push({ what: `${b.what} (${fieldPath(b.at)})`, yaml: stringify(policy), mustName: [fieldPath(b.reportedAt ?? b.at), ...(b.alsoNames ?? [])] });
  }
  return out;
}
