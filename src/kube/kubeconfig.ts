// Kubeconfig files and the in-cluster service account, read without @kubernetes/client-node.
// NOTE: hand-written on purpose. Importing client-node (even its config module, which pulls in the whole generated
// API) takes a process from ~40 MB to ~115 MB RSS (measured, docs in /work/notes/issue-17-perf.md), more than the
// operator's caches hold at 30k Pods; `dcp run` needs only the server, TLS material and a bearer token. Kubeconfigs
// whose user runs a plugin (exec, auth-provider), that name a proxy, or that are merged from several files still
// load through client-node, imported lazily: only those processes pay for it.
import { readFileSync } from 'node:fs';
import type * as https from 'node:https';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import type { ApiServerAccess } from './client.js';

export interface KubeconfigCluster {
  readonly name: string;
  /** Without a trailing slash. */
  readonly server: string;
  readonly caData?: string;
  readonly caFile?: string;
  readonly skipTLSVerify: boolean;
  readonly tlsServerName?: string;
  readonly proxyUrl?: string;
}

export interface KubeconfigUser {
  readonly name: string;
  readonly certData?: string;
  readonly certFile?: string;
  readonly keyData?: string;
  readonly keyFile?: string;
  readonly token?: string;
  /** Read at load and again once it is older than the re-read interval (projected tokens rotate). */
  readonly tokenFile?: string;
  readonly username?: string;
  readonly password?: string;
  /** `as`: the Impersonate-User header. */
  readonly impersonateUser?: string;
  /** Plugins this loader does not run; their presence sends the file to client-node. */
  readonly exec?: unknown;
  readonly authProvider?: unknown;
}

export interface KubeconfigContext {
  readonly name: string;
  readonly cluster: string;
  readonly user?: string;
  readonly namespace?: string;
}

/** What the CLI checks of a loaded kubeconfig, whichever loader read it (client-node's KubeConfig fits too). */
export interface LoadedKubeconfig extends ApiServerAccess {
  getCurrentContext(): string | undefined;
  getCurrentCluster(): { readonly name: string; readonly server: string; readonly caFile?: string | null; readonly proxyUrl?: string } | null;
  getCurrentUser(): { readonly certFile?: string | null; readonly keyFile?: string | null } | null;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** client-go re-reads token files every minute; a rotated projected token is picked up within that. */
const TOKEN_REREAD_MS = 60_000;

export interface KubeconfigOptions {
  /** Use this context instead of current-context. */
  readonly context?: string;
  /** @default 60000 */
  readonly tokenRereadMs?: number;
  /** Epoch milliseconds, for the token re-read. @default Date.now */
  readonly now?: () => number;
}

/** A parsed kubeconfig: its current context's cluster and user applied to each request. */
export class Kubeconfig implements LoadedKubeconfig {
  private token: { value: string; readAt: number } | undefined;
  private readonly tokenRereadMs: number;
  private readonly now: () => number;

  constructor(
    readonly clusters: readonly KubeconfigCluster[],
    readonly users: readonly KubeconfigUser[],
    readonly contexts: readonly KubeconfigContext[],
    private readonly currentContext: string | undefined,
    options: KubeconfigOptions = {},
  ) {
    this.tokenRereadMs = options.tokenRereadMs ?? TOKEN_REREAD_MS;
    this.now = options.now ?? Date.now;
    // A token file that cannot be read fails the load, as it does in client-node.
    this.bearerToken();
  }

  getCurrentContext(): string | undefined {
    return this.currentContext;
  }

  getCurrentCluster(): KubeconfigCluster | null {
    const context = this.contextObject();
    return context ? (this.clusters.find((c) => c.name === context.cluster) ?? null) : null;
  }

  getCurrentUser(): KubeconfigUser | null {
    const context = this.contextObject();
    return context ? (this.users.find((u) => u.name === context.user) ?? null) : null;
  }

  /** Why this kubeconfig needs client-node (a plugin or a proxy), or undefined when this loader serves it. */
  needsClientNode(): string | undefined {
    const user = this.getCurrentUser();
    if (user?.exec) return 'an exec credential plugin';
    if (user?.authProvider) return 'an auth-provider plugin';
    if (this.getCurrentCluster()?.proxyUrl) return 'a proxy-url';
    return undefined;
  }

  /** TLS material and the Authorization header, as client-node's applyToHTTPSOptions sets them (no agent: KubeClient keeps its own). */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    if (cluster?.server.startsWith('http:') && !cluster.skipTLSVerify) {
      return Promise.reject(new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false'));
    }
    if (!user) return Promise.resolve();
    if (cluster?.skipTLSVerify) opts.rejectUnauthorized = false;
    if (cluster?.tlsServerName) opts.servername = cluster.tlsServerName;
    const ca = cluster ? fileOrData(cluster.caFile, cluster.caData) : undefined;
    if (ca) opts.ca = ca;
    const cert = fileOrData(user.certFile, user.certData);
    if (cert) opts.cert = cert;
    const key = fileOrData(user.keyFile, user.keyData);
    if (key) opts.key = key;
    const headers: Record<string, string> = {};
    if (user.impersonateUser) headers['Impersonate-User'] = user.impersonateUser;
    const token = this.bearerToken();
    if (token) headers['Authorization'] = `Bearer ${token}`;
    opts.headers = { ...(opts.headers as Record<string, string> | undefined), ...headers };
    if (user.username) opts.auth = `${user.username}:${user.password ?? ''}`;
    return Promise.resolve();
  }

  private contextObject(): KubeconfigContext | undefined {
    return this.contexts.find((c) => c.name === this.currentContext);
  }

  private bearerToken(): string | undefined {
    const user = this.getCurrentUser();
    if (user?.token) return user.token;
    if (!user?.tokenFile) return undefined;
    const now = this.now();
    if (this.token === undefined || now - this.token.readAt > this.tokenRereadMs) {
      // A token file ends with a newline more often than not; a header cannot carry it.
      this.token = { value: readFileSync(user.tokenFile, 'utf8').trim(), readAt: now };
    }
    return this.token.value;
  }
}

function fileOrData(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, 'base64');
  return undefined;
}

type Entry = Record<string, unknown>;

function entries(list: unknown): Entry[] {
  return Array.isArray(list) ? list.map((e) => (typeof e === 'object' && e !== null ? (e as Entry) : {})) : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function section(e: Entry, key: string): Entry | undefined {
  const v = e[key];
  return typeof v === 'object' && v !== null ? (v as Entry) : undefined;
}

/** Relative file names in a kubeconfig are relative to the file's directory. */
function resolvePath(baseDir: string | undefined, file: string | undefined): string | undefined {
  return file === undefined || baseDir === undefined || isAbsolute(file) ? file : join(baseDir, file);
}

/**
 * Parses kubeconfig YAML (or JSON). Entries missing a required field throw with client-node's messages
 * (`clusters[0].cluster.server is missing`), so a bad file reads the same whichever loader met it.
 */
export function parseKubeconfig(text: string, baseDir?: string, options: KubeconfigOptions = {}): Kubeconfig {
  const doc: unknown = parse(text, { merge: true });
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('it is not a YAML mapping');
  const root = doc as Entry;
  const clusters = entries(root['clusters']).map((e, i): KubeconfigCluster => {
    const name = str(e['name']);
    if (!name) throw new Error(`clusters[${i}].name is missing`);
    const c = section(e, 'cluster');
    if (!c) throw new Error(`clusters[${i}].cluster is missing`);
    const server = str(c['server']);
    if (!server) throw new Error(`clusters[${i}].cluster.server is missing`);
    const caData = str(c['certificate-authority-data']);
    const caFile = resolvePath(baseDir, str(c['certificate-authority']));
    const tlsServerName = str(c['tls-server-name']);
    const proxyUrl = str(c['proxy-url']);
    return {
      name,
      server: server.replace(/\/$/, ''),
      skipTLSVerify: c['insecure-skip-tls-verify'] === true,
      ...(caData ? { caData } : {}),
      ...(caFile ? { caFile } : {}),
      ...(tlsServerName ? { tlsServerName } : {}),
      ...(proxyUrl ? { proxyUrl } : {}),
    };
  });
  const users = entries(root['users']).map((e, i): KubeconfigUser => {
    const name = str(e['name']);
    if (!name) throw new Error(`users[${i}].name is missing`);
    const u = section(e, 'user') ?? {};
    const fields: Record<string, string | undefined> = {
      certData: str(u['client-certificate-data']),
      certFile: resolvePath(baseDir, str(u['client-certificate'])),
      keyData: str(u['client-key-data']),
      keyFile: resolvePath(baseDir, str(u['client-key'])),
      token: str(u['token']),
      tokenFile: resolvePath(baseDir, str(u['token-file'])),
      username: str(u['username']),
      password: str(u['password']),
      impersonateUser: str(u['as']),
    };
    const present = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<KubeconfigUser>;
    return {
      name,
      ...present,
      ...(u['exec'] ? { exec: u['exec'] } : {}),
      ...(u['auth-provider'] ? { authProvider: u['auth-provider'] } : {}),
    };
  });
  const contexts = entries(root['contexts']).map((e, i): KubeconfigContext => {
    const name = str(e['name']);
    if (!name) throw new Error(`contexts[${i}].name is missing`);
    const c = section(e, 'context');
    if (!c) throw new Error(`contexts[${i}].context is missing`);
    const cluster = str(c['cluster']);
    if (!cluster) throw new Error(`contexts[${i}].context.cluster is missing`);
    const user = str(c['user']);
    const namespace = str(c['namespace']);
    return { name, cluster, ...(user ? { user } : {}), ...(namespace ? { namespace } : {}) };
  });
  const current = options.context ?? str(root['current-context']);
  return new Kubeconfig(clusters, users, contexts, current, options);
}

/** Reads one kubeconfig file; relative paths in it are taken from its directory. */
export function readKubeconfigFile(file: string, options: KubeconfigOptions = {}): Kubeconfig {
  return parseKubeconfig(readFileSync(file, 'utf8'), dirname(file), options);
}

/**
 * The in-cluster config, as client-go's rest.InClusterConfig: the API server at
 * KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, the service account's CA and its token file, re-read
 * as the kubelet rotates it.
 */
export function inClusterKubeconfig(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR, options: KubeconfigOptions = {}): Kubeconfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  // The same URL client-node builds, so a missing variable fails the same URL check in the CLI.
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const serverHost = host !== undefined && isIPv6(host) ? `[${host}]` : String(host);
  const namespaceFile = join(dir, 'namespace');
  let namespace: string | undefined;
  try {
    namespace = readFileSync(namespaceFile, 'utf8').trim() || undefined;
  } catch {
    namespace = undefined;
  }
  return new Kubeconfig(
    [{ name: 'inCluster', server: `${scheme}://${serverHost}:${String(port)}`, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
    [{ name: 'inClusterUser', tokenFile: join(dir, 'token') }],
    [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser', ...(namespace ? { namespace } : {}) }],
    'inClusterContext',
    options,
  );
}

/** Where a kubeconfig comes from: files (several are merged, as $KUBECONFIG lists them) or the service account. */
export type KubeconfigSource = { readonly files: readonly string[]; readonly context?: string } | { readonly inCluster: true; readonly env?: NodeJS.ProcessEnv };

/**
 * Loads a kubeconfig with this module when it can, and with client-node (imported only then) when the file
 * needs what only client-node does: credential plugins, proxies, merging several files.
 */
export async function loadKubeconfig(source: KubeconfigSource): Promise<LoadedKubeconfig> {
  if ('inCluster' in source) return inClusterKubeconfig(source.env);
  const [first, ...rest] = source.files;
  if (first === undefined) throw new Error('no kubeconfig file given');
  if (rest.length === 0) {
    const own = readKubeconfigFile(first, source.context !== undefined ? { context: source.context } : {});
    if (own.needsClientNode() === undefined) return own;
  }
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(first);
  for (const file of rest) {
    const more = new KubeConfig();
    more.loadFromFile(file);
    kc.mergeConfig(more);
  }
  if (source.context !== undefined) kc.setCurrentContext(source.context);
  return kc;
}
