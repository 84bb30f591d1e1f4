// DraftTraining: one resource runs DeepSpec's whole pipeline (data, regeneration, target cache,
// training, optional evaluation gate) as pods, and reports progress in status.
import { z } from "zod";
import {
  acceptanceByPosition,
  boundedRecord,
  conditions,
  datasetSource,
  draftMethod,
  gpuCount,
  jobBackend,
  modelSource,
  outputLocation,
  placement,
  podResources,
  positiveDuration,
  publishedOutput,
  runtimeImage,
  servingEngine,
  storage,
} from "./common.ts";
import { atMostOne, immutable, withRules } from "./rules.ts";
import { evalTasks } from "./tasks.ts";

/** DeepSpec config keys SpecOps sets from first-class fields; overrides may not touch them. */
export const MANAGED_DEEPSPEC_KEYS = [
  "model.block_size",
  "model.num_draft_layers",
  "model.draft_num_hidden_layers",
  "model.target_layer_ids",
  "model.target_model_name_or_path",
  "model.markov_rank",
  "model.confidence_head_alpha",
  "model.ttt_length",
  "model.step_loss_decay",
  "project_name",
  "exp_name",
  "train.lr",
  "train.warmup_ratio",
  "train.precision",
  "train.local_batch_size",
  "train.global_batch_size",
  "train.num_train_epochs",
  "train.max_train_steps",
  "logging.checkpointing_steps",
  "data.target_cache_path",
  "data.max_length",
  "seed",
] as const;

export const PROGRESS_INTERVAL_DEFAULT = "10s";

export const draftShape = withRules(
  z.object({
    blockSize: z
      .int()
      .min(1)
      .max(32)
      .default(7)
      .describe("Draft tokens per verification round (gamma; Eagle3's ttt length)."),
    numLayers: z
      .int()
      .min(1)
      .max(16)
      .optional()
      .describe("Draft decoder layers; default 5 (dspark, dflash) or 1 (eagle3)."),
    targetLayerIds: z
      .array(z.int().min(0).max(512))
      .min(1)
      .max(16)
      .optional()
      .describe(
        "Target layers whose hidden states feed the draft; default DeepSpec's choice for the target.",
      ),
    dspark: z
      .object({
        markovRank: z
          .int()
          .min(0)
          .max(1024)
          .default(64)
          .describe("Rank of the sequential Markov head; 0 disables it."),
        confidenceHead: z
          .boolean()
          .default(true)
          .describe("Train the confidence head that predicts per-position survival (adaptive verification)."),
      })
      .optional()
      .describe("DSpark-only knobs."),
    eagle3: z
      .object({
        stepLossDecay: z
          .number()
          .gt(0)
          .max(1)
          .default(0.8)
          .describe("Weight decay of later test-time-training steps in the loss."),
      })
      .optional()
      .describe("Eagle3-only knobs."),
    configOverrides: boundedRecord(
      z.string().max(1024),
      64,
      "Extra DeepSpec config overrides (--opts key=value, values parsed as YAML). Keys that SpecOps sets " +
        "from first-class fields are refused.",
    ).optional(),
  }),
  [
    {
      rule: `!has(self.configOverrides) || self.configOverrides.all(k, !(k in [${MANAGED_DEEPSPEC_KEYS.map((k) => `'${k}'`).join(", ")}]))`,
      message: "draft.configOverrides may not set a key SpecOps manages; use the first-class field instead",
      fieldPath: ".configOverrides",
    },
    {
      rule: "!has(self.configOverrides) || self.configOverrides.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*([.][A-Za-z_][A-Za-z0-9_]*)*$'))",
      message: "draft.configOverrides keys are dotted DeepSpec config paths such as train.torch_compile",
      fieldPath: ".configOverrides",
    },
    {
      rule: atMostOne("dspark", "eagle3"),
      message: "set at most one of draft.dspark or draft.eagle3",
    },
  ],
).describe("Shape of the draft model.");

export const regeneration = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        "Regenerate the assistant answers with the target so the draft learns the target's own outputs.",
      ),
    engine: servingEngine.default("sglang"),
    replicas: z.int().min(1).max(64).default(1).describe("Target servers answering in parallel."),
    gpusPerReplica: z
      .int()
      .min(0)
      .max(64)
      .default(1)
      .describe("GPUs of each target server (tensor parallel)."),
    concurrency: z.int().min(1).max(4096).default(32).describe("Requests in flight per server."),
    temperature: z.number().min(0).max(2).default(0.7).describe("Sampling temperature."),
    topP: z.number().gt(0).max(1).default(0.8).describe("Nucleus sampling threshold."),
    topK: z.int().min(-1).max(1000).default(20).describe("Top-k sampling; -1 disables it."),
    minP: z.number().min(0).max(1).default(0).describe("Min-p sampling threshold."),
    maxTokens: z.int().min(1).max(131072).default(4096).describe("Maximum tokens per regenerated answer."),
    thinking: z.boolean().default(false).describe("Let the target think (chat_template enable_thinking)."),
  })
  .describe("Answer regeneration by the target (DeepSpec's generate_train_data stage).");

export const trainingData = z
  .object({
    prompts: datasetSource.describe("Prompt dataset, e.g. hf://mlabonne/open-perfectblend."),
    heldOutFraction: z
      .number()
      .min(0)
      .max(0.5)
      .default(0.05)
      .describe("Share of prompts held out for evaluation."),
    maxSamples: z.int().min(1).optional().describe("Use at most this many prompts (all by default)."),
    regenerate: regeneration.prefault({}),
    targetCache: z
      .object({
        minLossTokens: z
          .int()
          .min(0)
          .default(14)
          .describe("Drop samples with fewer supervised tokens than this."),
        batchSize: z.int().min(1).max(1024).default(16).describe("Samples per forward pass while caching."),
      })
      .prefault({})
      .describe("Target hidden-state cache (DeepSpec's prepare_target_cache stage)."),
  })
  .describe("Training data.");

export const hyperparameters = withRules(
  z.object({
    epochs: z
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe("Passes over the data; default 10 unless maxSteps is set."),
    maxSteps: z.int().min(1).optional().describe("Stop after this many optimizer steps instead of epochs."),
    learningRate: z.number().gt(0).max(1).default(0.0006).describe("Peak learning rate."),
    warmupRatio: z.number().min(0).max(1).default(0.04).describe("Share of steps spent warming up."),
    globalBatchSize: z
      .int()
      .min(1)
      .max(1048576)
      .default(512)
      .describe("Samples per optimizer step across all GPUs."),
    perGpuBatchSize: z.int().min(1).max(1024).default(1).describe("Samples per GPU per micro step."),
    maxLength: z.int().min(16).max(1048576).default(4096).describe("Maximum tokens per sample."),
    precision: z.enum(["bf16", "fp16", "fp32"]).default("bf16").describe("Training precision."),
    checkpointInterval: z.int().min(1).default(3000).describe("Save a checkpoint every this many steps."),
    seed: z.int().min(0).max(4294967295).default(42).describe("Random seed."),
  }),
  [
    {
      rule: atMostOne("epochs", "maxSteps"),
      message: "set at most one of training.epochs or training.maxSteps",
    },
  ],
).describe("Training hyperparameters.");

export const evaluationGate = z
  .object({
    tasks: evalTasks("Task sets evaluated after training."),
    minTau: z
      .number()
      .min(1)
      .max(64)
      .optional()
      .describe("Fail the DraftTraining when the macro-average tau is below this (bonus token counted)."),
  })
  .describe(
    "Optional acceptance evaluation after training; its AcceptanceEval is owned by the DraftTraining.",
  );

export const draftTrainingSpec = withRules(
  z.object({
    target: modelSource.describe("The frozen target model the draft learns to predict. Immutable."),
    method: draftMethod.describe("Draft method: dspark, dflash or eagle3. Immutable."),
    backend: jobBackend,
    draft: draftShape.prefault({}),
    data: trainingData,
    training: hyperparameters.prefault({}),
    resources: podResources
      .extend({
        nodes: z
          .int()
          .min(1)
          .max(1024)
          .default(1)
          .describe("Training nodes (pods); more than one uses an Indexed Job."),
        gpusPerNode: gpuCount("GPUs per training node.", 8),
      })
      .prefault({})
      .describe("Training compute."),
    placement: placement.optional(),
    runtime: runtimeImage.optional(),
    storage: storage,
    output: outputLocation
      .optional()
      .describe("Where the final checkpoint is copied; it always stays on storage too."),
    evaluation: evaluationGate.optional(),
    progressInterval: positiveDuration("How often the operator reads progress from running pods.").default(
      PROGRESS_INTERVAL_DEFAULT,
    ),
    backoffLimit: z.int().min(0).max(100).default(3).describe("Retries of a stage after retriable failures."),
    suspend: z
      .boolean()
      .default(false)
      .describe("Stop the running stage, keeping checkpoints; setting it back to false resumes."),
    queueName: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { error: "must be the name of a Kueue LocalQueue" })
      .optional()
      .describe(
        "Kueue LocalQueue (same namespace) the stage Jobs are submitted to, as their " +
          "kueue.x-k8s.io/queue-name label: Kueue then decides when each Job runs (its spec.suspend), " +
          "and status shows whether it waits for quota or is admitted.",
      ),
  }),
  [
    immutable("target"),
    immutable("method"),
    {
      rule: "!has(self.queueName) || !self.suspend",
      message:
        "suspend cannot be combined with queueName: Kueue decides when the Jobs run (deactivate the Workload to stop it)",
      fieldPath: ".suspend",
    },
    {
      rule: "self.method == 'dspark' || !has(self.draft.dspark)",
      message: "draft.dspark applies only to method dspark",
      fieldPath: ".draft.dspark",
    },
    {
      rule: "self.method == 'eagle3' || !has(self.draft.eagle3)",
      message: "draft.eagle3 applies only to method eagle3",
      fieldPath: ".draft.eagle3",
    },
    {
      rule: "self.backend == 'reference' || !(self.target.uri.startsWith('builtin://') || self.data.prompts.uri.startsWith('builtin://'))",
      message: "builtin:// models and datasets exist only for the reference backend",
      fieldPath: ".backend",
    },
    {
      rule: "self.resources.nodes == 1 || !has(self.storage.accessMode) || self.storage.accessMode == 'ReadWriteMany' || has(self.storage.existingClaim)",
      message: "multi-node training needs ReadWriteMany storage shared by all nodes",
      fieldPath: ".storage.accessMode",
    },
    {
      rule: "self.backend == 'reference' || self.resources.gpusPerNode >= 1",
      message: "deepspec training needs at least one GPU per node",
      fieldPath: ".resources.gpusPerNode",
    },
    {
      rule: "int(self.training.globalBatchSize) % (int(self.resources.nodes) * (self.resources.gpusPerNode > 0 ? int(self.resources.gpusPerNode) : 1) * int(self.training.perGpuBatchSize)) == 0",
      message: "training.globalBatchSize must be divisible by nodes x gpusPerNode x perGpuBatchSize",
      fieldPath: ".training.globalBatchSize",
    },
  ],
).describe("Desired draft training.");
export type DraftTrainingSpec = z.infer<typeof draftTrainingSpec>;

export const stageName = z
  .enum(["PrepareData", "Regenerate", "TargetCache", "Train", "Evaluate", "Publish"])
  .describe("Pipeline stage.");

export const stageStatus = z
  .object({
    name: stageName,
    state: z
      .enum(["Pending", "Running", "Succeeded", "Failed", "Skipped", "Suspended"])
      .describe("State of the stage."),
    job: z.string().optional().describe("Job (or AcceptanceEval) running the stage."),
    startTime: z.string().optional().describe("When the stage started (RFC 3339)."),
    completionTime: z.string().optional().describe("When the stage ended (RFC 3339)."),
    attempts: z.int().min(0).default(0).describe("Pod attempts so far."),
    message: z.string().max(4096).optional().describe("Last message from the stage."),
  })
  .describe("One stage of the pipeline.");

export const trainingProgress = z
  .object({
    stage: stageName.optional(),
    step: z.int().min(0).optional().describe("Current step of the stage."),
    totalSteps: z.int().min(0).optional().describe("Total steps of the stage."),
    percent: z.int().min(0).max(100).optional().describe("step / totalSteps in percent."),
    epoch: z.number().min(0).optional().describe("Current (fractional) epoch."),
    loss: z.number().optional().describe("Latest training loss."),
    acceptanceByPosition,
    tauEstimate: z
      .number()
      .min(0)
      .optional()
      .describe("Training-time estimate of tau, bonus token included."),
    throughput: z.number().min(0).optional().describe("Samples (or tokens, per message) per second."),
    eta: z.string().optional().describe("Estimated completion time of the stage (RFC 3339)."),
    message: z.string().max(1024).optional().describe("Free text from the runtime."),
    lastUpdateTime: z.string().optional().describe("When progress was last read (RFC 3339)."),
  })
  .describe("Progress of the running stage, read from its pods.");

export const draftTrainingStatus = z
  .object({
    observedGeneration: z.int().min(0).optional().describe("Generation last acted on."),
    conditions,
    stage: z
      .enum([
        "Pending",
        "PrepareData",
        "Regenerate",
        "TargetCache",
        "Train",
        "Evaluate",
        "Publish",
        "Succeeded",
        "Failed",
        "Suspended",
      ])
      .optional()
      .describe("Where the pipeline is."),
    stages: z
      .array(stageStatus)
      .max(8)
      .optional()
      .meta({
        description: "Each stage's state.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
      }),
    progress: trainingProgress.optional(),
    checkpoint: z
      .object({
        uri: z.string().describe("Final (or latest) checkpoint location."),
        step: z.int().min(0).optional().describe("Training step of the checkpoint."),
      })
      .optional()
      .describe("The trained draft."),
    output: publishedOutput(
      "the draft",
      "The draft's copy in the object store named by spec.output, once every file is verified.",
    ),
    evaluation: z
      .object({
        acceptanceEval: z.string().optional().describe("The AcceptanceEval created for the gate."),
        macroTau: z.number().min(0).optional().describe("Macro-average tau over the evaluated tasks."),
        passed: z.boolean().optional().describe("Whether the gate passed."),
      })
      .optional()
      .describe("Summary of the evaluation gate."),
  })
  .describe("Observed state of the DraftTraining.");
