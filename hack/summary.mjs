// Sums the per-suite counts in .dev/results/*.json into the closing line "N passed, N failed[, N skipped]".
import { readdirSync, readFileSync } from 'node:fs';
const dir = process.argv[2] ?? '.dev/results';
const total = { passed: 0, failed: 0, skipped: 0 };
for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
  const r = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  console.log(`  ${f.replace(/\.json$/, '').padEnd(8)} ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`);
  for (const k of Object.keys(total)) total[k] += r[k] ?? 0;
}
console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
process.exit(total.failed > 0 ? 1 : 0);
