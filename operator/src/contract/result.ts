// The result of a task: written in full to <output.path>/result.json and, compacted to at most
// 4096 bytes, to the termination message the operator reads from the pod status.
import { z } from "zod";
import { acceptanceEvalStatus } from "../api/acceptanceeval.ts";
import { taskResult } from "../api/tasks.ts";
import { RUNTIME_API_VERSION, RUNTIME_BACKENDS, TASK_KINDS } from "./constants.ts";
import { EXIT_REASONS } from "./exitCodes.ts";

const evalStatus = acceptanceEvalStatus.shape;

export const result = z
  .object({
    apiVersion: z.literal(RUNTIME_API_VERSION).describe("Contract version."),
    kind: z.literal("Result"),
    taskKind: z.enum(TASK_KINDS).describe("Kind of the task."),
    backend: z.enum(RUNTIME_BACKENDS).describe("Backend that ran it."),
    status: z.enum(["succeeded", "failed", "terminated"]).describe("Outcome."),
    exitCode: z.int().min(0).max(255).describe("The agent's exit code."),
    reason: z.enum(EXIT_REASONS).describe("Name of the exit code (exit-codes.json)."),
    message: z.string().max(65536).optional().describe("What happened; names the field for invalid tasks."),
    startTime: z.string().describe("RFC 3339."),
    completionTime: z.string().describe("RFC 3339."),
    durationSeconds: z.number().min(0).describe("Wall time of the task."),
    resultPath: z.string().optional().describe("Where the full result was written."),
    truncated: z.boolean().optional().describe("Set on a termination message that had to be shortened."),
    outputs: z
      .object({
        checkpoint: z
          .object({
            path: z.string().describe("Checkpoint directory."),
            step: z.int().min(0).optional().describe("Training step of the checkpoint."),
            format: z.string().max(64).optional().describe("e.g. deepspec, eagle3-sglang."),
          })
          .optional()
          .describe("The trained (or converted) draft."),
        dataPaths: z.array(z.string()).max(256).optional().describe("Data files written."),
        evalDataDir: z.string().optional().describe("Held-out eval JSONL directory written."),
        targetCachePath: z.string().optional().describe("Target cache written."),
        samples: z.int().min(0).optional().describe("Samples written."),
        files: z.array(z.string()).max(256).optional().describe("Other files written."),
        published: z
          .object({
            uri: z.string().describe("Where the product was copied (task.publish)."),
            files: z.int().min(0).describe("Files at the location."),
            sizeBytes: z.int().min(0).describe("Their total size."),
            checksum: z
              .string()
              .describe("sha256 over the sorted `name size md5` lines of the files, verified in the store."),
            copiedFiles: z.int().min(0).optional().describe("Files sent by this run."),
            skippedFiles: z.int().min(0).optional().describe("Files already there, not sent again."),
          })
          .optional()
          .describe("The copy to the object store, once every file is verified there."),
      })
      .optional()
      .describe("What the task produced."),
    training: z
      .object({
        step: z.int().min(0).optional().describe("Last step."),
        totalSteps: z.int().min(0).optional().describe("Planned steps."),
        epoch: z.number().min(0).optional().describe("Last epoch."),
        loss: z.number().optional().describe("Last loss."),
        tauEstimate: z.number().min(0).optional().describe("Training-time tau estimate."),
      })
      .optional()
      .describe("Training summary."),
    evaluation: z
      .object({
        results: z.array(taskResult).max(64).describe("Per-task results."),
        summary: evalStatus.summary,
        gate: evalStatus.gate,
      })
      .optional()
      .describe("Acceptance measured."),
    load: z
      .object({
        concurrency: z.int().min(1).describe("Requests in flight at once."),
        model: z.string().max(1024).optional().describe("Model name requested."),
        tasks: z
          .array(
            z
              .object({
                name: z.string().describe("Task set."),
                requests: z.int().min(0).describe("Requests sent (each answered)."),
                promptTokens: z.int().min(0).describe("Prompt tokens the server reported."),
                completionTokens: z.int().min(0).describe("Completion tokens the server reported."),
                stoppedAtEos: z.int().min(0).describe("Requests that ended with finish_reason stop."),
                requestSeconds: z.number().min(0).describe("Sum of the requests' wall times."),
                durationSeconds: z.number().min(0).describe("Wall time of the task set."),
              })
              .describe("One task set's load."),
          )
          .max(64)
          .describe("Per task set."),
      })
      .optional()
      .describe("Load sent to a live endpoint (kind load)."),
    profile: z
      .object({
        points: z
          .array(
            z
              .object({
                batchSize: z.int().min(1).describe("Verified tokens per step."),
                stepsPerSecond: z.number().min(0).describe("Measured steps per second."),
              })
              .describe("One SPS(B) point."),
          )
          .max(256)
          .describe("The SPS(B) table."),
      })
      .optional()
      .describe("Engine cost table."),
    details: z.record(z.string(), z.unknown()).optional().describe("Backend-specific extras."),
  })
  .describe("Result of a runtime task.");
export type Result = z.infer<typeof result>;
