// The two export profiles (Azure's diagnostic categories) and the audit Policy the API server needs for each.

export const AUDIT_PROFILES = ['kube-audit', 'kube-audit-admin'] as const;
export type AuditProfile = (typeof AUDIT_PROFILES)[number];

/** Verbs kube-audit-admin leaves out: reads. */
export const READ_VERBS: readonly string[] = ['get', 'list', 'watch'];

/** Whether an event with this verb belongs in the profile's export. */
export function profileKeeps(profile: AuditProfile, verb: string): boolean {
  return profile === 'kube-audit' || !READ_VERBS.includes(verb);
}

/** The Azure Storage container diagnostic settings use for the profile. */
export const blobContainerFor = (profile: AuditProfile): string => `insights-logs-${profile}`;

/**
 * The audit.k8s.io/v1 Policy for the profile. Only ResponseComplete (and Panic) stages are sent, so one
 * request is one event and its auditID identifies it; reads are left out at the source for kube-audit-admin
 * (the exporter filters again, for API servers wired with another policy). Metadata level: request and
 * response bodies (Secret values among them) never leave the API server.
 */
export function auditPolicy(profile: AuditProfile): Record<string, unknown> {
  const rules: Record<string, unknown>[] = [];
  if (profile === 'kube-audit-admin') rules.push({ level: 'None', verbs: [...READ_VERBS] });
  rules.push({ level: 'Metadata' });
  return { apiVersion: 'audit.k8s.io/v1', kind: 'Policy', omitStages: ['RequestReceived', 'ResponseStarted'], rules };
}
