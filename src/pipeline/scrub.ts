// Free text by allow-list: what an Event's note or reason may keep before it becomes event data.
//
// Patterns find e-mail and IP addresses, tokens and keys, and the deny set finds Node names, but a
// user name, a hostname nobody registered or a label's free text has no pattern. So a message keeps
// only words of a fixed vocabulary (how components phrase errors) and small plain numbers; every
// other word becomes one placeholder. "Kernel oops on aks-pool1-vmss0001 (10.0.0.4) for alice"
// becomes "Kernel oops on <redacted> (<redacted>) for <redacted>".

import { detectPii } from './guard.js';

export const REDACTED = '<redacted>';

/** The words a kept message is made of: English glue and the vocabulary of node and kernel errors. */
const VOCABULARY = new Set(
  `a about above access account active address after again agent all allocate allocated allocation already an and any api apiserver
  are as at attach attempt attempts authentication authorization auth available back backoff bad be because been before being
  block blocked boot booted both bug but by cache call can cannot cause caused certificate certificates cgroup cgroups change changed
  check checks cleanup client closed cluster code completed condition config configuration conflict connect connection container
  containerd containers context could cpu cpus crash crashed create created creating cri daemon dead deadline deadlock default
  delete deleted denied detected device devices did disk disks dns do docker does down driver due during eacces einval eio
  enospc error errors event events evicted eviction exceeded exec exit exited expired expiry ext4 fail failed failing failure
  fault file filesystem filesystems for found frequent from full gc get gpu grpc handle handler has have health healthy host
  hung i id image nic ip home done bearer basic redacted email uuid mac token secret host images in inode inodes interface internal interrupted invalid io is it its job kernel key kill killed killing
  kubelet kube kube-proxy kubeproxy last leak level limit limits link lock login lost low memory message minutes missing monitor
  mount mounted mounting network no node nodes not now ns of off on only oom oops operation or out over page panic path pid pids plugin
  pod pods possible pressure probe problem process processes proxy pull pulling rate read ready readonly read-only reason
  reboot rebooted receive received refused report reported reporting reports register registered reload reloaded request required reset resource resources restart
  restarted restarting restarts retry rpc runtime running sandbox schedule scheduled seconds service services session shutdown
  signal since size socket space ssh start started starting state status stop stopped storage succeeded sudo swap sync syscall
  system systemd task tasks than that the this threshold time timed timeout times to too unable unauthorized unavailable
  unexpected unhealthy unknown unmount unreachable up update updated usage use used user volume volumes wait waiting warning
  was watchdog were when while will with without write zone
  nil null pointer dereference mapped took version lts ubuntu debian linux windows azure mariner server datacenter amd64 arm64
  java lang go golang main python traceback exception illegal value undefined type index range bounds slice array map
  stack trace thread goroutine line most recent call last segmentation violation sigsegv sigkill sigterm sigbus abort
  aborted core dumped not-ready notready schedulable unschedulable sufficient insufficient has oci shim cni calico cilium
  azure-cni iptables nftables conntrack kernel-monitor systemd-monitor node-problem-detector kube-apiserver etcd coredns
  metrics ingress webhook admission free capacity allocatable enforced enforcement sand box met err loop setup route
  aufs umount ext corrupt overlay overlay2 hairpin mode pleg relist cidr cidrs assign assigned shortage graceful kernel-monitor`
    .split(/\s+/)
    .filter((w) => w !== ''),
);

// A word: letters, digits and the characters that glue identifiers together (host-1.example, a/b, x@y, C:\u).
const WORD = /[\p{L}\p{N}_.:/@\\+=~-]+/gu;
const GLUE = /[_.:/@\\+=~-]+/;
const PLAIN_NUMBER = /^\d{1,6}$/;
// Replacements with only punctuation between them merge into one; brackets and quotes stay, so they still pair.
const MERGE = new RegExp(`${REDACTED}(?:[^\\p{L}\\p{N}\\n()[\\]{}"']*${REDACTED})+`, 'gu');
// Between words only white space and ASCII punctuation survive (no symbols, no stray marks).
const NOT_PUNCTUATION = /[^\s!-/:-@[-`{-~]/gu;

// Versions (1.7.27, v1.34.4, 6.6.64.2-9.azl3), clock times (12:30:45.123) and durations (5m0s, 250ms)
// identify nobody; a four-part "version" that reads as an IPv4 address still fails the pattern check.
const VERSION = /^v?\d{1,5}(?:\.\d{1,5}){1,3}(?:[-+~.](?:\d+[0-9a-z]*|[a-z]{1,4}\d+))*$/;
const CLOCK_TIME = /^\d{1,2}(?::\d{2}){1,2}(?:\.\d{1,9})?$/;
const DURATION = /^(?:\d{1,6}(?:\.\d{1,6})?(?:ns|us|µs|ms|s|m|h|d))+$/;

function isVocabulary(part: string): boolean {
  if (VOCABULARY.has(part.toLowerCase())) return true;
  // CamelCase made of vocabulary words: NodeNotReady, IllegalStateException.
  const pieces = /^[A-Za-z]+$/.test(part) ? (part.match(/[A-Z]+(?![a-z])|[A-Z][a-z]+|[a-z]+/g) ?? []) : [];
  return pieces.length > 1 && pieces.every((p) => VOCABULARY.has(p.toLowerCase()));
}

function keepPart(part: string): boolean {
  return isVocabulary(part) || PLAIN_NUMBER.test(part);
}

/**
 * A word is kept when it is a vocabulary word or a small number, or glued from vocabulary words
 * only (`read-only`, `kube-proxy`, `kernel:`); a number glued to anything (an address, a version,
 * a VM index, `::1`) is not kept.
 */
function keepWord(word: string): boolean {
  if (VOCABULARY.has(word.toLowerCase())) return true;
  const parts = word.split(GLUE).filter((p) => p !== '');
  if (parts.length === 1 && parts[0] === word && keepPart(word)) return true;
  // Hex-letter words glue into addresses (`dead::beef`, `a::`): the patterns have the last word.
  if (detectPii(word).length > 0) return false;
  const bare = word.replace(/[.:,]+$/, '');
  if (VERSION.test(bare) || CLOCK_TIME.test(bare) || DURATION.test(bare)) return true;
  return parts.every(isVocabulary);
}

/** `text` with every word outside the vocabulary replaced by one placeholder per run. */
export function scrubText(text: string): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(WORD)) {
    out += text.slice(last, m.index).replace(NOT_PUNCTUATION, '') + (keepWord(m[0]) ? m[0] : REDACTED);
    last = m.index + m[0].length;
  }
  out += text.slice(last).replace(NOT_PUNCTUATION, '');
  return out.replace(MERGE, REDACTED);
}

/**
 * A Kubernetes reason is UpperCamelCase by convention (`KernelOops`, `NodeNotReady`); one whose
 * every part is a vocabulary word is kept, anything else (`OOMKilling-alice`) becomes `Other`.
 */
export function scrubReason(reason: string): string {
  const r = reason.trim();
  if (r === '') return 'unknown';
  if (!/^[A-Z][A-Za-z0-9]{0,127}$/.test(r)) return 'Other';
  const parts = r.match(/[A-Z]+(?![a-z])|[A-Z][a-z]+|[a-z]+|\d+/g) ?? [];
  return parts.every((p) => VOCABULARY.has(p.toLowerCase()) || /^\d{1,3}$/.test(p)) ? r : 'Other';
}

/** A component name (`kubelet`, `kernel-monitor`) kept only if made of vocabulary words. */
export function scrubComponent(component: string): string {
  const c = component.trim();
  if (c === '') return 'unknown';
  return c.length <= 128 && c.split(GLUE).every((p) => p !== '' && VOCABULARY.has(p.toLowerCase())) ? c : 'other';
}
