// Writes crds/ from src/api/policy.ts; `make generate` runs it, and a unit test fails when the file drifts.
import { writeFileSync } from 'node:fs';
import { CRD_FILE, renderCrdYaml } from '../src/api/crd-file.js';

writeFileSync(CRD_FILE, renderCrdYaml());
console.log(`wrote ${CRD_FILE}`);
