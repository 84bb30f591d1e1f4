// Exactly what the autoscaler controller does with each kind (merged into the chart's ClusterRole by
// operator/src/rbac.ts): it reads SpecServes and their pods, reads the SPS table's ConfigMap, writes
// spec.replicas only through /scale and its own status fields, and records Events.
export const RBAC_RULES = [
  { apiGroups: ["specops.dev"], resources: ["specserves"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["specops.dev"], resources: ["specserves/status"], verbs: ["patch"] },
  { apiGroups: ["specops.dev"], resources: ["specserves/scale"], verbs: ["patch"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  // spec.autoscaling.spsTable: a user's ConfigMap, read by name (not cached: it carries no operator label).
  { apiGroups: [""], resources: ["configmaps"], verbs: ["get"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
] as const;

/**
 * Only where the chart's autoscaler.prometheusAuthSecrets is true (off by default: a GET on Secrets
 * returns every credential's data): reading the Secret that spec.autoscaling.signals.prometheus
 * names for its bearer token or basic auth, by name, when the decision runs.
 */
export const PROMETHEUS_AUTH_RBAC_RULES = [
  { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
] as const;
