// Runtime validation and defaulting of policies read from the API server or a file, from the CRD schema.
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { policyOpenApiSchema } from './crd.js';
import type { DataCollectionPolicy } from './policy.js';

// ajv-formats is CommonJS; under NodeNext its default export arrives as the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: false });
  addFormats(ajv);
  compiled = ajv.compile(policyOpenApiSchema());
  return compiled;
}

export class InvalidPolicyError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid DataCollectionPolicy: ${problems.join('; ')}`);
    this.name = 'InvalidPolicyError';
  }
}

const describe = (e: ErrorObject): string => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`;

/**
 * Fills defaults in place (as the API server does) and checks the structural schema.
 * CEL rules are the API server's job; this guards against objects that bypassed it.
 */
export function parsePolicy(obj: unknown): DataCollectionPolicy {
  const copy: unknown = structuredClone(obj);
  const validate = validator();
  if (!validate(copy)) throw new InvalidPolicyError((validate.errors ?? []).map(describe));
  return copy as DataCollectionPolicy;
}
