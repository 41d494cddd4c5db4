// Audit events for the exporter's unit tests.

export const T0 = Date.parse('2026-12-02T10:15:00Z');

/** An audit.k8s.io/v1 Event as the API server writes it (level Metadata, one stage). */
export function auditEvent(id: string, verb = 'create', time = T0): Record<string, unknown> {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: id,
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/configmaps',
    verb,
    user: { username: 'alice' },
    objectRef: { resource: 'configmaps', namespace: 'default', name: 'x', apiVersion: 'v1' },
    responseStatus: { code: 201 },
    requestReceivedTimestamp: new Date(time).toISOString(),
    stageTimestamp: new Date(time).toISOString(),
  };
}

