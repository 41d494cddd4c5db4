// Which categories a policy collects: billing always, diagnostics when audit export is on, the rest by their flag.
import type { CategoryName, PolicySpec } from './policy.js';

export function categoryEnabled(spec: PolicySpec, name: CategoryName): boolean {
  switch (name) {
    case 'billing':
      return true;
    case 'diagnostics':
      return spec.diagnostics.auditExport.enabled;
    default:
      return spec.categories[name].enabled;
  }
}
