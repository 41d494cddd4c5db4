// The kubeconfig a command was given, loaded and checked up front.
import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadKubeconfig as load, SERVICE_ACCOUNT_DIR, type KubeconfigSource, type LoadedKubeconfig } from '../kube/kubeconfig.js';
import { errorText, UsageError } from './flags.js';

const SERVICE_ACCOUNT_TOKEN = join(SERVICE_ACCOUNT_DIR, 'token');

/** Files a kubeconfig names for its current cluster and user: they are read at each request, so they must be readable now. */
function referencedFiles(kc: LoadedKubeconfig): string[] {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  return [cluster?.caFile, user?.certFile, user?.keyFile].filter((f): f is string => typeof f === 'string' && f !== '');
}

/**
 * Loads the kubeconfig a command was given (--kubeconfig, else $KUBECONFIG, ~/.kube/config or
 * the in-cluster service account), or throws a UsageError saying which file and why.
 */
export async function loadKubeconfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<LoadedKubeconfig> {
  const source = path ?? env.KUBECONFIG?.split(':').find((p) => p !== '');
  const defaultFile = join(homedir(), '.kube', 'config');
  const what = path !== undefined ? `--kubeconfig ${path}` : source !== undefined ? `$KUBECONFIG ${source}` : existsSync(defaultFile) ? defaultFile : 'the in-cluster service account';
  if (path === undefined && source === undefined && !existsSync(defaultFile) && !existsSync(SERVICE_ACCOUNT_TOKEN)) {
    throw new UsageError('no kubeconfig', 'pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config or run in a cluster');
  }
  const file = path ?? source ?? (existsSync(defaultFile) ? defaultFile : undefined);
  if (file !== undefined) {
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      throw new UsageError(`${what} cannot be read`, errorText(err));
    }
  }
  // $KUBECONFIG may list several files, merged in order (client-node's rules, as before).
  const from: KubeconfigSource =
    path !== undefined ? { files: [path] } : source !== undefined ? { files: (env.KUBECONFIG ?? '').split(':').filter((p) => p !== '') } : file !== undefined ? { files: [file] } : { inCluster: true, env };
  let kc: LoadedKubeconfig;
  try {
    kc = await load(from);
  } catch (err) {
    throw new UsageError(`${what} is not a usable kubeconfig`, errorText(err));
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    const context = kc.getCurrentContext();
    throw new UsageError(`${what} is not a usable kubeconfig`, context ? `its current context "${context}" names no cluster` : 'it sets no current-context');
  }
  try {
    new URL(cluster.server);
  } catch {
    throw new UsageError(`${what} is not a usable kubeconfig`, `cluster "${cluster.name}" has no valid server URL: "${cluster.server}"`);
  }
  for (const f of referencedFiles(kc)) {
    try {
      accessSync(f, constants.R_OK);
    } catch (err) {
      throw new UsageError(`${what} names a file that cannot be read`, `${f}: ${errorText(err)}`);
    }
  }
  return kc;
}

