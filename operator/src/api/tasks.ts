// The benchmark task sets DeepSpec evaluates on, with its default sample counts.
import { z } from "zod";
import { datasetSource } from "./common.ts";
import { withRules } from "./rules.ts";

export const BENCHMARK_TASKS = {
  gsm8k: 500,
  math500: 500,
  aime25: 30,
  humaneval: 164,
  mbpp: 256,
  livecodebench: 500,
  "mt-bench": 80,
  alpaca: 500,
  "arena-hard-v2": 500,
} as const;
export type BenchmarkTask = keyof typeof BENCHMARK_TASKS;
export const BENCHMARK_TASK_NAMES = Object.keys(BENCHMARK_TASKS) as BenchmarkTask[];

const knownTasks = BENCHMARK_TASK_NAMES.map((t) => `'${t}'`).join(", ");

export const evalTask = withRules(
  z.object({
    name: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { error: "must be a lowercase DNS-1123 label" })
      .describe(
        `Task set: one of ${BENCHMARK_TASK_NAMES.join(", ")}, or a custom name together with source.`,
      ),
    samples: z
      .int()
      .min(1)
      .max(100000)
      .optional()
      .describe(
        "Number of samples to evaluate; defaults to the task set's standard count (all of a custom source).",
      ),
    source: datasetSource
      .optional()
      .describe(
        'JSONL prompts for a custom task ({"turns": [...]} per line); not allowed for the standard sets.',
      ),
  }),
  [
    {
      rule: `self.name in [${knownTasks}] ? !has(self.source) : has(self.source)`,
      message: `a custom task needs source, and the standard sets (${BENCHMARK_TASK_NAMES.join(", ")}) take none`,
      fieldPath: ".source",
    },
  ],
).describe("One task set to measure acceptance on.");
export type EvalTask = z.infer<typeof evalTask>;

/** Task sets keyed by name: the API server refuses a repeated name (list-type map), and so does zod. */
export const evalTasks = (description: string) =>
  z
    .array(evalTask)
    .min(1)
    .max(64)
    .superRefine((tasks, ctx) => {
      const seen = new Set<string>();
      tasks.forEach((t, i) => {
        if (seen.has(t.name))
          ctx.addIssue({ code: "custom", message: `duplicate task ${t.name}`, path: [i] });
        seen.add(t.name);
      });
    })
    .meta({ description, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] });

const ACCEPTANCE_CONVENTIONS = ["deepspec", "vllm"] as const;

/** Latency and per-user speed of a live evaluation, from the engines' histograms. */
const liveFigures = z
  .object({
    requests: z.int().min(0).describe("Requests the load sent for this task set."),
    ttftP50Seconds: z.number().min(0).optional().describe("Time to first token, median (histogram delta)."),
    ttftP95Seconds: z.number().min(0).optional().describe("Time to first token, 95th percentile."),
    tpotP50Seconds: z.number().min(0).optional().describe("Time per output token, median (histogram delta)."),
    tpotP95Seconds: z.number().min(0).optional().describe("Time per output token, 95th percentile."),
    tokensPerSecondPerUser: z
      .number()
      .min(0)
      .optional()
      .describe("Completion tokens over request time, as the load's clients saw it (token-weighted mean)."),
    pods: z.int().min(0).describe("Serving pods whose /metrics were read at the window's end."),
  })
  .describe("Live evaluation figures of one task set.");

/** Per-task acceptance figures, as DeepSpec's evaluator reports them (tau counts the bonus token). */
export const taskResult = z
  .object({
    name: z.string().describe("Task set."),
    samples: z.int().min(0).describe("Samples evaluated."),
    tau: z
      .number()
      .min(0)
      .describe(
        "Mean accepted length per verification round, bonus token included, in the convention `convention` names: " +
          "deepspec (offline; a round whose accepted drafts reach EOS ends there, without bonus) or vllm " +
          "(live; 1 + accepted / drafts from the engine's counters).",
      ),
    convention: z
      .enum(ACCEPTANCE_CONVENTIONS)
      .optional()
      .describe(
        "How tau and acceptanceByPosition count rounds; deepspec when unset. Live figures come from vLLM's " +
          "counters, so they are vllm.",
      ),
    acceptanceByPosition: z
      .array(z.number().min(0).max(1))
      .max(64)
      .optional()
      .describe(
        "Per draft position i. deepspec (DeepSpec's accept_rate@i, its Table 1): of the rounds whose proposal " +
          "reached position i, the share that accepted it. vllm: rounds that accepted position i over all " +
          "rounds (vLLM's per-position counter over its drafts counter). They coincide for a fixed draft " +
          "length without EOS.",
      ),
    verifyRate: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("Accepted tokens over verified tokens: sum(tau) / (sum(proposal length) + proposals)."),
    tokensPerSecond: z.number().min(0).optional().describe("Decode throughput with speculation."),
    baselineTokensPerSecond: z.number().min(0).optional().describe("Decode throughput without speculation."),
    speedup: z.number().min(0).optional().describe("tokensPerSecond / baselineTokensPerSecond."),
    vllmConvention: z
      .object({
        tau: z.number().min(0).describe("1 + accepted / drafts."),
        acceptanceByPosition: z
          .array(z.number().min(0).max(1))
          .max(64)
          .optional()
          .describe("Rounds that accepted draft position i over all rounds."),
        drafts: z.int().min(0).optional().describe("Verification rounds (vLLM's drafts counter)."),
      })
      .optional()
      .describe(
        "Offline: the same rounds counted as vLLM's spec-decode counters count them (a round's accepted " +
          "drafts before any cut at EOS), to compare with a live evaluation of the same draft.",
      ),
    live: liveFigures.optional(),
  })
  .describe("Acceptance measured on one task set.");
