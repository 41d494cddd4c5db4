// Builds the destination a configuration names.
import type { DestinationConfig } from '../config.js';
import type { AuditProfile } from '../profile.js';
import { AzureBlobDestination } from './azure-blob.js';
import { credentialFile } from './credential.js';
import type { AuditDestination } from './destination.js';
import { FileDestination } from './file.js';
import { HttpDestination } from './http.js';

export * from './destination.js';
export { AzureBlobDestination, blobNameFor, diagnosticRecord } from './azure-blob.js';
export { FileDestination } from './file.js';
export { HttpDestination } from './http.js';

/** `credentialsDir`: where the destination Secret is mounted (one file per key). */
export function createDestination(config: DestinationConfig, profile: AuditProfile, credentialsDir: string): AuditDestination {
  switch (config.type) {
    case 'file':
      return new FileDestination(config.path);
    case 'http':
      return new HttpDestination(config.credentialKey ? { url: config.url, token: credentialFile(credentialsDir, config.credentialKey) } : { url: config.url });
    case 'azureBlob':
      return new AzureBlobDestination({ profile, resourceId: config.resourceId, credential: credentialFile(credentialsDir, config.credentialKey) });
  }
}
