// Exit codes of the runtime agent: one number per failure class, shared by the operator's
// podFailurePolicy and the Python agent (which reads runtime/contract/exit-codes.json, generated
// from this file).

export type PodFailurePolicyAction = "FailJob" | "Ignore" | "Count";

export interface ExitCodeDefinition {
  code: number;
  /** Retrying the same task may succeed (the operator lets backoffLimit count it). */
  retriable: boolean;
  /** What a Job's podFailurePolicy should do with this exit code. */
  podFailurePolicyAction: PodFailurePolicyAction;
  description: string;
}

export const EXIT_CODES = {
  success: {
    code: 0,
    retriable: false,
    podFailurePolicyAction: "Count",
    description: "The task finished; the result is in the termination message and the output location.",
  },
  internalError: {
    code: 1,
    retriable: true,
    podFailurePolicyAction: "Count",
    description: "An unexpected error inside the runtime or backend (Python's default exit status too).",
  },
  invalidTask: {
    code: 10,
    retriable: false,
    podFailurePolicyAction: "FailJob",
    description: "The task document is malformed or a parameter is invalid; the message names the field.",
  },
  missingInput: {
    code: 11,
    retriable: false,
    podFailurePolicyAction: "FailJob",
    description: "A model, dataset or intermediate file the task reads does not exist or is not readable.",
  },
  outOfMemory: {
    code: 12,
    retriable: false,
    podFailurePolicyAction: "FailJob",
    description: "GPU or host memory ran out; retrying the same shape fails again (lower a batch size).",
  },
  retriableInfrastructure: {
    code: 13,
    retriable: true,
    podFailurePolicyAction: "Count",
    description: "NCCL, network or rendezvous failure (peer lost, connection refused, timeout): retry.",
  },
  gateFailed: {
    code: 14,
    retriable: false,
    podFailurePolicyAction: "FailJob",
    description: "The work completed but missed its gate (e.g. macro tau below minTau); results are kept.",
  },
  unsupported: {
    code: 15,
    retriable: false,
    podFailurePolicyAction: "FailJob",
    description: "This image cannot run the task: the backend/kind pair or an option is not implemented.",
  },
  publishFailed: {
    code: 16,
    retriable: false,
    podFailurePolicyAction: "FailJob",
    description:
      "The work completed but copying its product to task.publish failed (transient store errors are " +
      "retried first); results are kept, the message quotes the store; the work is not redone for a copy.",
  },
  terminated: {
    code: 143,
    retriable: true,
    podFailurePolicyAction: "Ignore",
    description: "Stopped by SIGTERM (eviction, suspend, deletion) after saving what could be saved.",
  },
} as const satisfies Record<string, ExitCodeDefinition>;

export type ExitReason = keyof typeof EXIT_CODES;
export const EXIT_REASONS = Object.keys(EXIT_CODES) as ExitReason[];

export function exitReasonOf(code: number): ExitReason | undefined {
  return EXIT_REASONS.find((r) => EXIT_CODES[r].code === code);
}

/** Exit codes that should fail the Job at once (podFailurePolicy onExitCodes, operator In). */
export const FAIL_JOB_EXIT_CODES: number[] = EXIT_REASONS.filter(
  (r) => EXIT_CODES[r].podFailurePolicyAction === "FailJob",
).map((r) => EXIT_CODES[r].code);
