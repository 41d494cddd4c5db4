// Property: personal and secret values planted in Nodes, Pods, Events and Secrets never reach the store, the files or any sink.
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import type * as k8s from '@kubernetes/client-node';
import { deviceIdOf } from '../../src/collectors/host-os.js';
import { projectNode } from '../../src/collectors/projections.js';
import { DEVICE_KEY_SECRET, keyOfSecret } from '../../src/collectors/device-key.js';
import { encodeRecord } from '../../src/store/record.js';
import { ed25519Key, selfSignedCertificate } from '../../hack/certs.js';
import { cluster, needsLocalControlPlane, RUN_LABEL, type TestCluster } from './harness.js';
import { killAllOperators, OperatorProcess, waitFor } from './operator-process.js';
import {
  applyOk,
  cursorPast,
  filesUnder,
  findLeaks,
  findMarkers,
  getPolicy,
  pool,
  policyYaml,
  rawEnd,
  readStore,
  readyAtGeneration,
  Receiver,
  REGION,
  storeIds,
  waitForDefaultServiceAccount,
  type Haystack,
  type Needle,
} from './pipeline-helpers.js';

const CASES = Number(process.env.PII_CASES ?? 1000);
const SEED = Number(process.env.PII_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 24;
/** Every planted value carries one: `zq` + the case number (base 36) + random letters and digits. */
const MARKER = /zq[a-z0-9]{8}/;

// ---------------------------------------------------------------------------------------------
// What a case is made of

/** Values that identify a host, carry text a collector would copy, or look like a secret; never emitted. */
const PII_KINDS = ['email', 'ipv4', 'ipv6', 'uuid', 'jwt', 'bearer', 'credential', 'pem', 'ownNodeName', 'ownHostname', 'otherNodeName'] as const;
type PoisonKind = (typeof PII_KINDS)[number];
const EMITTED = ['osImage', 'kernelVersion', 'containerRuntimeVersion'] as const;
type EmittedField = (typeof EMITTED)[number];

const OS_IMAGES = ['Ubuntu 22.04.5 LTS', 'Ubuntu 24.04.2 LTS', 'Azure Linux 3.0', 'CBL-Mariner/Linux', 'Windows Server 2022 Datacenter'];
const KERNELS = ['5.15.0-1079-azure', '6.8.0-1021-azure', '6.6.64.2-9.azl3', '5.15.173.1-2.cm2', '10.0.20348.3207'];
const RUNTIMES = ['containerd://1.7.27-1', 'containerd://2.0.4', 'containerd://1.7.25-1'];
const VM_SIZES = [
  { name: 'Standard_D2s_v5', cpu: '2' },
  { name: 'Standard_D4s_v5', cpu: '4' },
  { name: 'Standard_E8s_v5', cpu: '8' },
];

const word = fc.stringMatching(/^[a-z]{3,9}$/);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const smallDomain = fc.domain({ size: 'xsmall' }).filter((d) => d.length <= 40 && DNS_SUBDOMAIN.test(d));

/** The random material of one case; `finish` turns it into planted strings around the case's marker. */
const rawCase = fc.record({
  rand: fc.stringMatching(/^[a-z0-9]{6}$/),
  first: word,
  last: word,
  hostWord: word,
  domain: smallDomain,
  email: fc.emailAddress({ size: 'xsmall' }).filter((e) => e.length <= 50),
  ipv4: fc.tuple(fc.integer({ min: 11, max: 223 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 254 })),
  // Distinctive addresses only: '::' or '::1' name no particular host and occur in ordinary text.
  ipv6: fc.ipV6().filter((v) => v.length >= 12 && (v.match(/[0-9a-f]/gi) ?? []).length >= 8),
  nodeStyle: fc.constantFrom('aks', 'fqdn', 'ec2'),
  vmss: fc.integer({ min: 0, max: 999_999 }),
  tokenBytes: fc.uint8Array({ minLength: 18, maxLength: 36 }),
  sigBytes: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  keySeed: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  serial: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  systemUUID: fc.uuid({ version: 4 }),
  upperUUID: fc.boolean(),
  machineID: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  bootID: fc.uuid({ version: 4 }),
  prose: fc.lorem({ maxCount: 6 }),
  unicode: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
  clean: fc.record({ osImage: fc.constantFrom(...OS_IMAGES), kernelVersion: fc.constantFrom(...KERNELS), containerRuntimeVersion: fc.constantFrom(...RUNTIMES) }),
  // About one Node in five carries a planted value in a field the host OS collector emits.
  poison: fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: fc.record({ kind: fc.constantFrom(...PII_KINDS), field: fc.constantFrom(...EMITTED) }), weight: 1 }),
  secretType: fc.constantFrom('tls', 'opaque', 'basic-auth'),
  size: fc.constantFrom(...VM_SIZES),
});
type RawCase = typeof rawCase extends fc.Arbitrary<infer T> ? T : never;

/** The planted strings of one case. */
interface Planted {
  readonly index: number;
  readonly marker: string;
  readonly nodeName: string;
  /** The kubernetes.io/hostname label (≤ 63 characters). */
  readonly shortHost: string;
  /** The Hostname address: a fully qualified name. */
  readonly hostname: string;
  readonly userName: string;
  readonly windowsUser: string;
  readonly labelUser: string;
  readonly email: string;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly token: string;
  readonly password: string;
  readonly jwt: string;
  readonly keyPem: string;
  readonly certPem: string;
  readonly systemUUID: string;
  readonly machineID: string;
  readonly bootID: string;
  readonly freeText: string;
  readonly labelText: string;
  readonly podName: string;
  readonly image: string;
  readonly raw: RawCase;
}

const b64url = (b: Uint8Array | string): string => Buffer.from(b).toString('base64url');

function finish(r: RawCase, index: number): Planted {
  const marker = `zq${index.toString(36).padStart(2, '0')}${r.rand}`;
  const shortHost = `${r.hostWord}-${marker}`;
  const hostname = `${shortHost}.${r.domain}`;
  const [a, b, c, d] = r.ipv4;
  const nodeName =
    r.nodeStyle === 'aks'
      ? `aks-${r.hostWord}-${marker}-vmss${String(r.vmss).padStart(6, '0')}`
      : r.nodeStyle === 'fqdn'
        ? hostname
        : `ip-${a}-${b}-${c}-${d}-${marker}.ec2.internal`;
  const userName = `${r.first}.${r.last}.${marker}`;
  const at = r.email.lastIndexOf('@');
  const email = `${r.email.slice(0, at)}.${marker}${r.email.slice(at)}`;
  const jwt = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: `${r.first}.${marker}`, iat: 1767225600 }))}.${b64url(r.sigBytes)}`;
  const key = ed25519Key(r.keySeed);
  const keyPem = key.export({ format: 'pem', type: 'pkcs8' }).toString();
  const systemUUID = r.upperUUID ? r.systemUUID.toUpperCase() : r.systemUUID;
  const freeText = `${r.prose} ${marker} ${r.unicode}`;
  const podName = `${r.first}-${r.last}-${marker}`;
  const planted = {
    index,
    marker,
    nodeName,
    shortHost,
    hostname,
    userName,
    windowsUser: `CORP\\${r.first}${r.last}${marker}`,
    labelUser: `${r.first}_${r.last}.${marker}`,
    email,
    ipv4: `${a}.${b}.${c}.${d}`,
    ipv6: r.ipv6,
    token: `${marker}${b64url(r.tokenBytes)}`,
    password: `Pw-${marker}-${b64url(r.tokenBytes).slice(0, 10)}`,
    jwt,
    keyPem,
    certPem: '',
    systemUUID,
    machineID: Buffer.from(r.machineID).toString('hex'),
    bootID: r.bootID,
    freeText,
    labelText: `${r.hostWord}_${marker}.${r.last}`,
    podName,
    image: `registry-${marker}.${r.domain}/${r.first}/app:1.4.2`,
    raw: r,
  };
  return { ...planted, certPem: certificate(planted, key) };
}

// ---------------------------------------------------------------------------------------------
// A real X.509 certificate (Ed25519, self-signed) whose subject and SANs are planted values

function certificate(p: Omit<Planted, 'certPem'>, key: KeyObject): string {
  const now = Date.now();
  return selfSignedCertificate({
    commonName: p.hostname,
    organization: p.userName,
    email: p.email,
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 90 * 86_400_000),
    dnsNames: [p.hostname, p.nodeName],
    emails: [p.email],
    ipv4: [p.ipv4],
    serial: p.raw.serial,
    key,
  }).certPem;
}

// ---------------------------------------------------------------------------------------------
// The Kubernetes objects of a case

/** The value of an emitted field: a realistic one, or (poisoned Nodes) one with a planted value inside. */
function emitted(p: Planted, field: EmittedField, all: readonly Planted[]): string {
  const clean = p.raw.clean[field];
  const poison = p.raw.poison;
  if (!poison || poison.field !== field) return clean;
  const other = all[(p.index + 1) % all.length] ?? p;
  const text: Record<PoisonKind, string> = {
    email: `${clean} (maintainer ${p.email})`,
    ipv4: `${clean} build host ${p.ipv4}`,
    ipv6: `${clean} [${p.ipv6}]`,
    uuid: `${clean} ${p.systemUUID}`,
    jwt: `${clean} ${p.jwt}`,
    bearer: `${clean} Authorization: Bearer ${p.token}`,
    credential: `${clean} password=${p.password}`,
    pem: `${clean}\n${p.keyPem}`,
    ownNodeName: `${clean} (${p.nodeName})`,
    ownHostname: `${clean} on ${p.hostname}`,
    otherNodeName: `${clean} built on ${other.nodeName}`,
  };
  const value = text[poison.kind];
  // The schema caps strings at 256 characters; a longer value would be cut, and a cut value could hide its marker.
  if (value.length > 256) throw new Error(`case ${p.index}: a poisoned ${field} is ${value.length} characters`);
  return value;
}

function nodeObject(c: TestCluster, p: Planted, all: readonly Planted[]): k8s.V1Node {
  const now = new Date();
  const conditions = [
    { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
    { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' },
    { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
    { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
  ].map((x) => ({ ...x, lastHeartbeatTime: now, lastTransitionTime: now }));
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: p.nodeName,
      labels: {
        'kubernetes.io/hostname': p.shortHost,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'node.kubernetes.io/instance-type': p.raw.size.name,
        'topology.kubernetes.io/region': REGION,
        type: 'kwok',
        [RUN_LABEL]: c.runId,
        'contoso.example/owner': p.labelUser,
        'contoso.example/rack-ip': p.ipv4,
        [`team.${p.marker}.example/cost-center`]: p.labelText,
      },
      annotations: {
        'kwok.x-k8s.io/node': 'fake',
        'node.alpha.kubernetes.io/ttl': '0',
        'contoso.example/owner-email': p.email,
        'contoso.example/notes': p.freeText,
        'contoso.example/bootstrap-token': p.jwt,
        'contoso.example/ssh-host-key': p.keyPem,
        'contoso.example/ipv6': p.ipv6,
        'contoso.example/admin': p.windowsUser,
        'contoso.example/api-auth': `Bearer ${p.token}`,
      },
    },
    spec: {
      providerID: `azure:///subscriptions/${p.systemUUID}/resourceGroups/${p.labelUser}-rg/providers/Microsoft.Compute/virtualMachineScaleSets/${p.shortHost}/virtualMachines/${p.index}`,
    },
    // NOTE: Ready from the start keeps kwok's node-initialize stage, which renders nodeInfo into YAML
    // unquoted, from choking on (or rewriting) planted values; kwok still manages the Node and its Pods.
    status: {
      phase: 'Running',
      conditions,
      capacity: { cpu: p.raw.size.cpu, memory: '16Gi', pods: '110' },
      allocatable: { cpu: p.raw.size.cpu, memory: '15Gi', pods: '110' },
      addresses: [
        { type: 'InternalIP', address: p.ipv4 },
        { type: 'InternalIP', address: p.ipv6 },
        { type: 'Hostname', address: p.hostname },
        { type: 'InternalDNS', address: `${p.shortHost}.internal.${p.raw.domain}` },
      ],
      nodeInfo: {
        architecture: 'amd64',
        bootID: p.bootID,
        containerRuntimeVersion: emitted(p, 'containerRuntimeVersion', all),
        kernelVersion: emitted(p, 'kernelVersion', all),
        kubeProxyVersion: '',
        kubeletVersion: `v1.34.4+${p.marker}`,
        machineID: p.machineID,
        operatingSystem: 'linux',
        osImage: emitted(p, 'osImage', all),
        systemUUID: p.systemUUID,
      },
    },
  };
}

function podObject(c: TestCluster, p: Planted, namespace: string): k8s.V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.podName,
      namespace,
      labels: { app: 'web', [RUN_LABEL]: c.runId, 'contoso.example/owner': p.labelUser, 'contoso.example/host': p.shortHost },
      annotations: {
        'contoso.example/contact': p.email,
        'contoso.example/notes': p.freeText,
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ owner: p.userName, token: p.token, peer: p.ipv6 }),
      },
    },
    spec: {
      nodeName: p.nodeName,
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'app',
          image: p.image,
          command: ['/bin/app'],
          args: [`--token=${p.token}`, `--admin-email=${p.email}`, `--bind=${p.ipv4}`, `--peer=[${p.ipv6}]:7946`, `--run-as=${p.windowsUser}`],
          env: [
            { name: 'DB_PASSWORD', value: p.password },
            { name: 'TLS_KEY', value: p.keyPem },
            { name: 'OWNER', value: p.userName },
            { name: 'ID_TOKEN', value: p.jwt },
            { name: 'NOTES', value: p.freeText },
            { name: 'MACHINE', value: p.systemUUID },
          ],
        },
      ],
      tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
    },
  };
}

/** Two Warning Events: one about the Node (node-problem-detector style), one about a Pod (in kube-system for half the cases). */
function eventObjects(c: TestCluster, p: Planted, namespace: string): k8s.CoreV1Event[] {
  const now = new Date();
  const hex = createHash('sha256').update(p.marker).digest('hex').slice(0, 16);
  const podNamespace = p.index % 2 === 0 ? 'kube-system' : namespace;
  const common = { type: 'Warning', count: 3, firstTimestamp: now, lastTimestamp: now };
  return [
    {
      ...common,
      metadata: { name: `${p.nodeName}.${hex}`, namespace: 'default', labels: { [RUN_LABEL]: c.runId } },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: p.nodeName },
      reason: p.index % 3 === 0 ? 'KernelOops' : `OOMKilling-${p.labelUser}`,
      message: `Kernel oops on ${p.hostname} (${p.ipv4}, ${p.ipv6}) reported by ${p.email} for ${p.windowsUser}; Authorization: Bearer ${p.token}; ${p.freeText}`,
      source: { component: 'kernel-monitor', host: p.hostname },
    },
    {
      ...common,
      metadata: { name: `${p.podName}.${hex}`, namespace: podNamespace, labels: { [RUN_LABEL]: c.runId } },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: p.podName, namespace: podNamespace },
      reason: p.index % 3 === 1 ? 'BackOff' : `Failed-${p.marker}`,
      message: `Failed to pull image "${p.image}": rpc error: unauthorized: token ${p.jwt} for ${p.userName}; machine ${p.systemUUID} ${p.keyPem}`,
      source: { component: 'kubelet', host: p.nodeName },
    },
  ];
}

/** TLS Secrets go to kube-system (a certificate namespace by default); Opaque and basic-auth ones to the test namespace. */
function secretObject(c: TestCluster, p: Planted, namespace: string): k8s.V1Secret {
  const annotations = { 'contoso.example/owner': p.email, 'contoso.example/notes': p.freeText, 'cert-manager.io/common-name': p.hostname };
  const metadata = (ns: string, name: string): k8s.V1ObjectMeta => ({ name, namespace: ns, labels: { [RUN_LABEL]: c.runId }, annotations });
  switch (p.raw.secretType) {
    case 'tls':
      return { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: metadata('kube-system', `tls-${p.marker}`), stringData: { 'tls.crt': p.certPem, 'tls.key': p.keyPem, 'ca.crt': p.certPem } };
    case 'basic-auth':
      return { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/basic-auth', metadata: metadata(namespace, `basic-${p.marker}`), stringData: { username: p.userName, password: p.password } };
    case 'opaque':
      return {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: metadata(namespace, `opaque-${p.marker}`),
        stringData: { id_ed25519: p.keyPem, kubeconfig: `users:\n- name: ${p.userName}\n  user:\n    token: ${p.jwt}\n`, notes: p.freeText, password: p.password },
      };
  }
}

/** Everything planted in a case, for the leak scan. Values without a marker are random enough on their own. */
function needles(p: Planted, secret: k8s.V1Secret): Needle[] {
  const marked = [p.nodeName, p.shortHost, p.hostname, p.userName, p.windowsUser, p.labelUser, p.email, p.token, p.password, p.freeText, p.labelText, p.podName, p.image];
  const out: Needle[] = marked.map((value) => ({ value, what: `case ${p.index} (${p.marker})` }));
  out.push(
    { value: p.ipv4, what: `case ${p.index} IPv4`, glue: /[0-9.]/ },
    { value: p.ipv6, what: `case ${p.index} IPv6`, glue: /[0-9a-f:.]/ },
    { value: p.systemUUID, what: `case ${p.index} systemUUID` },
    { value: p.bootID, what: `case ${p.index} bootID` },
    { value: p.machineID, what: `case ${p.index} machineID` },
    { value: p.jwt, what: `case ${p.index} JWT` },
  );
  // Key and certificate material, line by line (a leak keeps the lines), and each Secret value as the API returns it (base64).
  for (const pem of p.raw.secretType === 'tls' ? [p.keyPem, p.certPem] : [p.keyPem]) for (const line of pem.split('\n')) if (line.length >= 40 && !line.startsWith('-----')) out.push({ value: line, what: `case ${p.index} PEM body` });
  for (const v of Object.values(secret.stringData ?? {})) out.push({ value: Buffer.from(v).toString('base64'), what: `case ${p.index} Secret data (base64)` });
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('the PII guard end to end: planted personal and secret values never leave through the pipeline', function () {
  this.timeout(300_000);
  let c: TestCluster;
  let namespace: string;
  let sinkDir: string;
  const receivers: Receiver[] = [];
  const operators: OperatorProcess[] = [];

  before(async function () {
    c = cluster();
    namespace = `pii-${c.runId}`;
    sinkDir = mkdtempSync(join(tmpdir(), 'dcp-e2e-pii-sink-'));
    await c.resetPolicy();
    await c.kubectl(['-n', 'dcp-system', 'delete', 'configmap', 'dcp-billing', '--ignore-not-found']);
  });

  afterEach(function () {
    killAllOperators();
    // A stopped operator is no longer "running": its data dir is removed here.
    for (const op of operators) op.cleanup();
  });

  after(async function () {
    for (const r of receivers) await r.close();
    rmSync(sinkDir, { recursive: true, force: true });
    const selector = `${RUN_LABEL}=${c.runId}`;
    await c.kubectl(['delete', 'dcp', 'default', '--ignore-not-found']);
    await c.kubectl(['delete', 'namespace', namespace, '--wait=false', '--ignore-not-found']);
    await c.kubectl(['-n', 'kube-system', 'delete', 'secrets,events,pods', '-l', selector, '--wait=false']);
    await c.kubectl(['-n', 'default', 'delete', 'events', '-l', selector, '--wait=false']);
    await c.kubectl(['delete', 'nodes', '-l', selector, '--wait=false']);
  });

  it(`stores and sends none of the values planted in ${CASES} generated cases, and still reports the clean Nodes`, async function () {
    needsLocalControlPlane(this, `creates ${CASES} kwok-managed Nodes full of planted personal data`);
    const started = Date.now();
    const phase = (what: string): void => console.log(`      [${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);

    // GIVEN: ≥ 1,000 generated cases, each a Node, a Pod, two Events and a Secret full of planted values.
    const cases = fc.sample(rawCase, { numRuns: CASES, seed: SEED }).map(finish);
    expect(cases.length).to.equal(CASES);
    const poisoned = cases.filter((p) => p.raw.poison !== undefined);
    const clean = cases.filter((p) => p.raw.poison === undefined);
    phase(`generated ${cases.length} cases (seed ${SEED}; PII_SEED=${SEED} reproduces them): ${poisoned.length} Nodes with PII in an emitted field`);
    for (const p of cases.slice(0, 50)) expect(new X509Certificate(p.certPem).subject).to.include(p.hostname);

    await c.ensureNamespace(namespace);
    await waitForDefaultServiceAccount(c, namespace);
    const core = c.core();
    const secrets = cases.map((p) => secretObject(c, p, namespace));
    await pool(cases, CONCURRENCY, async (p) => {
      await core.createNode({ body: nodeObject(c, p, cases) });
    });
    phase(`created ${cases.length} Nodes`);
    await pool(cases, CONCURRENCY, async (p, i) => {
      await core.createNamespacedPod({ namespace, body: podObject(c, p, namespace) });
      for (const e of eventObjects(c, p, namespace)) await core.createNamespacedEvent({ namespace: e.metadata.namespace ?? 'default', body: e });
      const s = secrets[i] as k8s.V1Secret;
      await core.createNamespacedSecret({ namespace: s.metadata?.namespace ?? namespace, body: s });
    });
    phase(`created ${cases.length} Pods, ${2 * cases.length} Events and ${cases.length} Secrets`);

    // WHEN: the operator runs with a regional http sink, a file sink and a central otlp sink.
    const regional = await Receiver.start();
    const central = await Receiver.start();
    receivers.push(regional, central);
    const op = new OperatorProcess(c.kubeconfigPath);
    operators.push(op);
    await op.started();
    await applyOk(
      c,
      policyYaml({
        categories: { controlPlane: { intervalSeconds: 10 } },
        export: {
          forwardAggregatesToCentral: true,
          sinks: [
            { name: 'regional', type: 'http', url: regional.url(), region: REGION },
            { name: 'archive', type: 'file', path: sinkDir, region: REGION },
            { name: 'central', type: 'otlp', url: central.url('/otel'), region: 'central' },
          ],
        },
      }),
    );
    await readyAtGeneration(c);
    phase('policy Ready');

    const count = async (resource: 'nodes' | 'pods'): Promise<number> =>
      (await c.kubectlOk(['get', resource, ...(resource === 'pods' ? ['-A'] : []), '-o', 'name'])).split('\n').filter((l) => l.trim() !== '').length;
    await waitFor(
      async () => {
        const [inventory, nodes, pods] = await Promise.all([getPolicy(c).then((p) => p?.status?.inventory), count('nodes'), count('pods')]);
        return inventory?.nodes === nodes && inventory.pods === pods;
      },
      90_000,
      'status.inventory to count every Node and Pod',
      500,
    );

    // The device IDs the clean Nodes' HostOsInfo events must carry: HMAC of the systemUUID under the cluster key.
    const key = keyOfSecret(JSON.parse(await c.kubectlOk(['-n', 'dcp-system', 'get', 'secret', DEVICE_KEY_SECRET, '-o', 'json'])));
    const apiNodes = (JSON.parse(await c.kubectlOk(['get', 'nodes', '-l', `${RUN_LABEL}=${c.runId}`, '-o', 'json'])) as { items: unknown[] }).items;
    const deviceOf = new Map<string, string>();
    for (const n of apiNodes) {
      const name = (n as { metadata: { name: string } }).metadata.name;
      const projection = projectNode(n);
      if (projection) deviceOf.set(name, deviceIdOf(key, projection));
    }
    expect(deviceOf.size).to.equal(cases.length);
    // What the collectors read is what was planted: neither the API server nor kwok rewrote it.
    const infoOf = new Map(apiNodes.map((n) => [(n as k8s.V1Node).metadata?.name, (n as k8s.V1Node).status?.nodeInfo]));
    for (const p of cases) {
      const info = infoOf.get(p.nodeName);
      expect({ osImage: info?.osImage, kernelVersion: info?.kernelVersion, containerRuntimeVersion: info?.containerRuntimeVersion, systemUUID: info?.systemUUID }, p.nodeName).to.deep.equal({
        osImage: emitted(p, 'osImage', cases),
        kernelVersion: emitted(p, 'kernelVersion', cases),
        containerRuntimeVersion: emitted(p, 'containerRuntimeVersion', cases),
        systemUUID: p.systemUUID,
      });
    }

    let hostOs = new Set<string>();
    await waitFor(
      async () => {
        const rejected = (await op.metric('dcp_events_pii_rejected_total', 'category="hostOs"')) ?? 0;
        const emittedCount = (await getPolicy(c))?.status?.categories?.hostOs?.eventsEmitted ?? 0;
        if (rejected < poisoned.length || emittedCount < clean.length) return false;
        if ((await readStore(op.dataDir, { name: 'ControlPlaneInventory' })).length === 0) return false;
        hostOs = new Set((await readStore(op.dataDir, { name: 'HostOsInfo' })).map((e) => String(e.data.deviceId)));
        return clean.every((p) => hostOs.has(deviceOf.get(p.nodeName) ?? ''));
      },
      120_000,
      'HostOsInfo events for every clean Node, a rejection for every poisoned one, and an inventory event',
      1000,
    );
    phase(`store holds HostOsInfo for all ${clean.length} clean Nodes`);

    // The Events and Secrets are read too: a HostError per Node Event (and per kubelet warning in kube-system), a
    // LinuxVmEvent per kube-system Pod Event, a CertificateStatus per TLS Secret (each certificate is its own).
    const tlsCases = cases.filter((p) => p.raw.secretType === 'tls');
    const tlsFingerprints = new Set(tlsCases.map((p) => new X509Certificate(p.certPem).fingerprint256.replace(/:/g, '').toLowerCase()));
    const systemPodEvents = cases.filter((p) => p.index % 2 === 0).length;
    let other = { hostErrors: 0, linuxVm: 0, certificates: 0 };
    await waitFor(
      async () => {
        const certificates = new Set((await readStore(op.dataDir, { name: 'CertificateStatus' })).map((e) => String(e.data.fingerprintSha256)));
        other = {
          hostErrors: (await readStore(op.dataDir, { name: 'HostError' })).length,
          linuxVm: (await readStore(op.dataDir, { name: 'LinuxVmEvent' })).length,
          certificates: [...tlsFingerprints].filter((f) => certificates.has(f)).length,
        };
        return other.hostErrors >= cases.length + systemPodEvents && other.linuxVm >= systemPodEvents && other.certificates === tlsFingerprints.size;
      },
      120_000,
      'HostError, LinuxVmEvent and CertificateStatus events for the planted Events and TLS Secrets',
      1000,
    );
    phase(`store holds ${other.hostErrors} HostError, ${other.linuxVm} LinuxVmEvent and all ${other.certificates} certificates of the TLS Secrets`);
    const rejected = (await op.metric('dcp_events_pii_rejected_total', 'category="hostOs"')) ?? 0;
    const invalid = (await op.metric('dcp_events_invalid_total')) ?? 0;

    // The sinks have caught up with the store: all three cursors past what is stored, every raw event at
    // the regional receiver and in the file sink (the central one reads them too, and must forward none).
    await waitFor(
      async () => {
        const end = await rawEnd(op.dataDir);
        if (end === undefined) return false;
        for (const sink of ['regional', 'archive', 'central']) if (!(await cursorPast(op.dataDir, sink, end))) return false;
        const stored = await storeIds(op.dataDir);
        const filed = new Set(
          (await filesUnder(sinkDir))
            .flatMap((f) => f.text.split('\n'))
            .filter((l) => l.trim() !== '')
            .map((l) => (JSON.parse(l) as { id: string }).id),
        );
        const got = regional.ids();
        return [...stored].every((id) => got.has(id) && filed.has(id));
      },
      60_000,
      'the regional and file sinks to receive every stored event',
      500,
    );
    const stop = await op.stop('SIGTERM');
    expect(stop.code, 'dcp run exit code').to.equal(0);
    phase('sinks caught up; operator stopped');

    // THEN: no planted value anywhere the data went.
    const haystacks: Haystack[] = [
      ...(await filesUnder(op.dataDir)),
      ...(await filesUnder(sinkDir)),
      ...regional.requests.map((r, i) => ({ name: `regional receiver body ${i}`, text: r.body })),
      ...central.requests.map((r, i) => ({ name: `central receiver body ${i}`, text: r.body })),
      // The operator's own log (debug level): logs leave the cluster too, through whatever collects them.
      { name: 'dcp run log', text: op.logs.map((l) => JSON.stringify(l)).join('\n') },
    ];
    const allNeedles = cases.flatMap((p, i) => needles(p, secrets[i] as k8s.V1Secret));
    // The scanner itself finds every value of a case in that case's own objects, JSON-escaped, nested in an
    // OTLP body, and as a store record.
    const first = cases[0] as Planted;
    const firstSecret = secrets[0] as k8s.V1Secret;
    const objects = {
      node: nodeObject(c, first, cases),
      pod: podObject(c, first, namespace),
      events: eventObjects(c, first, namespace),
      secret: { ...firstSecret, data: Object.fromEntries(Object.entries(firstSecret.stringData ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) },
    };
    const otlp = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: JSON.stringify(objects) } }] }] }] });
    const firstNeedles = needles(first, firstSecret);
    for (const text of [otlp, encodeRecord(objects)]) {
      const selfFound = new Set(findLeaks([{ name: 'self-check', text }], firstNeedles).map((l) => l.needle));
      expect(firstNeedles.filter((n) => !selfFound.has(n)).map((n) => `${n.what}: ${JSON.stringify(n.value)}`), 'planted values the scanner missed').to.deep.equal([]);
      expect(findMarkers([{ name: 'self-check', text }], MARKER, new Set([first.marker])).length).to.equal(1);
    }
    const bytes = haystacks.reduce((n, h) => n + h.text.length, 0);
    const leaks = findLeaks(haystacks, allNeedles);
    const markers = findMarkers(haystacks, MARKER, new Set(cases.map((p) => p.marker)));
    phase(`scanned ${haystacks.length} files and bodies (${(bytes / 1024).toFixed(0)} KiB) for ${allNeedles.length} planted values`);
    expect(leaks.slice(0, 20).map((l) => `${l.needle.what} ${JSON.stringify(l.needle.value)} in ${l.where}`), 'planted values found').to.deep.equal([]);
    expect(markers.slice(0, 20), 'markers of planted values found').to.deep.equal([]);

    // AND the property is not vacuous: what was scanned holds the host OS facts of every clean Node.
    const poisonedDevices = new Set(poisoned.map((p) => deviceOf.get(p.nodeName)));
    expect([...hostOs].filter((d) => poisonedDevices.has(d)), 'HostOsInfo stored for a Node whose emitted fields carry PII').to.deep.equal([]);
    const sentHostOs = new Set(regional.events().filter((e) => e.name === 'HostOsInfo').map((e) => String(e.data.deviceId)));
    expect(clean.filter((p) => !sentHostOs.has(deviceOf.get(p.nodeName) ?? '')).map((p) => p.nodeName), 'clean Nodes missing at the regional sink').to.deep.equal([]);
    expect(poisoned.length).to.be.greaterThan(0);
    expect(rejected, 'dcp_events_pii_rejected_total{category="hostOs"}').to.be.at.least(poisoned.length);
    expect(invalid, 'dcp_events_invalid_total').to.equal(0);
    expect(regional.events().filter((e) => e.name === 'ControlPlaneInventory').length).to.be.greaterThan(0);
    expect(central.events().filter((e) => e.name !== 'DailyAggregate'), 'raw events at the central sink').to.deep.equal([]);
    phase(`done: ${clean.length} clean Nodes reported, ${rejected} host OS events rejected, ${haystacks.length} places scanned`);
  });
});
