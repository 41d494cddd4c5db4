// Writes deploy/chart/dcp-operator from deploy/ and crds/ (`make chart`); stale chart files are removed.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHART_DIR, renderChart } from './chart.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(root, CHART_DIR);
const files = renderChart(root);

function existing(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? existing(join(d, e.name)) : [relative(dir, join(d, e.name))]));
}
mkdirSync(dir, { recursive: true });
for (const stale of existing(dir).filter((f) => !files.has(f))) rmSync(join(dir, stale));
for (const [file, text] of files) {
  mkdirSync(dirname(join(dir, file)), { recursive: true });
  writeFileSync(join(dir, file), text);
}
console.log(`wrote ${CHART_DIR} (${files.size} files)`);
