// Exactly what the SpecServe controller does with each kind; the chart's ClusterRole is generated
// from it (operator/src/rbac.ts). No Secret access: a missing credential or API-key Secret is learnt
// from the pods' own status, where the kubelet reports it (CreateContainerConfigError).
export const RBAC_RULES = [
  { apiGroups: ["specops.dev"], resources: ["specserves"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["specops.dev"], resources: ["specserves/status"], verbs: ["get", "patch", "update"] },
  { apiGroups: ["specops.dev"], resources: ["drafttrainings"], verbs: ["get", "list", "watch"] },
  {
    apiGroups: ["apps"],
    resources: ["deployments"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  // Watched (label-selected, shared with the DraftTraining controller) so a deleted child is re-applied.
  { apiGroups: [""], resources: ["services"], verbs: ["get", "list", "watch", "create", "patch"] },
  // The rollout baseline ConfigMap (baseline.ts) is deleted when the canary's analysis ends.
  {
    apiGroups: [""],
    resources: ["configmaps"],
    verbs: ["get", "list", "watch", "create", "patch", "delete"],
  },
  {
    apiGroups: ["policy"],
    resources: ["poddisruptionbudgets"],
    verbs: ["get", "list", "watch", "create", "patch"],
  },
  {
    apiGroups: ["leaderworkerset.x-k8s.io"],
    resources: ["leaderworkersets"],
    verbs: ["get", "create", "patch", "delete"],
  },
  // Whether the LeaderWorkerSet CRD is installed (multi-node replicas need it).
  { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
] as const;
