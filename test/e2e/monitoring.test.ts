// deploy/monitoring is checked, not just written: promtool (pinned in hack/prometheus) checks the
// PrometheusRule's rules and runs their unit tests (every alert firing and not firing), lints a real
// scrape of `dcp run` and of `dcp audit-exporter`, and every metric an alert or a dashboard panel
// uses exists in those scrapes.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { ExporterProcess } from './audit-helpers.js';
import { cluster, ROOT, run, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import { applyOk, policyYaml, readyAtGeneration, REGION } from './pipeline-helpers.js';

const PROMTOOL = join(ROOT, 'bin/promtool');
const MONITORING = join(ROOT, 'deploy/monitoring');

interface Rule {
  alert?: string;
  expr: string;
}
interface AlertTest {
  alertname: string;
  exp_alerts?: unknown[];
}

const rules = (): Rule[] =>
  (parse(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as { spec: { groups: { rules: Rule[] }[] } }).spec.groups.flatMap((g) => g.rules);

/** Every PromQL expression of the dashboard's panels (rows nest none here, but are walked anyway). */
function dashboardExprs(): string[] {
  type Panel = { targets?: { expr?: string }[]; panels?: Panel[] };
  const walk = (panels: Panel[]): string[] => panels.flatMap((p) => [...(p.targets ?? []).map((t) => t.expr ?? ''), ...walk(p.panels ?? [])]);
  const d = JSON.parse(readFileSync(join(MONITORING, 'dashboard.json'), 'utf8')) as { panels: Panel[]; templating: { list: { definition?: string }[] } };
  return [...walk(d.panels), ...d.templating.list.map((v) => v.definition ?? '')].filter((e) => e !== '');
}

const metricNames = (exprs: string[]): Set<string> => new Set(exprs.flatMap((e) => e.match(/\bdcp_[a-z0-9_]+/g) ?? []));

/** Metric families a scrape declares (# TYPE lines), so a labelled counter not yet incremented counts too. */
const families = (scrape: string): Set<string> => new Set([...scrape.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] ?? ''));

describe('monitoring: alerts and dashboard checked by promtool against real scrapes', function () {
  this.timeout(240_000);
  let c: TestCluster;
  let dir: string;
  let op: OperatorProcess | undefined;
  let exporter: ExporterProcess | undefined;

  before(async function () {
    c = cluster();
    dir = mkdtempSync(join(tmpdir(), 'dcp-e2e-monitoring-'));
    // promtool reads plain rule files: the PrometheusRule's spec is one.
    const spec = (parse(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as { spec: unknown }).spec;
    writeFileSync(join(dir, 'dcp-operator.rules.yaml'), stringify(spec));
    copyFileSync(join(MONITORING, 'rules-test.yaml'), join(dir, 'rules-test.yaml'));
  });

  after(async function () {
    await op?.stop();
    op?.cleanup();
    await exporter?.stop();
    killAllOperators();
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes promtool check rules', async function () {
    const r = await run(PROMTOOL, ['check', 'rules', join(dir, 'dcp-operator.rules.yaml')]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`SUCCESS: ${rules().length} rules found`);
  });

  it('passes promtool test rules, which test every alert both firing and not firing', async function () {
    const r = await run(PROMTOOL, ['test', 'rules', join(dir, 'rules-test.yaml')]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const tests = (parse(readFileSync(join(dir, 'rules-test.yaml'), 'utf8')) as { tests: { alert_rule_test?: AlertTest[] }[] }).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of rules().map((x) => x.alert).filter((a): a is string => a !== undefined)) {
      const mine = tests.filter((t) => t.alertname === alert);
      expect(mine.some((t) => (t.exp_alerts ?? []).length > 0), `${alert} tested firing`).to.equal(true);
      expect(mine.some((t) => (t.exp_alerts ?? []).length === 0), `${alert} tested not firing`).to.equal(true);
    }
  });

  it('lints real scrapes of dcp run and dcp audit-exporter (promtool check metrics); they hold every metric the alerts and the dashboard use', async function () {
    killAllOperators();
    await c.resetPolicy();
    // A fresh meter: a billing state left by earlier tests (other intervals) would hold back the 10 s intervals.
    await c.kubectl(['-n', 'dcp-system', 'delete', 'configmap', 'dcp-billing', '--ignore-not-found']);
    op = new OperatorProcess(c.kubeconfigPath, ['--leader-elect']);
    await op.started();
    // An otlp sink nobody listens on: the sink families get samples; billing every 10 s: its gauges appear.
    const sinks = [{ name: 'nowhere', type: 'otlp', url: 'http://127.0.0.1:9/', region: REGION }];
    await applyOk(c, policyYaml({ categories: { controlPlane: { intervalSeconds: 10 }, billing: { intervalSeconds: 10 } }, export: { sinks } }));
    await readyAtGeneration(c, 90_000);
    await waitFor(async () => /^dcp_billing_last_interval_end_timestamp_seconds /m.test(await op!.metrics()) && /^dcp_kms_healthy /m.test(await op!.metrics()), 60_000, 'billing and KMS gauges', 500);
    const operatorScrape = await op.metrics();

    const auditDir = join(dir, 'audit');
    mkdirSync(join(auditDir, 'out'), { recursive: true });
    writeFileSync(join(auditDir, 'exporter.json'), JSON.stringify({ profile: 'kube-audit', destination: { type: 'file', path: join(auditDir, 'out') } }));
    writeFileSync(join(auditDir, 'audit.log'), '');
    exporter = new ExporterProcess(['--config', join(auditDir, 'exporter.json'), '--listen', '', '--audit-log', join(auditDir, 'audit.log'),
      '--state-dir', join(auditDir, 'state'), '--credentials-dir', join(auditDir, 'credentials')]);
    await exporter.ready();
    const started = exporter.logs.find((l) => l.message === 'dcp audit-exporter started');
    const exporterScrape = await (await fetch(`http://127.0.0.1:${String(started?.metrics).split(':').pop()}/metrics`)).text();

    for (const [what, scrape] of [['dcp run', operatorScrape], ['dcp audit-exporter', exporterScrape]] as const) {
      const lint = await run(PROMTOOL, ['check', 'metrics'], scrape);
      const findings = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.trim() !== '');
      // prom-client's default Node.js gauges nodejs_active_{handles,requests,resources}_total carry a
      // _total suffix promtool reserves for counters: upstream names, left as they are (dashboards use them).
      const upstream = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
      expect(findings.filter((l) => !upstream.test(l)), `promtool check metrics on ${what}`).to.deep.equal([]);
    }
    const exposed = new Set([...families(operatorScrape), ...families(exporterScrape)]);
    const used = metricNames([...rules().map((x) => x.expr), ...dashboardExprs()]);
    expect(used.size).to.be.greaterThan(15);
    expect([...used].filter((m) => !exposed.has(m)), 'metrics used by alerts or panels but in no scrape').to.deep.equal([]);
  });
});
