// The exporter's configuration file (exporter.json, written by the controller into its ConfigMap): parsed and checked.
import { readFile } from 'node:fs/promises';
import { AUDIT_PROFILES, type AuditProfile } from './profile.js';

export type DestinationConfig =
  | { readonly type: 'file'; readonly path: string }
  | { readonly type: 'http'; readonly url: string; readonly credentialKey?: string }
  | { readonly type: 'azureBlob'; readonly resourceId: string; readonly credentialKey: string };

export interface ExporterConfig {
  readonly profile: AuditProfile;
  readonly destination: DestinationConfig;
  /** Nothing intermediate is kept longer (1..48). */
  readonly intermediateRetentionHours: number;
  /** Upper bound of the on-disk buffer. */
  readonly bufferMaxBytes: number;
}

export const DEFAULT_BUFFER_MAX_BYTES = 256 * 1024 * 1024;

/** A configuration the exporter cannot run with; the message names the field. */
export class InvalidExporterConfig extends Error {
  override readonly name = 'InvalidExporterConfig';
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(obj: Record<string, unknown>, field: string, where: string): string {
  const v = obj[field];
  if (typeof v !== 'string' || v === '') throw new InvalidExporterConfig(`${where}.${field} must be a non-empty string`);
  return v;
}

function destination(v: unknown): DestinationConfig {
  if (!isRecord(v)) throw new InvalidExporterConfig('destination must be an object');
  switch (v.type) {
    case 'file': {
      const path = str(v, 'path', 'destination');
      if (!path.startsWith('/')) throw new InvalidExporterConfig('destination.path must be absolute');
      return { type: 'file', path };
    }
    case 'http': {
      const url = str(v, 'url', 'destination');
      if (!/^https?:\/\//.test(url)) throw new InvalidExporterConfig('destination.url must start with https:// or http://');
      return typeof v.credentialKey === 'string' ? { type: 'http', url, credentialKey: v.credentialKey } : { type: 'http', url };
    }
    case 'azureBlob':
      return { type: 'azureBlob', resourceId: str(v, 'resourceId', 'destination'), credentialKey: str(v, 'credentialKey', 'destination') };
    default:
      throw new InvalidExporterConfig(`destination.type must be file, http or azureBlob, not ${JSON.stringify(v.type)}`);
  }
}

export function parseExporterConfig(v: unknown): ExporterConfig {
  if (!isRecord(v)) throw new InvalidExporterConfig('the configuration must be a JSON object');
  const profile = v.profile ?? 'kube-audit-admin';
  if (typeof profile !== 'string' || !(AUDIT_PROFILES as readonly string[]).includes(profile)) {
    throw new InvalidExporterConfig(`profile must be one of ${AUDIT_PROFILES.join(', ')}`);
  }
  const hours = v.intermediateRetentionHours ?? 48;
  if (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 1 || hours > 48) {
    throw new InvalidExporterConfig('intermediateRetentionHours must be an integer from 1 to 48');
  }
  const bytes = v.bufferMaxBytes ?? DEFAULT_BUFFER_MAX_BYTES;
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 1024) {
    throw new InvalidExporterConfig('bufferMaxBytes must be an integer of at least 1024');
  }
  return { profile: profile as AuditProfile, destination: destination(v.destination), intermediateRetentionHours: hours, bufferMaxBytes: bytes };
}

export async function readExporterConfig(file: string): Promise<ExporterConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidExporterConfig(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return parseExporterConfig(JSON.parse(text));
  } catch (err) {
    if (err instanceof InvalidExporterConfig) throw new InvalidExporterConfig(`${file}: ${err.message}`);
    throw new InvalidExporterConfig(`${file} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}
