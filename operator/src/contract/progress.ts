// Progress served by every long-running runtime pod at GET /progress (port 9090 by default) and
// mirrored as Prometheus gauges at /metrics.
import { z } from "zod";
import { acceptanceByPosition } from "../api/common.ts";
import { RUNTIME_BACKENDS, TASK_KINDS } from "./constants.ts";

export const progress = z
  .object({
    kind: z.enum(TASK_KINDS).describe("Task kind."),
    backend: z.enum(RUNTIME_BACKENDS).describe("Backend running it."),
    state: z
      .enum(["starting", "running", "succeeded", "failed", "terminating"])
      .describe("Lifecycle of the task in this pod."),
    stage: z.string().max(63).optional().describe("Finer stage inside the task, e.g. download or epoch."),
    step: z.int().min(0).optional().describe("Current step."),
    total: z.int().min(0).optional().describe("Total steps."),
    epoch: z.number().min(0).optional().describe("Current (fractional) epoch."),
    loss: z.number().optional().describe("Latest training loss."),
    acceptanceByPosition,
    tauEstimate: z.number().min(0).optional().describe("Estimate of tau, bonus token included."),
    throughput: z.number().min(0).optional().describe("Work per second, unit in throughputUnit."),
    throughputUnit: z.string().max(32).optional().describe("samples/s, tokens/s, requests/s, ..."),
    etaSeconds: z.number().min(0).optional().describe("Estimated seconds left in the task."),
    message: z.string().max(1024).optional().describe("Latest human-readable message."),
    startTime: z.string().describe("When the agent started (RFC 3339)."),
    time: z.string().describe("When progress was last updated (RFC 3339)."),
  })
  .describe("Progress of a runtime task.");
export type Progress = z.infer<typeof progress>;
