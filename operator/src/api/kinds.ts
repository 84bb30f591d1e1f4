// The three SpecOps kinds: their CRD-level facts (names, printer columns, subresources) beside
// their schemas, and whole-object schemas for run-time validation.
import { z } from "zod";
import { acceptanceEvalSpec, acceptanceEvalStatus } from "./acceptanceeval.ts";
import { API_VERSION } from "./common.ts";
import type { KindDefinition } from "./crd.ts";
import { draftTrainingSpec, draftTrainingStatus } from "./drafttraining.ts";
import { specServeSpec, specServeStatus } from "./specserve.ts";

const condition = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;

export const draftTrainingKind = {
  kind: "DraftTraining" as const,
  plural: "drafttrainings",
  singular: "drafttraining",
  shortNames: ["dt", "draft"],
  description:
    "DraftTraining trains a speculative-decoding draft for a frozen target model: data preparation, answer " +
    "regeneration, target hidden-state cache, single- or multi-node training and an optional evaluation gate.",
  spec: draftTrainingSpec,
  status: draftTrainingStatus,
  printerColumns: [
    { name: "Target", type: "string", jsonPath: ".spec.target.uri", priority: 1 },
    { name: "Method", type: "string", jsonPath: ".spec.method" },
    { name: "Nodes", type: "integer", jsonPath: ".spec.resources.nodes", priority: 1 },
    { name: "Stage", type: "string", jsonPath: ".status.stage" },
    {
      name: "Progress",
      type: "integer",
      jsonPath: ".status.progress.percent",
      description: "Percent of the stage",
    },
    { name: "Loss", type: "number", jsonPath: ".status.progress.loss", priority: 1 },
    { name: "Tau", type: "number", jsonPath: ".status.progress.tauEstimate" },
    { name: "Eval-Tau", type: "number", jsonPath: ".status.evaluation.macroTau", priority: 1 },
    { name: "Succeeded", type: "string", jsonPath: condition("Succeeded") },
  ],
} satisfies KindDefinition;

export const acceptanceEvalKind = {
  kind: "AcceptanceEval" as const,
  plural: "acceptanceevals",
  singular: "acceptanceeval",
  shortNames: ["ae", "aeval"],
  description:
    "AcceptanceEval measures a draft's acceptance (tau per task, acceptance by position, speedup) on benchmark " +
    "task sets, offline or against a live SpecServe, and can gate on thresholds.",
  spec: acceptanceEvalSpec,
  status: acceptanceEvalStatus,
  printerColumns: [
    { name: "Method", type: "string", jsonPath: ".spec.method" },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Tau", type: "number", jsonPath: ".status.summary.macroTau" },
    { name: "Speedup", type: "number", jsonPath: ".status.summary.macroSpeedup" },
    { name: "Gate", type: "string", jsonPath: ".status.gate.verdict" },
    { name: "Samples", type: "integer", jsonPath: ".status.summary.samples", priority: 1 },
  ],
} satisfies KindDefinition;

export const specServeKind = {
  kind: "SpecServe" as const,
  plural: "specserves",
  singular: "specserve",
  shortNames: ["ss", "sserve"],
  description:
    "SpecServe serves a target model with a speculative-decoding draft on vLLM or SGLang and autoscales on " +
    "measured acceptance and latency SLOs, with an acceptance-gated draft rollout and drift detection.",
  spec: specServeSpec,
  status: specServeStatus,
  printerColumns: [
    { name: "Engine", type: "string", jsonPath: ".spec.engine" },
    { name: "Method", type: "string", jsonPath: ".spec.method" },
    { name: "Desired", type: "integer", jsonPath: ".status.desiredReplicas", priority: 1 },
    { name: "Replicas", type: "integer", jsonPath: ".status.replicas" },
    { name: "Ready", type: "integer", jsonPath: ".status.readyReplicas" },
    { name: "Draft", type: "string", jsonPath: ".status.draft" },
    { name: "Tau", type: "number", jsonPath: ".status.signals.tau" },
    { name: "State", type: "string", jsonPath: ".status.state" },
    { name: "TTFT-P95", type: "number", jsonPath: ".status.signals.ttftP95", priority: 1 },
    { name: "Tok/s/User", type: "number", jsonPath: ".status.signals.tokensPerSecondPerUser", priority: 1 },
    { name: "SLO", type: "string", jsonPath: condition("SLOMet"), priority: 1 },
    { name: "Endpoint", type: "string", jsonPath: ".status.endpoint", priority: 1 },
  ],
  scale: {
    specReplicasPath: ".spec.replicas",
    statusReplicasPath: ".status.replicas",
    labelSelectorPath: ".status.selector",
  },
} satisfies KindDefinition;

export const KINDS = [draftTrainingKind, acceptanceEvalKind, specServeKind] as const;
export type KindName = (typeof KINDS)[number]["kind"];

const objectMeta = z
  .object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    generation: z.int().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .passthrough();

const resource = <K extends string, S extends z.ZodType, T extends z.ZodType>(kind: K, spec: S, status: T) =>
  z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(kind),
    metadata: objectMeta,
    spec,
    status: status.optional(),
  });

export const draftTrainingResource = resource("DraftTraining", draftTrainingSpec, draftTrainingStatus);
export const acceptanceEvalResource = resource("AcceptanceEval", acceptanceEvalSpec, acceptanceEvalStatus);
export const specServeResource = resource("SpecServe", specServeSpec, specServeStatus);
export type DraftTraining = z.infer<typeof draftTrainingResource>;
export type AcceptanceEval = z.infer<typeof acceptanceEvalResource>;
export type SpecServe = z.infer<typeof specServeResource>;
