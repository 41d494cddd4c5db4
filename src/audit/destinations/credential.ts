// Destination credentials (bearer token, connection string, SAS URL) come from a mounted Secret key, read at each use so rotation needs no restart.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DestinationError } from './destination.js';

export type CredentialSource = () => Promise<string>;

export function credentialFile(dir: string, key: string): CredentialSource {
  const file = join(dir, key);
  return async () => {
    let value: string;
    try {
      value = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new DestinationError(`credential ${key} is not readable at ${file} (is the Secret and its key right?): ${String(err)}`, true, { cause: err });
    }
    if (value === '') throw new DestinationError(`credential ${key} at ${file} is empty`, true);
    return value;
  };
}
