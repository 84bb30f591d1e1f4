// Exactly what the AcceptanceEval controller does with each kind; the chart's ClusterRole is
// generated from it (operator/src/rbac.ts). No Secret access: a missing credential Secret is learnt
// from the pod's own status, where the kubelet reports it (CreateContainerConfigError).
export const RBAC_RULES = [
  {
    apiGroups: ["specops.dev"],
    resources: ["acceptanceevals"],
    verbs: ["get", "list", "watch", "patch"],
  },
  { apiGroups: ["specops.dev"], resources: ["acceptanceevals/status"], verbs: ["get", "patch"] },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings"], verbs: ["get", "list", "watch"] },
  // Live evaluation: the SpecServe measured (its Ready condition, endpoint, draft length).
  { apiGroups: ["specops.dev"], resources: ["specserves"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["batch"], resources: ["jobs"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  // Watched (label-selected) so that a deleted or edited task ConfigMap is noticed and re-applied.
  { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "create", "patch"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
] as const;
