// Fixed names and numbers of the runtime contract that both the operator and the runtime use.
import { MANAGED_DEEPSPEC_KEYS } from "../api/drafttraining.ts";
import { MANAGED_ENGINE_FLAGS } from "../api/specserve.ts";

export const RUNTIME_API_VERSION = "runtime.specops.dev/v1" as const;

export const TASK_KINDS = [
  "prepare-data",
  "regenerate",
  "target-cache",
  "train",
  "eval",
  "serve",
  "profile",
  "publish",
  "load",
] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export const RUNTIME_BACKENDS = ["deepspec", "reference", "vllm", "sglang"] as const;
export type RuntimeBackend = (typeof RUNTIME_BACKENDS)[number];

/** Which backends may run each kind (the image of the backend implements it). */
export const BACKENDS_BY_KIND = {
  "prepare-data": ["deepspec", "reference"],
  regenerate: ["deepspec", "reference"],
  "target-cache": ["deepspec", "reference"],
  train: ["deepspec", "reference"],
  eval: ["deepspec", "reference"],
  serve: ["vllm", "sglang", "reference"],
  profile: ["reference", "vllm", "sglang"],
  // The agent itself copies; any image carrying it will do.
  publish: ["deepspec", "reference", "vllm", "sglang"],
  // An OpenAI client the agent carries: any image will do (builtin:// prompts need the reference one).
  load: ["deepspec", "reference", "vllm", "sglang"],
} as const satisfies Record<TaskKind, readonly RuntimeBackend[]>;

/** Where the task document is mounted (overridden by --task or SPECOPS_TASK). */
export const DEFAULT_TASK_PATH = "/etc/specops/task.json";
export const PROGRESS_DEFAULT_PORT = 9090;
export const PROGRESS_PATHS = { progress: "/progress", metrics: "/metrics", health: "/healthz" } as const;
export const TERMINATION_MESSAGE_DEFAULT_PATH = "/dev/termination-log";
/** Kubernetes truncates termination messages beyond 4096 bytes; the agent stays below. */
export const TERMINATION_MESSAGE_MAX_BYTES = 4096;
/** File name of the full result inside the task's output directory. */
export const RESULT_FILE = "result.json";

/**
 * Files each pipeline stage leaves in its output directory, so the operator can hand the next stage
 * its inputs without waiting on a result it may have missed (a restarted operator recomputes them).
 */
export const STAGE_OUTPUTS = {
  prepareData: { trainFile: "train.jsonl", evalDataDir: "eval_datasets" },
  regenerate: { trainFile: "train_regen.jsonl", errorFile: "train_regen_error.jsonl" },
  targetCache: { dir: "target_cache" },
  train: { checkpointsDir: "checkpoints/specops", latestLink: "step_latest" },
} as const;

export const RUNTIME_ENV = {
  task: "SPECOPS_TASK",
  progressPort: "SPECOPS_PROGRESS_PORT",
  terminationLog: "SPECOPS_TERMINATION_LOG",
  contractDir: "SPECOPS_CONTRACT_DIR",
  deepspecDir: "SPECOPS_DEEPSPEC_DIR",
  pvcRoot: "SPECOPS_PVC_ROOT",
  /** The endpoint's API key (from a Secret): servers require it, the load task sends it. */
  apiKey: "SPECOPS_API_KEY",
  /** Node rank of a multi-node task; Indexed Jobs set JOB_COMPLETION_INDEX, which is read first. */
  nodeRank: "JOB_COMPLETION_INDEX",
} as const;

/** pvc://claim/path resolves to <pvcRoot>/claim/path unless the task maps the claim elsewhere. */
export const DEFAULT_PVC_ROOT = "/mnt/specops/pvc";

export const MANAGED_ENGINE_FLAG_PATTERN = `^--(${MANAGED_ENGINE_FLAGS.join("|")})(=.*)?$`;

export const CONTRACT_CONSTANTS = {
  apiVersion: RUNTIME_API_VERSION,
  taskKinds: TASK_KINDS,
  backends: RUNTIME_BACKENDS,
  backendsByKind: BACKENDS_BY_KIND,
  defaultTaskPath: DEFAULT_TASK_PATH,
  progress: { defaultPort: PROGRESS_DEFAULT_PORT, paths: PROGRESS_PATHS },
  terminationMessage: {
    defaultPath: TERMINATION_MESSAGE_DEFAULT_PATH,
    maxBytes: TERMINATION_MESSAGE_MAX_BYTES,
  },
  resultFile: RESULT_FILE,
  stageOutputs: STAGE_OUTPUTS,
  env: RUNTIME_ENV,
  defaultPvcRoot: DEFAULT_PVC_ROOT,
  managedEngineFlags: MANAGED_ENGINE_FLAGS,
  managedEngineFlagPattern: MANAGED_ENGINE_FLAG_PATTERN,
  managedDeepspecKeys: MANAGED_DEEPSPEC_KEYS,
} as const;
