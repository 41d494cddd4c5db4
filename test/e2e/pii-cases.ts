// The generated cases of the PII property: a Node, a Pod, two Warning Events and a Secret per case, every free-text
// field carrying planted personal or secret values marked with the case's marker. pipeline-pii.test.ts and the abuse
// fault scenario (test/faults/abuse.test.ts) build their objects and their leak-scan needles from here.
import { createHash, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import type * as k8s from '@kubernetes/client-node';
import { ed25519Key, selfSignedCertificate } from '../../hack/certs.js';
import { RUN_LABEL, type TestCluster } from './harness.js';
import { REGION, type Needle } from './pipeline-helpers.js';

/** Every planted value carries one: `zq` + the case number (base 36) + random letters and digits. */
export const MARKER = /zq[a-z0-9]{8}/;

/** `count` cases from `seed`: the same seed gives the same cases. */
export const piiCases = (count: number, seed: number): Planted[] => fc.sample(rawCase, { numRuns: count, seed }).map(finish);
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
export const rawCase = fc.record({
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
export type RawCase = typeof rawCase extends fc.Arbitrary<infer T> ? T : never;

/** The planted strings of one case. */
export interface Planted {
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

export function finish(r: RawCase, index: number): Planted {
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
export function emitted(p: Planted, field: EmittedField, all: readonly Planted[]): string {
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

export function nodeObject(c: TestCluster, p: Planted, all: readonly Planted[]): k8s.V1Node {
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

export function podObject(c: TestCluster, p: Planted, namespace: string): k8s.V1Pod {
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
export function eventObjects(c: TestCluster, p: Planted, namespace: string): k8s.CoreV1Event[] {
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
export function secretObject(c: TestCluster, p: Planted, namespace: string): k8s.V1Secret {
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
export function needles(p: Planted, secret: k8s.V1Secret): Needle[] {
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
