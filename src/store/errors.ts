// Why a store operation failed, as a small closed set: the `reason` label of store failure metrics and conditions.
import { StoreLockedError } from './lock.js';

/** Errno codes worth their own label; anything else is `Other`. */
const KNOWN = ['ENOSPC', 'EROFS', 'EACCES', 'EPERM', 'ENOTDIR', 'EEXIST', 'EDQUOT', 'EIO', 'EMFILE', 'ENOENT'] as const;

export type StoreFailureReason = (typeof KNOWN)[number] | 'Locked' | 'Other';

export function storeFailureReason(err: unknown): StoreFailureReason {
  if (err instanceof StoreLockedError) return 'Locked';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (KNOWN as readonly string[]).includes(code ?? '') ? (code as StoreFailureReason) : 'Other';
}
