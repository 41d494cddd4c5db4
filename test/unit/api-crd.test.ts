// The policy API: the committed CRD is what src/api/policy.ts generates, every field is described, defaults are right.
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { CRD_FILE, renderCrdYaml } from '../../src/api/crd-file.js';
import { policyOpenApiSchema } from '../../src/api/crd.js';
import { InvalidPolicyError, parsePolicy } from '../../src/api/validation.js';
import { AZURE_REGIONS, countryOf } from '../../src/api/regions.js';

type Schema = { [key: string]: unknown; properties?: Record<string, Schema>; items?: Schema; description?: string };

function undescribed(schema: Schema, path: string, out: string[]): string[] {
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const p = `${path}.${name}`;
    if (p !== '.metadata' && !prop.description) out.push(p);
    undescribed(prop, p, out);
    if (prop.items) undescribed(prop.items, `${p}[]`, out);
  }
  return out;
}

const minimal = () => ({
  apiVersion: 'datacollection.arc.io/v1alpha1',
  kind: 'DataCollectionPolicy',
  metadata: { name: 'default' },
  spec: { subscriptionId: '3f2c1a9e-0000-4000-8000-000000000001', region: 'eastus' },
});

describe('the policy API definition', function () {
  it('generates exactly the committed CRD file (run make generate after changing src/api/policy.ts)', function () {
    expect(readFileSync(CRD_FILE, 'utf8')).to.equal(renderCrdYaml());
  });

  it('describes every field of the schema', function () {
    expect(undescribed(policyOpenApiSchema() as Schema, '', [])).to.deep.equal([]);
  });

  it('requires only subscriptionId and region in spec, since every other field has a default', function () {
    const spec = (policyOpenApiSchema().properties as Record<string, Schema>).spec;
    expect(spec?.required).to.deep.equal(['subscriptionId', 'region']);
  });

  it('fills the documented defaults into a minimal policy', function () {
    const p = parsePolicy(minimal());
    expect(p.spec.retention).to.deep.equal({ rawDays: 28, aggregateDays: 365 });
    expect(p.spec.categories.billing.intervalSeconds).to.equal(3600);
    expect(p.spec.categories.controlPlane).to.deep.equal({ enabled: true, intervalSeconds: 60 });
    expect(p.spec.diagnostics.auditExport.destination).to.deep.equal({ type: 'file', path: '/var/lib/dcp/audit' });
    expect(p.spec.export.forwardAggregatesToCentral).to.equal(false);
  });

  it('does not change the object it was given', function () {
    const input = minimal();
    parsePolicy(input);
    expect(input.spec).to.not.have.property('retention');
  });

  it('rejects an object that breaks the structural schema, naming the field', function () {
    const bad = minimal();
    (bad.spec as Record<string, unknown>).retention = { rawDays: 40 };
    expect(() => parsePolicy(bad)).to.throw(InvalidPolicyError, '/spec/retention/rawDays must be <= 28');
  });

  it('knows the country of every region it accepts', function () {
    for (const region of AZURE_REGIONS) expect(countryOf(region)).to.match(/^[A-Z]{2}$/);
  });
});
