// The preview report for people (a summary, a table per sink, the bodies pretty-printed) and as JSON.
import type { Sink } from '../../api/policy.js';
import { renderEventsTable } from '../events.js';
import { countBy, formatBytes, formatTable, localIsoTime, localOffsetMinutes, plural, prettyJson, shortId, utcOffsetLabel } from '../table.js';
import { DISPATCH_BATCH, type PreviewReport, type SinkPreview } from './report.js';

export interface PreviewTableOptions {
  /** Events shown of each body; Infinity for all, 0 for no bodies. @default 3 */
  readonly bodyEvents?: number;
  /** Minutes east of UTC for the times shown; this machine's zone when undefined. */
  readonly offsetMinutes?: number;
  /** A terminal's width: the table's last column is cut to fit. */
  readonly maxWidth?: number;
}

const EVENT_COMPACT = new Set(['cluster', 'data']);
const OTLP_COMPACT = new Set(['attributes', 'body', 'scope']);

/** A body for reading: pretty-printed, the first `max` events of it. */
export function displayBody(type: Sink['type'], body: string, max: number): { text: string; shown: number; total: number } {
  if (type === 'file') {
    const lines = body.split('\n').filter((l) => l !== '');
    const shown = lines.slice(0, max).map((l) => prettyJson(JSON.parse(l) as unknown, { compact: EVENT_COMPACT }));
    return { text: shown.join('\n'), shown: shown.length, total: lines.length };
  }
  const parsed = JSON.parse(body) as unknown;
  if (type === 'http' && Array.isArray(parsed)) {
    const shown = parsed.slice(0, max);
    return { text: prettyJson(shown, { compact: EVENT_COMPACT }), shown: shown.length, total: parsed.length };
  }
  // OTLP: keep the first `max` log records across the request, in order.
  let budget = max;
  let total = 0;
  const trimmed = JSON.parse(body, (key, value: unknown) => {
    if (key !== 'logRecords' || !Array.isArray(value)) return value;
    total += value.length;
    const keep = value.slice(0, Math.max(0, budget));
    budget -= keep.length;
    return keep;
  }) as unknown;
  return { text: prettyJson(trimmed, { compact: OTLP_COMPACT }), shown: Math.min(max, total), total };
}

function countsLine(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .map(([k, n]) => `${k.replace('/', ' ')} ${n}`)
    .join(' · ');
}

const where = (s: SinkPreview): string => (s.type === 'file' ? s.destination : `POST ${s.destination}`);

export function renderPreviewTable(report: PreviewReport, options: PreviewTableOptions = {}): string {
  const out: string[] = [];
  const bodyEvents = options.bodyEvents ?? 3;
  const at = Date.parse(report.generatedAt);
  const offset = options.offsetMinutes ?? localOffsetMinutes(at);
  const p = report.policy;
  // What was built, dropped ones included: the Checked line says what became of them.
  const snapshotCounts = countBy([...report.stored, ...report.dropped], (e) => `${e.category} ${e.name}`);
  const label = (l: string): string => l.padEnd(12);

  out.push(`${label('Policy')}${p.name} · region ${p.region} (${p.country}) · subscription ${p.subscriptionId}`);
  out.push(`${label('Cluster')}${shortId(report.cluster.id, 8)}… (kube-system uid) · ${plural(report.cluster.nodes, 'node')} · ${plural(report.cluster.pods, 'pod')} · ${report.cluster.vCores} vCores`);
  const collected = [...snapshotCounts].map(([k, n]) => `${k} ${n}`).join(' · ') || 'nothing';
  out.push(`${label('Snapshot')}${localIsoTime(at, offset)} (${utcOffsetLabel(offset)}): ${collected}`);
  const passed = report.dropped.length === 0 ? `all ${plural(report.stored.length, 'event')} pass the schema and the PII guard` : `${report.stored.length} pass the schema and the PII guard, ${report.dropped.length} dropped`;
  out.push(`${label('Checked')}${passed}`);
  out.push(
    `${label('Device IDs')}${report.deviceKey.source === 'secret' ? `keyed hashes under Secret ${report.deviceKey.secret}` : `PLACEHOLDERS, the real ones will differ: ${report.deviceKey.reason ?? ''}`}`,
  );
  out.push('');

  if (report.sinks.length === 0) {
    out.push('No sink is configured. The operator would store these events locally only:', '');
    out.push(renderEventsTable(report.stored, { offsetMinutes: options.offsetMinutes, maxWidth: options.maxWidth }).trimEnd());
  } else {
    const rows = report.sinks.map((s) => [s.name, s.type, s.region, s.receives ? String(s.events.length) : '—', s.receives ? formatBytes(s.bytes) : '—', where(s)]);
    out.push(...formatTable(['SINK', 'TYPE', 'REGION', 'EVENTS', 'SIZE', 'DESTINATION'], rows, { align: ['left', 'left', 'left', 'right', 'right', 'left'], maxWidth: options.maxWidth }));
    out.push('');
    const width = Math.max(...report.sinks.map((s) => s.name.length));
    for (const s of report.sinks) {
      const what = s.error ? `NOT USABLE: ${s.reason}` : s.receives ? `${plural(s.events.length, 'event')}: ${countsLine(s.counts)}${s.requests > 1 ? ` (in ${s.requests} requests of ≤${DISPATCH_BATCH})` : ''}` : `nothing now: ${s.reason}`;
      out.push(`${s.name.padEnd(width)}  ${what}`);
    }
  }

  if (report.dropped.length > 0) {
    out.push('', 'Dropped before storage (never stored, never sent):');
    for (const d of report.dropped) out.push(`  ${d.category} ${d.name} ${shortId(d.id)}: ${d.stage === 'pii' ? 'PII guard' : 'schema'}: ${d.problems.join('; ')}`);
  }
  out.push('', 'Notes:', ...report.notes.map((n) => `  - ${n}`));

  if (bodyEvents > 0) {
    for (const s of report.sinks) {
      if (s.body === null) continue;
      const shown = displayBody(s.type, s.body, bodyEvents);
      const part = shown.shown < shown.total ? ` · first ${shown.shown} shown (--body-events all for every one, --output json for the exact bytes)` : '';
      const kind = s.type === 'file' ? 'JSON lines (one record per line; shown pretty)' : s.type === 'otlp' ? 'OTLP/HTTP logs JSON' : 'JSON batch';
      out.push('', `── ${s.name} · ${where(s)}`, `   ${kind} · ${plural(s.events.length, 'event')} · ${formatBytes(s.bytes)}${part}`);
      for (const [k, v] of Object.entries(s.headers)) out.push(`${k}: ${v}`);
      out.push(shown.text);
    }
  }
  return `${out.join('\n')}\n`;
}

export function renderPreviewJson(report: PreviewReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
