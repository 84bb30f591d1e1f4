// Reads what an AcceptanceEval's draft and children say, from the informer caches only (no API
// calls): the referenced DraftTraining, this generation's Job with its pods, earlier generations' Jobs.
import type { AcceptanceEval, DraftTraining } from "../../api/kinds.ts";
import { observeJob } from "../drafttraining/observe.ts";
import { labelValue } from "../shared/names.ts";
import type { AcceptanceEvalDeps } from "./controller.ts";
import type { Observed } from "./decide.ts";
import { LABELS } from "./desired.ts";
import { childNames, outputLayout, resolveDraft } from "./plan.ts";

type Caches = Pick<AcceptanceEvalDeps, "drafts" | "jobs" | "pods">;

export function readObserved(deps: Caches, ae: AcceptanceEval): Observed {
  const uid = ae.metadata.uid;
  const jobs = (uid ? deps.jobs.store.byOwner(uid) : []).filter(
    (j) => j.metadata?.labels?.[LABELS.owner] === labelValue(ae.metadata.name ?? ""),
  );
  const name = childNames(ae).job;
  const current = jobs.find((j) => j.metadata?.name === name && !j.metadata?.deletionTimestamp);
  const podsOf = (jobUid: string | undefined) => (jobUid ? deps.pods.store.byOwner(jobUid) : []);
  return {
    draft: resolveDraft(ae, referencedDraftTraining(deps, ae)),
    job: current ? observeJob(current, podsOf(current.metadata?.uid)) : undefined,
    staleJobs: jobs
      .filter((j) => j.metadata?.name !== name && !j.metadata?.deletionTimestamp)
      .map((j) => j.metadata?.name ?? ""),
    output: outputLayout(ae),
  };
}

function referencedDraftTraining(deps: Caches, ae: AcceptanceEval): DraftTraining | undefined {
  const ref = ae.spec.draft.draftTrainingRef;
  if (!ref) return undefined;
  return deps.drafts.store.get(ae.metadata.namespace, ref.name) as DraftTraining | undefined;
}
