// Renders the Helm chart deploy/chart/dcp-operator from the kustomize manifests in deploy/ and crds/:
// one source. Each object is copied as is, except the few fields values.yaml exposes, which become
// template expressions. `make chart` writes the files; a unit test fails when they drift from deploy/,
// and an e2e test checks that `helm template` with default values renders what `kubectl kustomize` does.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';

export const CHART_DIR = 'deploy/chart/dcp-operator';
export const NAMESPACE = 'dcp-system';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

/** The defaults: what deploy/ ships, so default values render exactly deploy/. */
export function defaultValues(pkgVersion: string): Obj {
  return {
    namespace: NAMESPACE,
    createNamespace: true,
    image: { repository: 'dcp-operator', tag: pkgVersion, pullPolicy: 'IfNotPresent' },
    replicas: 2,
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    storage: { size: '1Gi', storageClassName: '' },
    certificateNamespaces: ['kube-system'],
    monitoring: { enabled: false },
  };
}

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const QUANTITY = '^[0-9]+(\\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$';

/** values.schema.json: a value out of range fails `helm template`/`helm install` with Helm's message naming it. */
export function valuesSchema(): Obj {
  const quantity = { type: 'string', pattern: QUANTITY };
  const resourceList: Obj = { type: 'object', additionalProperties: false, properties: { cpu: quantity, memory: quantity } };
  return {
    $schema: 'https://json-schema.org/draft-07/schema#',
    title: 'dcp-operator chart values',
    type: 'object',
    additionalProperties: false,
    required: ['namespace', 'image', 'replicas', 'resources', 'storage', 'certificateNamespaces', 'monitoring'],
    properties: {
      namespace: { description: 'Namespace of the operator (Lease, device key, billing state).', type: 'string', pattern: DNS_LABEL, maxLength: 63 },
      createNamespace: { description: 'Create the namespace (restricted Pod Security).', type: 'boolean' },
      image: {
        type: 'object',
        additionalProperties: false,
        required: ['repository', 'tag'],
        properties: {
          repository: { type: 'string', minLength: 1 },
          tag: { type: 'string', minLength: 1 },
          pullPolicy: { type: 'string', enum: ['Always', 'IfNotPresent', 'Never'] },
        },
      },
      replicas: { description: 'One leader and warm standbys; 2 survives a node loss.', type: 'integer', minimum: 1, maximum: 5 },
      resources: { type: 'object', additionalProperties: false, properties: { requests: resourceList, limits: resourceList } },
      storage: {
        description: 'The claim each replica keeps its event store on.',
        type: 'object',
        additionalProperties: false,
        required: ['size'],
        properties: { size: { type: 'string', pattern: '^[0-9]+(Mi|Gi|Ti)$' }, storageClassName: { type: 'string' } },
      },
      certificateNamespaces: {
        description: 'Namespaces whose TLS Secrets the security collector reads (besides its own).',
        type: 'array',
        uniqueItems: true,
        items: { type: 'string', pattern: DNS_LABEL, maxLength: 63 },
      },
      monitoring: {
        type: 'object',
        additionalProperties: false,
        required: ['enabled'],
        properties: { enabled: { description: 'Install the ServiceMonitor, PrometheusRule and Grafana dashboard (needs the Prometheus Operator CRDs).', type: 'boolean' } },
      },
    },
  };
}

// Placeholders survive YAML stringification as plain scalars and become template text afterwards:
// @@V:expr@@ an inline value, @@B:expr@@ a block (toYaml) at the key's indentation.
const inline = (expr: string): string => `@@V:${expr}@@`;
const block = (expr: string): string => `@@B:${expr}@@`;
const NS = '$.Values.namespace';

function substitute(text: string): string {
  return text
    .replace(/^( *)([\w.-]+): ["']?@@B:([^@]+)@@["']?$/gm, (_m, indent: string, key: string, expr: string) => `${indent}${key}:\n${indent}  {{- toYaml ${expr} | nindent ${indent.length + 2} }}`)
    .replace(/["']?@@V:([^@]+)@@["']?/g, (_m, expr: string) => `{{ ${expr} }}`);
}

/**
 * Every string equal to the namespace becomes the namespace value (metadata, subjects, Namespace name);
 * template braces already in a value (alert annotations' {{ $labels }}) are escaped so Helm prints them.
 */
function templateNamespace(value: Json): Json {
  if (value === NAMESPACE) return inline(NS);
  if (typeof value === 'string') return value.replace(/\{\{|\}\}/g, (braces) => `{{ \`${braces}\` }}`);
  if (Array.isArray(value)) return value.map(templateNamespace);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, templateNamespace(v)]));
  return value;
}

function asObj(value: Json | undefined, where: string): Obj {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error(`chart: expected an object at ${where}`);
  return value;
}

function statefulSet(o: Obj): void {
  const spec = asObj(o.spec, 'StatefulSet.spec');
  spec.replicas = inline('.Values.replicas');
  const podSpec = asObj(asObj(spec.template, 'template').spec, 'template.spec');
  const containers = podSpec.containers as Obj[];
  const operator = containers[0];
  if (!operator) throw new Error('chart: the StatefulSet has no container');
  operator.image = inline('printf "%s:%s" .Values.image.repository .Values.image.tag | quote');
  operator.imagePullPolicy = inline('.Values.image.pullPolicy');
  operator.resources = block('.Values.resources');
  const claim = (spec.volumeClaimTemplates as Obj[])[0];
  if (!claim) throw new Error('chart: the StatefulSet has no volumeClaimTemplate');
  const claimSpec = asObj(claim.spec, 'volumeClaimTemplates[0].spec');
  asObj(asObj(claimSpec.resources, 'claim resources').requests, 'claim requests').storage = inline('.Values.storage.size | quote');
  claimSpec.storageClassName = '@@STORAGECLASS@@';
}

interface Rendered {
  readonly text: string;
}

/** One manifest document as chart template text. */
function renderObject(raw: Obj): Rendered {
  const kind = String(raw.kind);
  const name = String(asObj(raw.metadata, 'metadata').name);
  if (kind === 'RoleBinding' && name === 'dcp-operator-tls-reader') {
    // One binding per certificate namespace instead of the one kube-system binding deploy/ ships.
    const o = templateNamespace(raw) as Obj;
    asObj(o.metadata, 'metadata').namespace = inline('$ns');
    const body = substitute(stringify(o, { lineWidth: 0 }));
    return { text: `{{- range $ns := .Values.certificateNamespaces }}\n---\n${body}{{- end }}\n` };
  }
  const o = templateNamespace(raw) as Obj;
  if (kind === 'StatefulSet') statefulSet(o);
  let body = substitute(stringify(o, { lineWidth: 0 }));
  body = body.replace(/^( *)storageClassName: "?@@STORAGECLASS@@"?\n/m, (_m, indent: string) =>
    `${indent}{{- with .Values.storage.storageClassName }}\n${indent}storageClassName: {{ . | quote }}\n${indent}{{- end }}\n`);
  if (kind === 'Namespace') return { text: `{{- if .Values.createNamespace }}\n---\n${body}{{- end }}\n` };
  return { text: `---\n${body}` };
}

interface ConfigMapGenerator {
  name: string;
  namespace?: string;
  files?: string[];
  options?: { labels?: Record<string, string>; disableNameSuffixHash?: boolean };
}

interface Kustomization {
  resources?: string[];
  configMapGenerator?: ConfigMapGenerator[];
}

const kustomization = (root: string, dir: string): Kustomization => parse(readFileSync(join(root, dir, 'kustomization.yaml'), 'utf8')) as Kustomization;

function kustomizeResources(root: string, dir: string): string[] {
  return (kustomization(root, dir).resources ?? []).map((r) => join(dir, r));
}

/**
 * A kustomize configMapGenerator (files only, no name hash) as a template reading the same files,
 * copied into the chart under files/: Helm's .Files.Get | toJson is a YAML string equal to the file.
 */
function renderConfigMaps(root: string, dir: string, files: Map<string, string>): string {
  let body = '';
  for (const g of kustomization(root, dir).configMapGenerator ?? []) {
    if (g.options?.disableNameSuffixHash !== true) throw new Error(`chart: configMapGenerator ${g.name} needs disableNameSuffixHash (the chart cannot reproduce the hash)`);
    const data: Record<string, string> = {};
    for (const entry of g.files ?? []) {
      const [key, path] = entry.includes('=') ? (entry.split('=', 2) as [string, string]) : [entry.split('/').pop() ?? entry, entry];
      const chartPath = `files/${path}`;
      files.set(chartPath, readFileSync(join(root, dir, path), 'utf8'));
      data[key] = inline(`.Files.Get "${chartPath}" | toJson`);
    }
    const o: Obj = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { ...(g.options.labels ? { labels: g.options.labels } : {}), name: g.name, ...(g.namespace ? { namespace: g.namespace } : {}) },
      data,
    };
    body += renderObject(o).text;
  }
  return body;
}

function renderFile(root: string, file: string, guard?: string): string {
  const docs = parseAllDocuments(readFileSync(join(root, file), 'utf8'))
    .map((d) => d.toJSON() as Obj | null)
    .filter((d): d is Obj => d !== null);
  const body = docs.map((d) => renderObject(d).text).join('');
  const header = `# Generated by make chart from ${file}. Do not edit: edit ${file} and run make chart.\n`;
  return guard ? `${header}{{- if ${guard} }}\n${body}{{- end }}\n` : header + body;
}

/** Every file of the chart, by path relative to the chart directory. */
export function renderChart(root: string): Map<string, string> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; description: string };
  const files = new Map<string, string>();
  const generated = '# Generated by make chart (hack/chart.ts) from deploy/ and crds/. Do not edit.\n';
  files.set('Chart.yaml', generated + stringify({
    apiVersion: 'v2',
    name: 'dcp-operator',
    description: pkg.description,
    type: 'application',
    version: pkg.version,
    appVersion: pkg.version,
  }));
  files.set('values.yaml', generated + stringify(defaultValues(pkg.version)));
  files.set('values.schema.json', `${JSON.stringify(valuesSchema(), null, 2)}\n`);
  for (const crd of readdirSync(join(root, 'crds')).filter((f) => f.endsWith('.yaml')).sort()) {
    files.set(`crds/${crd}`, readFileSync(join(root, 'crds', crd), 'utf8'));
  }
  for (const file of kustomizeResources(root, 'deploy')) {
    files.set(`templates/${file.replace(/^deploy\//, '').replace(/\//g, '-')}`, renderFile(root, file));
  }
  for (const file of kustomizeResources(root, 'deploy/monitoring')) {
    files.set(`templates/${file.replace(/^deploy\//, '').replace(/\//g, '-')}`, renderFile(root, file, '.Values.monitoring.enabled'));
  }
  const configMaps = renderConfigMaps(root, 'deploy/monitoring', files);
  if (configMaps !== '') {
    const header = '# Generated by make chart from the configMapGenerator of deploy/monitoring/kustomization.yaml. Do not edit.\n';
    files.set('templates/monitoring-configmaps.yaml', `${header}{{- if .Values.monitoring.enabled }}\n${configMaps}{{- end }}\n`);
  }
  return files;
}
