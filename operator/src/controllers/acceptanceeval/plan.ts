// The AcceptanceEval as data: what its children are called, which claims its pod mounts, where its
// result goes, which draft it measures, and the labels that make evaluations comparable. Pure
// functions of the resource (and of the referenced DraftTraining's status for the draft).
import { createHash } from "node:crypto";
import type { AcceptanceEval, DraftTraining } from "../../api/kinds.ts";
import { DEFAULT_PVC_ROOT } from "../../contract/constants.ts";
import { childName } from "../shared/names.ts";
import { SCRATCH_PATH } from "../shared/pod.ts";

/** Each generation runs in its own Job: re-running an evaluation means a new generation (or object). */
export const childNames = (ae: AcceptanceEval) => {
  const job = childName(ae.metadata.name ?? "", `g${ae.metadata.generation ?? 1}`);
  return { job, taskConfigMap: childName(job, "task") };
};

/** The labels a leaderboard selects on: evaluations with equal values measured the same thing. */
export const LEADERBOARD_LABELS = {
  target: "specops.dev/target",
  method: "specops.dev/method",
  taskSet: "specops.dev/task-set",
} as const;

const hash = (value: unknown, length: number) =>
  createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, length);

/** A label value for a model: its readable last path segment plus a hash of the exact source. */
export function modelLabel(source: { uri: string; revision?: string } | undefined): string | undefined {
  if (!source) return undefined;
  const tail = source.uri.replace(/\/+$/, "").split("/").at(-1) ?? "";
  const readable = tail
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "")
    .slice(0, 40);
  const h = hash([source.uri, source.revision ?? ""], 8);
  return readable ? `${readable}-${h}` : h;
}

/**
 * Fingerprint of what makes two evaluations' figures comparable: the task sets (names, sample counts,
 * sources) and the decoding settings. The draft and its method are what a leaderboard ranks, so they
 * are not part of it.
 */
export function taskSetFingerprint(ae: AcceptanceEval): string {
  const tasks = [...ae.spec.tasks]
    .map((t) => [t.name, t.samples ?? null, t.source?.uri ?? null, t.source?.revision ?? null])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  const d = ae.spec.decoding;
  return hash(
    {
      tasks,
      decoding: [d.temperature, d.maxNewTokens, d.numSpeculativeTokens ?? null, d.seed, d.thinking],
    },
    12,
  );
}

export function leaderboardLabels(ae: AcceptanceEval): Record<string, string> {
  const labels: Record<string, string> = { [LEADERBOARD_LABELS.taskSet]: taskSetFingerprint(ae) };
  const target = modelLabel(ae.spec.target);
  if (target) labels[LEADERBOARD_LABELS.target] = target;
  if (ae.spec.method) labels[LEADERBOARD_LABELS.method] = ae.spec.method;
  return labels;
}

const PVC_URI = /^pvc:\/\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\/(.*))?$/;

export function claimOf(uri: string | undefined): string | undefined {
  return uri ? PVC_URI.exec(uri)?.[1] : undefined;
}

/** Where a pvc:// URI is inside the pod. */
export function podPath(uri: string): string | undefined {
  const m = PVC_URI.exec(uri);
  if (!m) return undefined;
  const rest = (m[4] ?? "").replace(/^\/+|\/+$/g, "");
  return `${DEFAULT_PVC_ROOT}/${m[1]}${rest ? `/${rest}` : ""}`;
}

/** Every claim the evaluation pod reads from or writes to. */
export function claims(ae: AcceptanceEval, draftUri: string | undefined): string[] {
  const uris = [
    ae.spec.target?.uri,
    draftUri,
    ae.spec.output?.uri,
    ...ae.spec.tasks.map((t) => t.source?.uri),
  ];
  return [...new Set(uris.map(claimOf).filter((c): c is string => c !== undefined))].sort();
}

export interface OutputLayout {
  /** The task's output.path inside the pod: result.json lands here. */
  path: string;
  /** spec.output.uri, recorded in the result and in status. */
  uri?: string;
  /** True when result.json lands on spec.output directly (pvc://). */
  onOutput: boolean;
}

/**
 * pvc:// outputs are written in place. Without an output (or for s3:// and gs://, which a copy step
 * uploads from the scratch folder) the pod writes to its scratch emptyDir.
 */
export function outputLayout(ae: AcceptanceEval): OutputLayout {
  const uri = ae.spec.output?.uri;
  const onClaim = uri ? podPath(uri) : undefined;
  if (onClaim) return { path: onClaim, uri, onOutput: true };
  return { path: `${SCRATCH_PATH}/eval`, uri, onOutput: false };
}

export interface ResolvedDraft {
  /** For status and the Draft column: the DraftTraining's name, or the URI. */
  name: string;
  uri: string;
  step?: number;
}

export type DraftResolution =
  | { state: "ready"; draft: ResolvedDraft }
  | { state: "waiting"; reason: string; message: string }
  | { state: "failed"; reason: string; message: string }
  | { state: "unsupported"; reason: string; message: string };

/**
 * The draft to measure. A referenced DraftTraining's checkpoint is used once the training succeeded
 * (its own evaluation gate included); while it runs the evaluation waits, and a failed training or
 * one without a checkpoint fails the evaluation.
 */
export function resolveDraft(ae: AcceptanceEval, dt: DraftTraining | undefined): DraftResolution {
  const { draft } = ae.spec;
  if (draft.source) return { state: "ready", draft: { name: draft.source.uri, uri: draft.source.uri } };
  if (draft.specServeRef) {
    return {
      state: "unsupported",
      reason: "LiveEvaluation",
      message: `draft.specServeRef: SpecServe ${draft.specServeRef.name} is measured live (live.ts), not by an offline Job`,
    };
  }
  const name = draft.draftTrainingRef?.name ?? "";
  if (!dt) {
    return {
      state: "waiting",
      reason: "DraftTrainingNotFound",
      message: `waiting for DraftTraining ${name}: it does not exist in namespace ${ae.metadata.namespace}`,
    };
  }
  const status = dt.status ?? {};
  if (status.stage === "Failed") {
    const why = status.conditions?.find((c) => c.type === "Succeeded")?.message;
    return {
      state: "failed",
      reason: "DraftTrainingFailed",
      message: `DraftTraining ${name} failed${why ? `: ${why}` : ""}; it produced no draft to measure`,
    };
  }
  if (status.stage === "Succeeded") {
    if (!status.checkpoint?.uri) {
      return {
        state: "failed",
        reason: "NoCheckpoint",
        message: `DraftTraining ${name} succeeded but reports no checkpoint in status.checkpoint`,
      };
    }
    const step = status.checkpoint.step;
    return {
      state: "ready",
      draft: { name, uri: status.checkpoint.uri, ...(step !== undefined ? { step } : {}) },
    };
  }
  return {
    state: "waiting",
    reason: "DraftTrainingRunning",
    message: `waiting for DraftTraining ${name} to finish (stage ${status.stage ?? "Pending"})`,
  };
}
