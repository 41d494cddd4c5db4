// Names and labels of the audit-export extension's objects, shared by the controller and the exporter.

export const EXPORTER_NAME = 'dcp-audit-exporter';
/** Audit Policy and exporter configuration. */
export const CONFIG_CONFIGMAP = 'dcp-audit-exporter-config';
/** Serving certificate, CA, the token the API server presents, and the webhook kubeconfig holding it. */
export const TLS_SECRET = 'dcp-audit-exporter-tls';
/** Written by the exporter, read by the controller. */
export const STATUS_CONFIGMAP = 'dcp-audit-exporter-status';
export const STATUS_KEY = 'status.json';

export const POLICY_FILE = 'audit-policy.yaml';
export const EXPORTER_CONFIG_FILE = 'exporter.json';
export const WEBHOOK_KUBECONFIG_FILE = 'webhook-kubeconfig.yaml';
export const TOKEN_KEY = 'token';

export const WEBHOOK_PORT = 9443;
export const SERVICE_PORT = 443;

export const EXTENSION_LABEL = 'datacollection.arc.io/extension';
/** Every object of the extension carries these, so it is found and removed as one. */
export const EXTENSION_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': EXPORTER_NAME,
  'app.kubernetes.io/part-of': 'dcp-operator',
  'app.kubernetes.io/managed-by': 'dcp-operator',
  [EXTENSION_LABEL]: 'audit-export',
};
export const EXTENSION_SELECTOR = `${EXTENSION_LABEL}=audit-export`;
