// The DraftTraining pipeline as data: which stages run, where each writes on the shared storage,
// and what every child object is called. Pure functions of the resource; names are deterministic so a
// restarted operator finds (and never duplicates) what it created before.
import { PROGRESS_INTERVAL_DEFAULT } from "../../api/drafttraining.ts";
import type { DraftTraining } from "../../api/kinds.ts";
import { DEFAULT_PVC_ROOT } from "../../contract/constants.ts";
import { parseDuration } from "../../lib/time.ts";
import { childName, serviceName } from "../shared/names.ts";

export const MASTER_PORT = 29500;
export const REGEN_SERVER_PORT = 8000;

export type StageName = "PrepareData" | "Regenerate" | "TargetCache" | "Train" | "Evaluate";

export const STAGE_SLUG: Record<StageName, string> = {
  PrepareData: "data",
  Regenerate: "regen",
  TargetCache: "cache",
  Train: "train",
  Evaluate: "eval",
};

/** Stages in the order they run; regeneration and evaluation are optional. */
export function plannedStages(dt: DraftTraining): StageName[] {
  const stages: StageName[] = ["PrepareData"];
  if (dt.spec.data.regenerate.enabled) stages.push("Regenerate");
  stages.push("TargetCache", "Train");
  if (dt.spec.evaluation) stages.push("Evaluate");
  return stages;
}

export interface StorageLayout {
  /** Claim mounted into every pod. */
  claimName: string;
  /** Whether the operator creates (and owns) the claim. */
  created: boolean;
  /** Where the claim is mounted: the runtime resolves pvc://<claim>/x to <mountPath>/x. */
  mountPath: string;
  /** This DraftTraining's folder on the claim, as seen inside the pods. */
  root: string;
  /** Same folder as a pvc:// URI, for status and for the eval's draft source. */
  rootUri: string;
}

export function storageLayout(dt: DraftTraining): StorageLayout {
  const existing = dt.spec.storage.existingClaim;
  const claimName = existing?.name ?? childNames(dt).storageClaim;
  const mountPath = `${DEFAULT_PVC_ROOT}/${claimName}`;
  const relative = [
    existing?.subPath?.replace(/^\/+|\/+$/g, ""),
    "specops",
    "drafttrainings",
    dt.metadata.name,
  ]
    .filter(Boolean)
    .join("/");
  return {
    claimName,
    created: !existing,
    mountPath,
    root: `${mountPath}/${relative}`,
    rootUri: `pvc://${claimName}/${relative}`,
  };
}

/** Folder of each stage's output under the DraftTraining's root. */
export const stageDir = (layout: StorageLayout, stage: StageName) => `${layout.root}/${STAGE_SLUG[stage]}`;

export const childNames = (dt: DraftTraining) => {
  const base = dt.metadata.name ?? "";
  return {
    job: (stage: StageName) => childName(base, STAGE_SLUG[stage]),
    taskConfigMap: (stage: StageName) => childName(base, `${STAGE_SLUG[stage]}-task`),
    /** Headless Service giving multi-node training pods stable DNS names. */
    trainService: serviceName(base, "train"),
    /** The regeneration server's Deployment and Service (a Service name, so DNS-1035). */
    regenServer: serviceName(base, "regen-server"),
    regenServerTask: childName(serviceName(base, "regen-server"), "task"),
    storageClaim: childName(base, "storage"),
    acceptanceEval: childName(base, "eval"),
  };
};

/** How often progress is read; the schema's default when the field is absent (objects built in tests). */
export const progressIntervalMs = (dt: DraftTraining): number =>
  parseDuration(dt.spec.progressInterval ?? PROGRESS_INTERVAL_DEFAULT) ??
  (parseDuration(PROGRESS_INTERVAL_DEFAULT) as number);
