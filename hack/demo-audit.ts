// The audit-export part of `make demo`: enable it, run the exporter with what the controller wrote, show audit
// events arriving in the file destination, disable it and show every extension object gone.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { auditPolicy } from '../src/audit/profile.js';

export const AUDIT_SELECTOR = 'datacollection.arc.io/extension=audit-export';

/** The audit Policy the demo cluster's API server starts with: kube-audit-admin, exactly what the controller writes. */
export function writeDemoAuditPolicy(file: string): string {
  writeFileSync(file, stringify(auditPolicy('kube-audit-admin')));
  return file;
}

export interface AuditDemoContext {
  readonly root: string;
  readonly demoDir: string;
  readonly kubeconfig: string;
  /** The demo cluster's audit log (kwokctl --kube-audit-policy). */
  readonly auditLog: string;
  readonly dcp: string;
  kubectl(...args: string[]): Promise<string>;
  step(s: string): void;
  heading(s: string): void;
  dim(s: string): string;
}

interface AuditEvent {
  auditID: string;
  verb: string;
  stageTimestamp: string;
  user?: { username?: string };
  objectRef?: { resource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
}

function destinationEvents(dir: string): { events: AuditEvent[]; files: string[] } {
  const events: AuditEvent[] = [];
  const files: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.jsonl')) {
        files.push(p);
        for (const line of readFileSync(p, 'utf8').split('\n')) if (line !== '') events.push(JSON.parse(line) as AuditEvent);
      }
    }
  };
  walk(dir);
  return { events, files };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function showAuditExport(ctx: AuditDemoContext): Promise<void> {
  const { kubectl, step, heading, dim } = ctx;
  const destination = join(ctx.demoDir, 'audit');
  const work = join(ctx.demoDir, 'audit-exporter');
  heading('audit export: enable it (spec.diagnostics.auditExport)');
  const enable = { spec: { diagnostics: { auditExport: { enabled: true, profile: 'kube-audit-admin', destination: { type: 'file', path: destination } } } } };
  console.log(dim(`  kubectl patch dcp default --type=merge -p '${JSON.stringify(enable)}'`));
  await kubectl('patch', 'dcp', 'default', '--type=merge', '-p', JSON.stringify(enable));
  const want = ['configmap/dcp-audit-exporter-config', 'secret/dcp-audit-exporter-tls', 'deployment.apps/dcp-audit-exporter'];
  for (let i = 0; ; i++) {
    const names = (await kubectl('-n', 'dcp-system', 'get', 'configmaps,secrets,deployments', '-l', AUDIT_SELECTOR, '-o', 'name')).split('\n');
    if (want.every((w) => names.includes(w))) break;
    if (i > 60) throw new Error('the audit-export objects did not appear');
    await sleep(500);
  }
  step('the operator installed the extension in dcp-system');
  process.stdout.write(await kubectl('-n', 'dcp-system', 'get', 'configmaps,secrets,serviceaccounts,services,deployments', '-l', AUDIT_SELECTOR));

  // kwok runs no containers: run the exporter as a process, with the files the Deployment would mount.
  const cm = JSON.parse(await kubectl('-n', 'dcp-system', 'get', 'configmap', 'dcp-audit-exporter-config', '-o', 'json')) as { data: Record<string, string> };
  mkdirSync(join(work, 'config'), { recursive: true });
  for (const [k, v] of Object.entries(cm.data)) writeFileSync(join(work, 'config', k), v);
  const sameAsCluster = readFileSync(join(ctx.demoDir, 'audit-policy.yaml'), 'utf8') === cm.data['audit-policy.yaml'];
  console.log(dim(`  the API server's --audit-policy-file ${sameAsCluster ? 'is' : 'is NOT'} the audit-policy.yaml the controller wrote`));
  step('starting dcp audit-exporter with that configuration, reading the API server audit log');
  const exporter = spawn(
    process.execPath,
    [ctx.dcp, 'audit-exporter', '--config', join(work, 'config', 'exporter.json'), '--listen', '', '--audit-log', ctx.auditLog, '--state-dir', join(work, 'state'), '--kubeconfig', ctx.kubeconfig, '--namespace', 'dcp-system', '--metrics-addr', '127.0.0.1:0', '--health-addr', '127.0.0.1:0', '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<number | null>((r) => exporter.once('exit', r));
  try {
    step('a person changes things: create a namespace and a ConfigMap, patch it, read it, delete it');
    await kubectl('create', 'namespace', 'audit-demo');
    await kubectl('-n', 'audit-demo', 'create', 'configmap', 'app-settings', '--from-literal=mode=blue');
    await kubectl('-n', 'audit-demo', 'patch', 'configmap', 'app-settings', '-p', '{"data":{"mode":"green"}}');
    await kubectl('-n', 'audit-demo', 'get', 'configmap', 'app-settings');
    await kubectl('-n', 'audit-demo', 'delete', 'configmap', 'app-settings');
    const ours = (e: AuditEvent) => e.objectRef?.namespace === 'audit-demo' || (e.objectRef?.resource === 'namespaces' && e.objectRef.name === 'audit-demo');
    let found: { events: AuditEvent[]; files: string[] } = { events: [], files: [] };
    for (let i = 0; i < 60; i++) {
      found = destinationEvents(destination);
      if (found.events.filter(ours).length >= 4) break;
      await sleep(500);
    }
    heading(`audit events in the file destination (${relative(ctx.root, destination)}/YYYY-MM-DD/HH.jsonl)`);
    for (const e of found.events.filter(ours)) {
      const what = `${e.objectRef?.resource ?? ''}/${e.objectRef?.name ?? ''}`;
      console.log(`  ${e.stageTimestamp.slice(11, 19)}  ${e.verb.padEnd(7)} ${what.padEnd(26)} ${String(e.responseStatus?.code ?? '').padEnd(4)} ${(e.user?.username ?? '').padEnd(12)} auditID ${e.auditID}`);
    }
    console.log(dim(`  the get was left out (kube-audit-admin); ${found.events.length} events in ${found.files.map((f) => relative(ctx.root, f)).join(', ')}`));
    await sleep(2500); // the exporter reports to the operator every 2 s
    heading('kubectl get dcp');
    process.stdout.write(await kubectl('get', 'dcp'));
    const status = JSON.parse(await kubectl('get', 'dcp', 'default', '-o', 'jsonpath={.status.auditExport}')) as { state: string; reason?: string; message?: string };
    console.log(`  status.auditExport: ${status.state} (${status.reason ?? ''}): ${status.message ?? ''}`);
  } finally {
    exporter.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(25_000).then(() => 'timeout' as const)]);
    if (code !== 0) {
      exporter.kill('SIGKILL');
      console.log(`  dcp audit-exporter exited ${String(code)}`);
    } else {
      console.log(dim('  dcp audit-exporter flushed and exited 0 on SIGTERM'));
    }
  }

  heading('audit export: disable it');
  await kubectl('patch', 'dcp', 'default', '--type=merge', '-p', '{"spec":{"diagnostics":{"auditExport":{"enabled":false}}}}');
  for (let i = 0; ; i++) {
    const left = (await kubectl('-n', 'dcp-system', 'get', 'configmaps,secrets,serviceaccounts,services,deployments,pods', '-l', AUDIT_SELECTOR, '-o', 'name')).trim();
    if (left === '') break;
    if (i > 120) throw new Error(`extension objects left after disabling: ${left}`);
    await sleep(500);
  }
  step('every audit-export object is gone from dcp-system; the exported events stay with the customer');
}
