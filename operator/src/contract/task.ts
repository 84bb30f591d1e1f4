// The Task: a versioned JSON document the operator mounts into every runtime pod. One variant per
// kind (a zod discriminated union: the contract is not a CRD, so unions are fine). Parameters reuse
// the API's building blocks so a Task is built straight from a DraftTraining, AcceptanceEval or
// SpecServe spec.
import { z } from "zod";
import { acceptanceEvalSpec } from "../api/acceptanceeval.ts";
import {
  draftMethod,
  modelSource,
  objectStoreFields,
  objectStoreRules,
  servingMethod,
} from "../api/common.ts";
import { draftShape, hyperparameters, regeneration, trainingData } from "../api/drafttraining.ts";
import { withRules } from "../api/rules.ts";
import { speculative } from "../api/specserve.ts";
import { formatPath } from "../api/validate.ts";
import { BACKENDS_BY_KIND, RUNTIME_API_VERSION, type TaskKind } from "./constants.ts";
import { requireForBackends } from "./jsonSchema.ts";

/** An absolute local path without `..` segments (storage is mounted into the pod). */
export const localPath = (description: string) =>
  z
    .string()
    .min(1)
    .max(1024)
    .regex(/^\/(?!.*(^|\/)\.\.(\/|$))[^\0]*$/, { error: "must be an absolute path without '..'" })
    .describe(description);

const hostPort = z
  .string()
  .max(261)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}$/, { error: "must be host:port" })
  .describe("host:port of an OpenAI-compatible server (its /v1 API).");

const httpUrl = (description: string) =>
  z
    .string()
    .max(1024)
    .regex(/^https?:\/\/[^\s]+$/, { error: "must be an http(s) URL" })
    .describe(description);

const metadata = z
  .object({
    name: z.string().max(253).optional().describe("Name of the task (the Job or pod running it)."),
    namespace: z.string().max(63).optional().describe("Namespace of the owning resource."),
    owner: z
      .object({
        kind: z.enum(["DraftTraining", "AcceptanceEval", "SpecServe"]).describe("Owning resource kind."),
        name: z.string().max(253).describe("Owning resource name."),
        uid: z.string().max(64).optional().describe("Owning resource uid."),
      })
      .optional()
      .describe("The SpecOps resource the task belongs to."),
    attempt: z.int().min(0).optional().describe("Retry attempt of this task, 0 first."),
  })
  .describe("Identification, for logs and metric labels only.");

const output = z
  .object({
    path: localPath("Local directory (on mounted storage) receiving outputs and result.json."),
    uri: z
      .string()
      .max(512)
      .optional()
      .describe("The location as the user wrote it (pvc://, s3://, gs://), recorded in the result."),
  })
  .describe("Where the task writes.");

const storage = z
  .object({
    pvcMounts: z
      .record(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/), localPath("Mount path of the claim."))
      .optional()
      .describe("Mount path of each claim named by pvc:// URIs; default <SPECOPS_PVC_ROOT>/<claim>."),
    stagingDir: localPath(
      "Where s3:// and gs:// inputs are copied before the task runs (<stagingDir>/<scheme>/<bucket>/<key>); " +
        "default <workDir>/staged. On shared storage, later stages find them already there.",
    ).optional(),
  })
  .describe("How URIs map onto the pod's volumes.");

export const distributed = z
  .object({
    nodes: z
      .int()
      .min(1)
      .max(1024)
      .default(1)
      .describe("Pods (nodes) taking part; node rank comes from env."),
    gpusPerNode: z.int().min(0).max(64).default(1).describe("GPUs visible in each pod."),
    masterAddr: z
      .string()
      .max(253)
      .optional()
      .describe("Rendezvous host (rank 0's stable DNS name); env MASTER_ADDR wins when set."),
    masterPort: z.int().min(1).max(65535).default(29500).describe("Rendezvous port."),
  })
  .describe("Multi-node layout. RANK (node rank) is read from JOB_COMPLETION_INDEX or RANK.");

const deepspecConfig = z
  .string()
  .max(256)
  .regex(/^config\/[A-Za-z0-9_./-]+\.py$/, { error: "must be a DeepSpec config path such as config/x/y.py" })
  .optional()
  .describe("DeepSpec config to start from; default config/<method>/<method>_<target>.py from the target.");

const common = {
  apiVersion: z.literal(RUNTIME_API_VERSION).describe("Contract version."),
  metadata: metadata.optional(),
  output,
  workDir: localPath("Scratch directory; default <output.path>/.work.").optional(),
  storage: storage.optional(),
  publish: withRules(
    z.object({
      uri: z
        .string()
        .max(512)
        .regex(/^(s3|gs):\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](\/[^\s@]*)?$/, {
          error: "must be s3://bucket/path or gs://bucket/path",
        })
        .describe("The object-store location."),
      ...objectStoreFields,
    }),
    objectStoreRules,
  )
    .optional()
    .describe(
      "When the task completes (an eval also when it missed its gate), copy its product to this s3:// or " +
        "gs:// location: the checkpoint of train, " +
        "params.source of publish, the result JSON of eval (<uri>/result.json, or the uri itself when it " +
        "ends in .json). Credentials come from the pod's environment.",
    ),
};

const backendFor = (kind: TaskKind) =>
  z.enum(BACKENDS_BY_KIND[kind] as unknown as [string, ...string[]]).describe(`Backend running ${kind}.`);

const regen = regeneration.pick({
  concurrency: true,
  temperature: true,
  topP: true,
  topK: true,
  minP: true,
  maxTokens: true,
  thinking: true,
});

const prepareDataTask = z.object({
  ...common,
  kind: z.literal("prepare-data"),
  backend: backendFor("prepare-data"),
  params: trainingData
    .pick({ prompts: true, heldOutFraction: true, maxSamples: true })
    .extend({ seed: z.int().min(0).max(4294967295).default(42).describe("Split seed.") })
    .describe("Download and split prompts into train JSONL and held-out eval JSONL."),
});

const regenerateTask = requireForBackends(
  z.object({
    ...common,
    kind: z.literal("regenerate"),
    backend: backendFor("regenerate"),
    params: regen
      .extend({
        target: modelSource.describe("The target whose answers are regenerated."),
        inputPath: localPath("Train JSONL written by prepare-data."),
        servers: z
          .array(hostPort)
          .min(1)
          .max(256)
          .optional()
          .describe("Target servers to query (needed by deepspec; reference generates in-process)."),
      })
      .describe("Regenerate assistant answers with the target."),
  }),
  ["deepspec"],
  "servers",
);

const targetCacheTask = z.object({
  ...common,
  kind: z.literal("target-cache"),
  backend: backendFor("target-cache"),
  distributed: distributed.prefault({}),
  params: trainingData.shape.targetCache
    .unwrap()
    .extend({
      target: modelSource.describe("The frozen target."),
      method: draftMethod,
      draft: draftShape.prefault({}),
      dataPaths: z
        .array(localPath("A regenerated train JSONL."))
        .min(1)
        .max(64)
        .describe("Train data files."),
      maxLength: z.int().min(16).max(1048576).default(4096).describe("Maximum tokens per sample."),
      deepspecConfig,
    })
    .describe("Cache the target's hidden states of the draft's input layers."),
});

const trainTask = requireForBackends(
  z.object({
    ...common,
    kind: z.literal("train"),
    backend: backendFor("train"),
    distributed: distributed.prefault({}),
    params: z
      .object({
        target: modelSource.describe("The frozen target."),
        method: draftMethod,
        draft: draftShape.prefault({}),
        training: hyperparameters.prefault({}),
        targetCachePath: localPath("Target cache written by target-cache (deepspec).").optional(),
        dataPaths: z
          .array(localPath("A train JSONL."))
          .max(64)
          .optional()
          .describe("Train data files (reference trains from text)."),
        deepspecConfig,
        experiment: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/)
          .optional()
          .describe("Experiment name; checkpoints go to <output>/checkpoints/specops/<experiment>."),
      })
      .describe("Train the draft."),
  }),
  ["deepspec"],
  "targetCachePath",
);

const evalSpecShape = acceptanceEvalSpec.shape;
const evalTask = z.object({
  ...common,
  kind: z.literal("eval"),
  backend: backendFor("eval"),
  distributed: distributed.prefault({}),
  params: z
    .object({
      target: modelSource.describe("The target model."),
      draft: modelSource.describe("The draft checkpoint (a local path via pvc://, or hf://)."),
      method: draftMethod,
      tasks: evalSpecShape.tasks,
      decoding: evalSpecShape.decoding,
      baseline: evalSpecShape.baseline,
      gate: evalSpecShape.gate,
      evalDataDir: localPath("Directory holding <task>.jsonl files (DeepSpec's eval_datasets).").optional(),
    })
    .describe("Measure acceptance offline."),
});

const serveTask = z.object({
  ...common,
  kind: z.literal("serve"),
  backend: backendFor("serve"),
  params: withRules(
    z.object({
      target: modelSource.describe("The served target."),
      draft: modelSource
        .optional()
        .describe(
          "The draft checkpoint; omitted for a draft inside the target checkpoint (mtp, DeepSeek-V4 dspark).",
        ),
      method: servingMethod
        .optional()
        .describe(
          "Speculative method; omitted, the target is served alone (answer regeneration, baselines).",
        ),
      draftFormat: z
        .enum(["auto", "deepspec", "native"])
        .default("auto")
        .describe(
          "deepspec: written by DeepSpec (Qwen3DSparkModel / Qwen3Eagle3Model, converted or mapped for the " +
            "engine); native: the engine's own format (z-lab DFlash, SpecForge Eagle3); auto: read config.json.",
        ),
      speculative: speculative.prefault({}),
      extraEngineArgs: z.array(z.string().max(1024)).max(64).optional().describe("Extra engine arguments."),
      port: z.int().min(1).max(65535).default(8000).describe("Port of the OpenAI-compatible endpoint."),
      tensorParallelSize: z.int().min(1).max(64).default(1).describe("GPUs per replica."),
      servedModelName: z.string().max(253).optional().describe("Model name clients use; default the target."),
    }),
    [
      {
        rule: "has(self.method) || !has(self.draft)",
        message: "a draft needs a method",
        fieldPath: ".method",
      },
    ],
  ).describe("Serve target + draft, or the target alone when method is omitted."),
});

const profileTask = z.object({
  ...common,
  kind: z.literal("profile"),
  backend: backendFor("profile"),
  params: z
    .object({
      target: modelSource.describe("The target model."),
      draft: modelSource.optional().describe("The draft, when drafting cost is profiled too."),
      method: draftMethod.optional(),
      batchSizes: z
        .array(z.int().min(1).max(65536))
        .min(1)
        .max(64)
        .default([1, 2, 4, 8, 16, 32, 64, 128])
        .describe("Verified tokens per step (B) to measure steps per second at."),
      contextLength: z.int().min(1).max(1048576).default(2048).describe("Context length of each request."),
      repeats: z.int().min(1).max(1000).default(5).describe("Timed steps per batch size."),
      endpoint: httpUrl("A running engine to profile instead of loading the model.").optional(),
    })
    .describe("Measure the engine's steps-per-second table SPS(B)."),
});

const publishTask = z.object({
  ...common,
  kind: z.literal("publish"),
  backend: backendFor("publish"),
  params: z
    .object({
      source: localPath("Checkpoint folder (or file) on storage to copy to publish.uri."),
    })
    .describe("Copy a finished stage's product to an object store, resumable file by file."),
});

const loadTask = z.object({
  ...common,
  kind: z.literal("load"),
  backend: backendFor("load"),
  params: z
    .object({
      endpoint: httpUrl("Base URL of the OpenAI-compatible API (ending in /v1), e.g. a SpecServe's Service."),
      model: z
        .string()
        .max(1024)
        .optional()
        .describe("Model name to request; default the first model GET /v1/models lists."),
      tasks: evalSpecShape.tasks,
      decoding: evalSpecShape.decoding,
      concurrency: z
        .int()
        .min(1)
        .max(1024)
        .default(1)
        .describe("Requests in flight at once (a bounded pool of clients)."),
      requestTimeoutSeconds: z.int().min(1).max(86400).default(600).describe("Timeout of one request."),
    })
    .describe(
      "Send the task sets' prompts to a live endpoint through its chat API (seed = decoding.seed + " +
        "prompt index, max_tokens = decoding.maxNewTokens); the API key, when the server needs one, " +
        "comes from env SPECOPS_API_KEY.",
    ),
});

export const TASK_VARIANTS = {
  "prepare-data": prepareDataTask,
  regenerate: regenerateTask,
  "target-cache": targetCacheTask,
  train: trainTask,
  eval: evalTask,
  serve: serveTask,
  profile: profileTask,
  publish: publishTask,
  load: loadTask,
} as const satisfies Record<TaskKind, z.ZodObject>;

export const task = z
  .discriminatedUnion("kind", [
    prepareDataTask,
    regenerateTask,
    targetCacheTask,
    trainTask,
    evalTask,
    serveTask,
    profileTask,
    publishTask,
    loadTask,
  ])
  .describe("A SpecOps runtime task.");
export type Task = z.infer<typeof task>;
export type TaskInput = z.input<typeof task>;

export interface FieldError {
  field: string;
  message: string;
}

/** Validates a Task (types, ranges, the API's CEL rules) and applies defaults. */
export function parseTask(doc: unknown): { ok: true; value: Task } | { ok: false; errors: FieldError[] } {
  const r = task.safeParse(doc);
  if (r.success) return { ok: true, value: r.data };
  return {
    ok: false,
    errors: r.error.issues.map((i) => ({ field: formatPath(i.path), message: i.message })),
  };
}
