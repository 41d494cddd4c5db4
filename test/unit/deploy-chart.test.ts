// The Helm chart is generated from deploy/ and crds/: the committed chart is exactly what hack/chart.ts renders.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { CHART_DIR, defaultValues, renderChart, valuesSchema } from '../../hack/chart.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const dir = join(ROOT, CHART_DIR);

function files(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [relative(dir, join(d, e.name))]));
}

describe('the Helm chart', function () {
  it('is exactly what make chart generates from deploy/ and crds/ (run make chart after editing them)', function () {
    const rendered = renderChart(ROOT);
    expect(files(dir).sort(), 'files in the chart').to.deep.equal([...rendered.keys()].sort());
    for (const [file, text] of rendered) expect(readFileSync(join(dir, file), 'utf8'), file).to.equal(text);
  });

  it('has a schema that names every value, and defaults that satisfy it', function () {
    const schema = valuesSchema() as { properties: Record<string, unknown>; required: string[] };
    const values = defaultValues('0.0.0');
    expect(Object.keys(values).sort()).to.deep.equal(Object.keys(schema.properties).sort());
    for (const key of schema.required) expect(values, key).to.have.property(key);
  });
});
