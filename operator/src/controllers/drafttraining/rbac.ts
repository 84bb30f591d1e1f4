// Exactly what the DraftTraining controller does with each kind; the chart's ClusterRole is
// generated from it (operator/src/rbac.ts). No Secret access at all: a missing credential Secret is
// learnt from the pods' own status, where the kubelet reports it (CreateContainerConfigError).
export const RBAC_RULES = [
  {
    apiGroups: ["specops.dev"],
    resources: ["drafttrainings"],
    verbs: ["get", "list", "watch", "patch", "update"],
  },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings/status"], verbs: ["get", "patch", "update"] },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings/finalizers"], verbs: ["update"] },
  {
    apiGroups: ["specops.dev"],
    resources: ["acceptanceevals"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  {
    apiGroups: ["apps"],
    resources: ["deployments"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  // Watched (label-selected) so that a deleted or edited child is noticed and re-applied.
  {
    apiGroups: [""],
    resources: ["configmaps", "services", "persistentvolumeclaims"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
] as const;
