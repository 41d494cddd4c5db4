// Renders the CustomResourceDefinition from the TypeBox definition in policy.ts (pure, sorted keys).
import { GROUP, KIND, PLURAL, PolicySchema, SHORT_NAME, SINGULAR, VERSION } from './policy.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Turns a TypeBox JSON Schema into a Kubernetes structural schema: drops what OpenAPI v3 in a
 * CRD does not take, and removes defaulted properties from `required` (the API server fills them).
 */
export function toStructural(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(toStructural);
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$id' || key === '$schema') continue;
    if (key === 'properties' && isObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, prop]) => [name, toStructural(prop)]));
    } else if (key === 'default' || key === 'enum' || key === 'x-kubernetes-validations' || key === 'x-kubernetes-list-map-keys') {
      out[key] = value;
    } else {
      out[key] = toStructural(value);
    }
  }
  const props = isObject(out.properties) ? out.properties : {};
  if (Array.isArray(out.required)) {
    const required = out.required.filter((name) => typeof name === 'string' && !(isObject(props[name]) && 'default' in props[name]));
    if (required.length > 0) out.required = required;
    else delete out.required;
  }
  return out;
}

/** The policy's OpenAPI v3 schema exactly as the CRD carries it. */
export function policyOpenApiSchema(): JsonObject {
  const structural = toStructural(JSON.parse(JSON.stringify(PolicySchema)) as Json);
  if (!isObject(structural)) throw new Error('policy schema is not an object');
  // At the root of a CRD, metadata may only be declared as an object.
  structural.properties = { ...(isObject(structural.properties) ? structural.properties : {}), metadata: { type: 'object' } };
  return structural;
}

function sortKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys(value[k] as Json)]),
  );
}

export function renderCrd(): JsonObject {
  const crd: JsonObject = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: [SHORT_NAME] },
      scope: 'Cluster',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Region', type: 'string', jsonPath: '.spec.region', description: 'Where collected data lives' },
            { name: 'Retention', type: 'integer', jsonPath: '.spec.retention.rawDays', description: 'Days raw events are kept' },
            { name: 'Audit', type: 'string', jsonPath: '.status.auditExport.state', description: 'Audit-export state' },
            { name: 'Nodes', type: 'integer', jsonPath: '.status.inventory.nodes', description: 'Nodes in the cluster' },
            { name: 'vCores', type: 'number', jsonPath: '.status.inventory.vCores', description: 'Sum of Node CPU capacity' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Ready condition' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema: policyOpenApiSchema() },
        },
      ],
    },
  };
  const sorted = sortKeys(crd);
  if (!isObject(sorted)) throw new Error('unreachable');
  return sorted;
}
