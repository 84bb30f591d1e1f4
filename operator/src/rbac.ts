// The operator's permissions, merged from what each controller declares beside its code and what
// the controller library itself needs (leader election, events). The chart's ClusterRole is generated
// from this list, so a new API call without a rule fails in the integration tests, not in production.
import { RBAC_RULES as ACCEPTANCE_EVAL_RULES } from "./controllers/acceptanceeval/rbac.ts";
import { RBAC_RULES as AUTOSCALER_RULES, PROMETHEUS_AUTH_RBAC_RULES } from "./controllers/autoscaler/rbac.ts";
import { RBAC_RULES as DRAFT_TRAINING_RULES } from "./controllers/drafttraining/rbac.ts";
import { RBAC_RULES as SPEC_SERVE_RULES } from "./controllers/specserve/rbac.ts";

export interface PolicyRule {
  apiGroups: readonly string[];
  resources: readonly string[];
  verbs: readonly string[];
}

const LIBRARY_RULES: PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
];

/** Rules merged per (apiGroup, resource), verbs sorted, so the output is stable. */
export function mergeRules(rules: readonly PolicyRule[]): PolicyRule[] {
  const verbs = new Map<string, Set<string>>();
  for (const r of rules) {
    for (const group of r.apiGroups) {
      for (const resource of r.resources) {
        const key = `${group}\u0000${resource}`;
        const set = verbs.get(key) ?? new Set<string>();
        for (const v of r.verbs) set.add(v);
        verbs.set(key, set);
      }
    }
  }
  return [...verbs.entries()]
    .map(([key, set]) => {
      const [group = "", resource = ""] = key.split("\u0000");
      return { apiGroups: [group], resources: [resource], verbs: [...set].sort() };
    })
    .sort((a, b) =>
      `${a.apiGroups[0]}/${a.resources[0]}`.localeCompare(`${b.apiGroups[0]}/${b.resources[0]}`),
    );
}

export const OPERATOR_RBAC_RULES = mergeRules([
  ...DRAFT_TRAINING_RULES,
  ...SPEC_SERVE_RULES,
  ...ACCEPTANCE_EVAL_RULES,
  ...AUTOSCALER_RULES,
  ...LIBRARY_RULES,
]);

/** Rules the chart grants only when a value turns them on (rendered under `{{- if .Values.<value> }}`). */
export const OPTIONAL_RBAC_RULES: readonly { value: string; rules: PolicyRule[] }[] = [
  { value: "autoscaler.prometheusAuthSecrets", rules: mergeRules(PROMETHEUS_AUTH_RBAC_RULES) },
];
