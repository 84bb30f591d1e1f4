// AcceptanceEval: measures a draft's acceptance (tau per task, per position, speedup) on task sets,
// offline on its own pods or against a live SpecServe.
import { z } from "zod";
import {
  boundedRecord,
  conditions,
  draftMethod,
  gpuCount,
  jobBackend,
  modelSource,
  objectName,
  outputLocation,
  placement,
  podResources,
  publishedOutput,
  runtimeImage,
} from "./common.ts";
import { exactlyOne, immutable, withRules } from "./rules.ts";
import { BENCHMARK_TASK_NAMES, evalTasks, taskResult } from "./tasks.ts";

export const draftReference = withRules(
  z.object({
    source: modelSource.optional().describe("A draft checkpoint."),
    draftTrainingRef: z
      .object({ name: objectName("DraftTraining") })
      .optional()
      .describe("The draft a DraftTraining produced (its status.checkpoint)."),
    specServeRef: z
      .object({ name: objectName("SpecServe") })
      .optional()
      .describe("Measure a live SpecServe: its target, draft and method, through its endpoint."),
  }),
  [
    {
      rule: exactlyOne("source", "draftTrainingRef", "specServeRef"),
      message: "set exactly one of draft.source, draft.draftTrainingRef or draft.specServeRef",
    },
  ],
).describe("The draft to measure.");

export const acceptanceEvalSpec = withRules(
  z.object({
    target: modelSource
      .optional()
      .describe("The target model; taken from the SpecServe when draft.specServeRef is set."),
    draft: draftReference,
    method: draftMethod.optional(),
    backend: jobBackend,
    tasks: evalTasks(
      "Task sets to measure; defaults to DeepSpec's nine with their standard sample counts.",
    ).default(BENCHMARK_TASK_NAMES.map((name) => ({ name }))),
    decoding: z
      .object({
        temperature: z
          .number()
          .min(0)
          .max(2)
          .default(1)
          .describe("Sampling temperature (DeepSpec uses 1.0)."),
        maxNewTokens: z
          .int()
          .min(1)
          .max(131072)
          .default(2048)
          .describe("Maximum generated tokens per sample."),
        numSpeculativeTokens: z
          .int()
          .min(1)
          .max(32)
          .optional()
          .describe(
            "Draft tokens per verification round (k), as in SpecServe; defaults to the draft's block size.",
          ),
        seed: z.int().min(0).max(4294967295).default(980406).describe("Random seed."),
        thinking: z
          .boolean()
          .default(false)
          .describe("Let the target think (chat_template enable_thinking)."),
      })
      .prefault({})
      .describe("Decoding settings."),
    baseline: z
      .boolean()
      .default(false)
      .describe("Also decode without speculation to report speedup (roughly doubles the cost)."),
    gate: z
      .object({
        minTau: z.number().min(1).max(64).optional().describe("Minimum macro-average tau."),
        minTauPerTask: boundedRecord(
          z.number().min(1).max(64),
          64,
          "Minimum tau per task set, by task name.",
        ).optional(),
        minSpeedup: z
          .number()
          .gt(0)
          .max(100)
          .optional()
          .describe("Minimum macro-average speedup (needs baseline)."),
      })
      .optional()
      .describe("Pass/fail thresholds; the verdict goes to status.gate and the Passed condition."),
    load: z
      .object({
        concurrency: z
          .int()
          .min(1)
          .max(1024)
          .default(4)
          .describe("Requests in flight at once against the SpecServe's Service (recorded in status.live)."),
      })
      .prefault({})
      .describe("The load of a live evaluation (draft.specServeRef)."),
    resources: podResources
      .extend({ gpus: gpuCount("GPUs of the evaluation pod.", 1) })
      .prefault({})
      .describe("Evaluation compute (offline evaluation only)."),
    placement: placement.optional(),
    runtime: runtimeImage.optional(),
    output: outputLocation.optional().describe("Where the full result JSON is copied."),
  }),
  [
    immutable("target"),
    immutable("method"),
    {
      rule: "has(self.draft.specServeRef) || (has(self.target) && has(self.method))",
      message: "spec.target and spec.method are required unless draft.specServeRef is set",
      fieldPath: ".target",
      reason: "FieldValueRequired",
    },
    {
      rule: "!has(self.gate) || !has(self.gate.minSpeedup) || self.baseline",
      message: "gate.minSpeedup needs baseline: true",
      fieldPath: ".gate.minSpeedup",
    },
    {
      rule: "!has(self.gate) || !has(self.gate.minTauPerTask) || self.gate.minTauPerTask.all(t, self.tasks.exists(x, x.name == t))",
      message: "gate.minTauPerTask names a task that is not in spec.tasks",
      fieldPath: ".gate.minTauPerTask",
    },
    {
      rule: "has(self.draft.specServeRef) || self.backend != 'deepspec' || !self.baseline",
      message: "baseline needs backend reference: DeepSpec's evaluator does not decode without speculation",
      fieldPath: ".baseline",
    },
    {
      rule: "has(self.draft.specServeRef) || self.backend != 'deepspec' || !has(self.decoding.numSpeculativeTokens)",
      message:
        "decoding.numSpeculativeTokens needs backend reference: DeepSpec decodes with the draft's own block size",
      fieldPath: ".decoding.numSpeculativeTokens",
    },
    {
      rule: "self.backend == 'reference' || !has(self.target) || !self.target.uri.startsWith('builtin://')",
      message: "builtin:// models exist only for the reference backend",
      fieldPath: ".backend",
    },
  ],
).describe("Desired acceptance measurement.");
export type AcceptanceEvalSpec = z.infer<typeof acceptanceEvalSpec>;

export const acceptanceEvalStatus = z
  .object({
    observedGeneration: z.int().min(0).optional().describe("Generation last acted on."),
    conditions,
    phase: z
      .enum(["Pending", "Running", "Succeeded", "Failed"])
      .optional()
      .describe("Coarse state for printer columns; conditions carry the details."),
    job: z.string().optional().describe("The Job running the evaluation."),
    draft: z
      .object({
        name: z
          .string()
          .max(512)
          .describe("What was measured: the DraftTraining's name, or the draft's URI."),
        uri: z.string().max(512).describe("The draft checkpoint the evaluation reads."),
        step: z.int().min(0).optional().describe("Training step of a DraftTraining's checkpoint."),
      })
      .optional()
      .describe("The draft this generation measures; fixed once its Job starts."),
    live: z
      .object({
        specServe: z.string().max(253).describe("The SpecServe measured."),
        endpoint: z.string().max(1024).optional().describe("The OpenAI endpoint the load was sent to."),
        concurrency: z.int().min(1).describe("Requests in flight at once."),
        numSpeculativeTokens: z
          .int()
          .min(1)
          .optional()
          .describe("Draft length k the SpecServe serves with (its speculative.numSpeculativeTokens)."),
        convention: z
          .enum(["vllm", "deepspec"])
          .describe(
            "Convention of the live tau and acceptanceByPosition: vllm (from vLLM's counters: every round " +
              "in the denominator), the only one an engine's /metrics allows.",
          ),
        task: z.string().max(63).optional().describe("The task set being measured now."),
      })
      .optional()
      .describe("Live evaluation: what was measured and how."),
    resultUri: z
      .string()
      .max(1024)
      .optional()
      .describe("Where the full result JSON was written (spec.output), when set."),
    output: publishedOutput(
      "the result JSON",
      "The result JSON's copy in the object store named by spec.output (s3:// or gs://), once verified there.",
    ),
    results: z
      .array(taskResult)
      .max(64)
      .optional()
      .meta({
        description: "Per-task results.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
      }),
    summary: z
      .object({
        macroTau: z.number().min(0).describe("Mean of the per-task tau."),
        macroSpeedup: z.number().min(0).optional().describe("Mean of the per-task speedup."),
        samples: z.int().min(0).describe("Samples evaluated in all."),
      })
      .optional()
      .describe("Macro summary over tasks."),
    gate: z
      .object({
        verdict: z.enum(["Passed", "Failed", "NotEvaluated"]).describe("Gate verdict."),
        reasons: z.array(z.string()).max(64).optional().describe("Thresholds that were missed."),
      })
      .optional()
      .describe("Gate outcome."),
    startTime: z.string().optional().describe("When evaluation started (RFC 3339)."),
    completionTime: z.string().optional().describe("When evaluation ended (RFC 3339)."),
  })
  .describe("Observed state of the AcceptanceEval.");
export type AcceptanceEvalStatus = z.infer<typeof acceptanceEvalStatus>;
