// SpecServe: target + draft on a real engine, autoscaled on measured acceptance and latency SLOs.
import { z } from "zod";
import {
  acceptanceByPosition,
  boundedRecord,
  builtInDraft,
  conditions,
  duration,
  gpuCount,
  modelSource,
  objectName,
  placement,
  podResources,
  positiveDuration,
  runtimeImage,
  servingEngine,
  servingMethod,
} from "./common.ts";
import { exactlyOne, immutable, withRules } from "./rules.ts";

/** Engine flags SpecOps sets itself; extraEngineArgs may not override them. */
export const MANAGED_ENGINE_FLAGS = [
  "model",
  "served-model-name",
  "host",
  "port",
  "tensor-parallel-size",
  "tp-size",
  "tp",
  "enable-metrics",
  "disable-log-stats",
  "hf-token",
  "api-key",
  "speculative-.*",
  "speculative_.*",
] as const;
const managedFlagPattern = `^--(${MANAGED_ENGINE_FLAGS.join("|")})(=.*)?$`;

export const servedDraft = withRules(
  z.object({
    source: modelSource.optional().describe("A draft checkpoint."),
    draftTrainingRef: z
      .object({ name: objectName("DraftTraining") })
      .optional()
      .describe("Serve the draft a DraftTraining produced (its status.checkpoint); waits while it trains."),
    builtIn: builtInDraft.optional(),
  }),
  [
    {
      rule: exactlyOne("source", "draftTrainingRef", "builtIn"),
      message: "set exactly one of draft.source, draft.draftTrainingRef or draft.builtIn",
    },
  ],
).describe("The draft model.");

export const slo = z
  .object({
    ttftP95: positiveDuration("95th percentile time to first token, e.g. 500ms.").optional(),
    tpotP95: positiveDuration("95th percentile time per output token, e.g. 25ms.").optional(),
    minTokensPerSecondPerUser: z
      .number()
      .gt(0)
      .max(100000)
      .optional()
      .describe("Minimum generation speed each user sees (tokens/s/user)."),
    minTau: z
      .number()
      .min(1)
      .max(64)
      .optional()
      .describe("Minimum acceptance length tau (bonus token counted) before AcceptanceHealthy turns False."),
  })
  .describe("Service level objectives the autoscaler keeps.");

/** A label name as PromQL writes it (the matchers are built by the operator, never passed through). */
const PROM_LABEL = "^[a-zA-Z_][a-zA-Z0-9_]*$";

export const prometheusSignals = withRules(
  z.object({
    url: z
      .string()
      .max(2048)
      .regex(
        /^https?:\/\/([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(\/[^\s?#@]*)?$/,
        {
          error:
            "must be an http(s) URL of a Prometheus server without credentials, query or fragment, such as http://prometheus.monitoring:9090",
        },
      )
      .describe(
        "Base URL of the Prometheus HTTP API (its /api/v1/query is read), e.g. http://prometheus.monitoring:9090 " +
          "or a path prefix such as https://thanos.example/prometheus; credentials go in a Secret, never in the URL.",
      ),
    bearerTokenSecretRef: z
      .object({
        name: objectName("Secret"),
        key: z.string().min(1).max(253).default("token").describe("Key in the Secret holding the token."),
      })
      .optional()
      .describe("Send this bearer token (Authorization: Bearer), read from a Secret in this namespace."),
    basicAuthSecretRef: z
      .object({
        name: objectName("Secret"),
        usernameKey: z.string().min(1).max(253).default("username").describe("Key holding the user name."),
        passwordKey: z.string().min(1).max(253).default("password").describe("Key holding the password."),
      })
      .optional()
      .describe("Send HTTP basic auth, read from a Secret in this namespace."),
    namespaceLabel: z
      .string()
      .max(128)
      .regex(new RegExp(PROM_LABEL), { error: "must be a Prometheus label name" })
      .default("namespace")
      .describe(
        "Label carrying the pod's namespace on the engines' series (as PodMonitors and kubernetes_sd relabelling set it).",
      ),
    podLabel: z
      .string()
      .max(128)
      .regex(new RegExp(PROM_LABEL), { error: "must be a Prometheus label name" })
      .default("pod")
      .describe("Label carrying the pod's name; only the ready serving pods' series are read."),
    matchers: boundedRecord(
      z.string().max(1024),
      16,
      "Further equality matchers for the engines' series, e.g. {job: vllm} when several jobs scrape the pods.",
    ).optional(),
  }),
  [
    {
      rule: "!has(self.bearerTokenSecretRef) || !has(self.basicAuthSecretRef)",
      message: "set at most one of prometheus.bearerTokenSecretRef and prometheus.basicAuthSecretRef",
      fieldPath: ".bearerTokenSecretRef",
    },
    {
      rule: `!has(self.matchers) || self.matchers.all(k, k.matches('${PROM_LABEL}') && !k.startsWith('__'))`,
      message: "prometheus.matchers keys must be Prometheus label names (not starting with __)",
      fieldPath: ".matchers",
    },
  ],
).describe("Where and how to read the engines' metrics from a Prometheus HTTP API.");

export const signalsSource = withRules(
  z.object({
    source: z
      .enum(["Direct", "Prometheus"])
      .default("Direct")
      .describe(
        "Direct: scrape every ready serving pod's /metrics. Prometheus: query the same series from a Prometheus " +
          "HTTP API over the window (increase() of counters and histograms, SGLang's snapshot gauges read as they are).",
      ),
    prometheus: prometheusSignals.optional(),
  }),
  [
    {
      rule: "!has(self.source) || self.source != 'Prometheus' || has(self.prometheus)",
      message: "signals.prometheus (with its url) is required when signals.source is Prometheus",
      fieldPath: ".prometheus",
      reason: "FieldValueRequired",
    },
  ],
).describe("Where the autoscaler reads the engines' signals from.");

export const autoscaling = withRules(
  z.object({
    enabled: z
      .boolean()
      .default(false)
      .describe("Scale on measured signals; spec.replicas is ignored while enabled."),
    minReplicas: z.int().min(0).max(10000).default(1).describe("Fewest replicas."),
    maxReplicas: z.int().min(1).max(10000).describe("Most replicas."),
    slo: slo.prefault({}),
    window: positiveDuration("Window over which signals are measured.").default("2m"),
    scaleUpStabilization: duration("Hold a scale-up decision this long before acting.").default("0s"),
    scaleDownStabilization: duration(
      "Keep the highest recommendation of this long a window before scaling down.",
    ).default("5m"),
    // The defaults are the fleet simulator's (`npm run bench -- autoscaler` runs them): 4 up / 1 down
    // cost it more GPU-hours and churn on a 3x burst, with the stabilisation windows guarding the way down.
    maxScaleUpRate: z.int().min(1).max(10000).default(8).describe("Most replicas added per minute."),
    maxScaleDownRate: z.int().min(1).max(10000).default(8).describe("Most replicas removed per minute."),
    tolerance: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe("Relative change in desired replicas ignored as noise (0.1: act only beyond 10%)."),
    signals: signalsSource.prefault({}),
    spsTable: z
      .object({
        configMapName: objectName("ConfigMap"),
        key: z.string().min(1).max(253).default("sps.json").describe("Key holding the table."),
      })
      .optional()
      .describe(
        "Measured steps-per-second table SPS(B) for spec.resources.gpuProduct (docs/benchmarks.md#sps-table); the first-principles model when unset.",
      ),
    spsLearning: z
      .enum(["Online", "Off"])
      .default("Online")
      .describe(
        "Online: correct SPS(B) (the table or the model) from the engines' measured step times, where they are slower (vLLM: counted steps; SGLang: per-token latency x acceptance length). Off: the table or model as given.",
      ),
  }),
  [
    {
      rule: "self.minReplicas <= self.maxReplicas",
      message: "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
      fieldPath: ".minReplicas",
    },
    {
      rule: "!self.enabled || self.minReplicas >= 1",
      message:
        "autoscaling.minReplicas must be at least 1 while autoscaling is enabled (no scale from zero yet)",
      fieldPath: ".minReplicas",
    },
  ],
).describe("Acceptance- and SLO-aware autoscaling.");

export const speculative = withRules(
  z.object({
    numSpeculativeTokens: z
      .int()
      .min(1)
      .max(32)
      .optional()
      .describe(
        "Draft tokens k per round (vLLM num_speculative_tokens = k; SGLang verifies k + 1: EAGLE3 steps k, DFLASH/DSPARK draft tokens k + 1); default from the draft.",
      ),
    loadAdaptation: z
      .enum(["Off", "Engine"])
      .default("Off")
      .describe(
        "Engine-level load adaptation: vLLM dynamic speculation by batch size, SGLang adaptive speculation.",
      ),
    lengthByBatchSize: z
      .array(
        z
          .object({
            minBatch: z.int().min(1).describe("Smallest batch size of the range."),
            maxBatch: z.int().min(1).describe("Largest batch size of the range."),
            tokens: z.int().min(0).max(32).describe("Draft tokens in this range; 0 turns speculation off."),
          })
          .describe("Draft length for a batch-size range."),
      )
      .max(16)
      .optional()
      .describe("Draft length per batch-size range when loadAdaptation is Engine (vLLM)."),
    lengthTuning: z
      .enum(["Off", "Recommend", "Apply"])
      .default("Recommend")
      .describe(
        "Draft length per batch-size range tuned to load from live acceptance and SPS(B) (needs autoscaling.enabled): Off, Recommend (status only) or Apply (vLLM with loadAdaptation Engine: a schedule predicted to gain enough goodput is tried on a canary through the rollout gate and kept in status.rollout.lengths; never over a lengthByBatchSize the user set).",
      ),
    adaptiveVerification: z
      .boolean()
      .default(false)
      .describe("DSpark confidence-scheduled verification (vLLM, drafts with a confidence head)."),
  }),
  [
    {
      rule: "!has(self.lengthByBatchSize) || self.loadAdaptation == 'Engine'",
      message: "speculative.lengthByBatchSize needs loadAdaptation: Engine",
      fieldPath: ".lengthByBatchSize",
    },
    {
      rule: "!has(self.lengthByBatchSize) || self.lengthByBatchSize.all(r, r.minBatch <= r.maxBatch)",
      message: "each lengthByBatchSize range needs minBatch <= maxBatch",
      fieldPath: ".lengthByBatchSize",
    },
    {
      // vLLM refuses a schedule that leaves a batch size undefined or ambiguous at start-up.
      rule: "!has(self.lengthByBatchSize) || (self.lengthByBatchSize.exists(r, r.minBatch == 1) && self.lengthByBatchSize.all(a, self.lengthByBatchSize.all(b, a == b || a.maxBatch < b.minBatch || b.maxBatch < a.minBatch)))",
      message: "lengthByBatchSize ranges must not overlap, and one must start at minBatch 1",
      fieldPath: ".lengthByBatchSize",
    },
    {
      rule: "!has(self.lengthTuning) || self.lengthTuning != 'Apply' || self.loadAdaptation == 'Engine'",
      message:
        "speculative.lengthTuning Apply needs loadAdaptation: Engine (the engine switches the draft length by batch size)",
      fieldPath: ".lengthTuning",
    },
  ],
).describe("Speculative decoding settings.");

export const specServeSpec = withRules(
  z.object({
    target: modelSource.describe("The served target model. Immutable."),
    draft: servedDraft,
    method: servingMethod.describe("Speculative method, always passed to the engine explicitly. Immutable."),
    engine: servingEngine.default("vllm"),
    speculative: speculative.prefault({}),
    extraEngineArgs: z
      .array(z.string().max(1024))
      .max(64)
      .optional()
      .describe(
        "Extra engine command-line arguments; flags SpecOps manages (model, port, speculative-*, ...) are refused.",
      ),
    replicas: z
      .int()
      .min(0)
      .max(10000)
      .default(1)
      .describe("Replicas when autoscaling is off (the scale subresource)."),
    autoscaling: autoscaling.optional(),
    rollout: z
      .object({
        minTau: z
          .number()
          .min(1)
          .max(64)
          .optional()
          .describe("A new draft must reach this tau on live traffic."),
        maxTauDrop: z
          .number()
          .min(0)
          .max(1)
          .default(0.05)
          .describe("A new draft may lose at most this share of the current draft's tau."),
        canaryReplicas: z.int().min(1).max(100).default(1).describe("Replicas that try a new draft first."),
        analysisWindow: positiveDuration("How long the canary is measured.").default("10m"),
        minRounds: z
          .int()
          .min(1)
          .max(100_000_000)
          .default(2000)
          .describe("Verification rounds both the canary and the current draft need before a decision."),
        confidence: z
          .number()
          .min(0.5)
          .max(0.9999)
          .default(0.95)
          .describe("One-sided confidence of the bound a promotion or rollback must clear."),
      })
      .prefault({})
      .describe("Gate for rolling out a new draft."),
    drift: z
      .object({
        enabled: z.boolean().default(true).describe("Watch acceptance for drift from its baseline."),
        baselineWindow: positiveDuration("Window that defines the baseline tau.").default("1h"),
        tolerance: z.number().gt(0).max(1).default(0.15).describe("Relative tau drop that counts as drift."),
      })
      .prefault({})
      .describe("Acceptance drift detection (traffic mix changes lower tau without a change in load)."),
    resources: podResources
      .extend({
        gpusPerReplica: gpuCount("GPUs per node of a replica (tensor parallel size).", 1),
        nodesPerReplica: z
          .int()
          .min(1)
          .max(64)
          .default(1)
          .describe(
            "Nodes (pods) per replica; above 1 a replica is a LeaderWorkerSet group (its CRD must be installed).",
          ),
      })
      .prefault({})
      .describe("Compute of each replica."),
    placement: placement.optional(),
    runtime: runtimeImage.optional(),
    port: z.int().min(1).max(65535).default(8000).describe("Port of the OpenAI-compatible endpoint."),
    apiKeySecretRef: z
      .object({
        name: objectName("Secret"),
        key: z.string().min(1).max(253).describe("Key in the Secret holding the API key."),
      })
      .optional()
      .describe(
        "Require this API key on the endpoint (Authorization: Bearer); read by the engine from the Secret, " +
          "never written inline.",
      ),
  }),
  [
    immutable("target"),
    immutable("method"),
    {
      rule: `!has(self.extraEngineArgs) || self.extraEngineArgs.all(a, !a.matches('${managedFlagPattern}'))`,
      message:
        "extraEngineArgs may not set flags SpecOps manages (model, port, host, tensor parallel, speculative-*, tokens)",
      fieldPath: ".extraEngineArgs",
    },
    {
      rule: "!has(self.speculative.lengthTuning) || self.speculative.lengthTuning != 'Apply' || self.engine == 'vllm'",
      message:
        "speculative.lengthTuning Apply needs engine vllm (num_speculative_tokens_per_batch_size); SGLang adapts the length itself",
      fieldPath: ".speculative.lengthTuning",
    },
    {
      rule: "self.engine != 'vllm' || self.speculative.loadAdaptation != 'Engine' || has(self.speculative.lengthByBatchSize) || (has(self.speculative.lengthTuning) && self.speculative.lengthTuning == 'Apply')",
      message:
        "speculative.loadAdaptation Engine on vllm needs lengthByBatchSize, or lengthTuning: Apply to let SpecOps tune it",
      fieldPath: ".speculative.lengthByBatchSize",
    },
    {
      rule: "!self.speculative.adaptiveVerification || (self.method == 'dspark' && self.engine == 'vllm')",
      message: "speculative.adaptiveVerification needs method dspark on engine vllm",
      fieldPath: ".speculative.adaptiveVerification",
    },
    {
      rule: "self.method == 'mtp' ? has(self.draft.builtIn) : (!has(self.draft.builtIn) || self.method == 'dspark')",
      message: "method mtp needs draft.builtIn, and draft.builtIn needs method mtp or dspark",
      fieldPath: ".draft",
    },
    {
      rule: "self.resources.nodesPerReplica == 1 || self.engine != 'reference'",
      message: "the reference engine serves a replica in one pod",
      fieldPath: ".resources.nodesPerReplica",
    },
    {
      rule: "self.engine == 'reference' || !self.target.uri.startsWith('builtin://')",
      message: "builtin:// models exist only for the reference engine",
      fieldPath: ".engine",
    },
    {
      rule: "self.engine == 'reference' || self.resources.gpusPerReplica >= 1",
      message: "vllm and sglang need at least one GPU per replica",
      fieldPath: ".resources.gpusPerReplica",
    },
  ],
).describe("Desired serving.");
export type SpecServeSpec = z.infer<typeof specServeSpec>;

export const measuredSignals = z
  .object({
    tau: z.number().min(0).optional().describe("Mean acceptance length per round, bonus token counted."),
    tauTime: z
      .string()
      .optional()
      .describe(
        "End of the window tau was measured in (RFC 3339); a window without verification rounds keeps the last tau.",
      ),
    rounds: z.int().min(0).optional().describe("Verification rounds tau was measured over."),
    acceptanceByPosition,
    ttftP50: z.number().min(0).optional().describe("Median time to first token, seconds."),
    ttftP95: z.number().min(0).optional().describe("95th percentile time to first token, seconds."),
    tpotP50: z.number().min(0).optional().describe("Median time per output token, seconds."),
    tpotP95: z.number().min(0).optional().describe("95th percentile time per output token, seconds."),
    tokensPerSecondPerUser: z.number().min(0).optional().describe("Generation speed per running request."),
    runningRequests: z.number().min(0).optional().describe("Requests being decoded, all replicas."),
    waitingRequests: z.number().min(0).optional().describe("Requests queued, all replicas."),
    throughput: z.number().min(0).optional().describe("Generated tokens per second, all replicas."),
    window: z.string().optional().describe("Window the figures cover."),
    time: z
      .string()
      .optional()
      .describe(
        "When the figures last changed (RFC 3339); a window measuring the same figures writes nothing.",
      ),
  })
  .describe("Signals measured from the replicas' metrics.");

export const autoscalingStatus = z
  .object({
    reason: z
      .string()
      .max(64)
      .describe(
        "Why the last decision came out as it did: ScaleUp, ScaleDown, Steady, WithinTolerance, Stabilizing, RateLimited, AtLimit, MetricsMissing, MetricsStale, TooFewPodsScraped, NoCapacityAtSlo, Measuring or Disabled.",
      ),
    message: z.string().max(1024).optional().describe("The last decision in words and figures."),
    desiredReplicas: z
      .int()
      .min(0)
      .optional()
      .describe("Replicas the autoscaler last decided on (and wrote through /scale)."),
    lastScaleTime: z
      .string()
      .optional()
      .describe("When the autoscaler last changed spec.replicas (RFC 3339)."),
    tau: z.number().min(0).optional().describe("Live tau the decision used."),
    projectedTau: z
      .number()
      .min(0)
      .optional()
      .describe("Tau the capacity was computed for (lower than tau when tau is falling)."),
    baselineTau: z.number().min(0).optional().describe("Drift baseline: live tau after the current draft."),
    arrivalRate: z.number().min(0).optional().describe("Requests per second the decision planned for."),
    concurrency: z.number().min(0).optional().describe("Requests running and waiting, all replicas."),
    maxConcurrencyPerReplica: z
      .number()
      .min(0)
      .optional()
      .describe("Most requests a replica runs while every SLO holds, at the projected tau."),
    predictedTokensPerSecondPerUser: z
      .number()
      .min(0)
      .optional()
      .describe("Per-user speed the capacity model predicts at that concurrency (tau x SPS(B))."),
    measuredTokensPerSecondPerUser: z.number().min(0).optional().describe("Per-user speed measured."),
    spsSource: z
      .string()
      .max(512)
      .optional()
      .describe(
        "Where SPS(B) came from: the ConfigMap table, or the first-principles model (and why), and its online correction.",
      ),
    spsLearned: z
      .object({
        prior: z
          .string()
          .max(512)
          .describe("The table or model the factors correct (another one starts over)."),
        windows: z.int().min(0).describe("Windows learned from."),
        buckets: z
          .array(
            z
              .object({
                batch: z
                  .int()
                  .min(1)
                  .describe("Smallest batch (tokens verified per step) of the bucket [batch, 2 x batch)."),
                factor: z.number().positive().describe("Measured SPS over the prior's in this bucket."),
                windows: z.int().min(0).describe("Windows observed (older ones forgotten)."),
              })
              .describe("One batch-size bucket's correction."),
          )
          .max(16)
          .describe("Per batch-size bucket, smallest first."),
      })
      .optional()
      .describe(
        "SPS(B) learned online (spsLearning Online): kept here so that a restarted operator resumes from it.",
      ),
    speculationLength: z
      .object({
        action: z.enum(["none", "recommend", "apply"]).describe("What the tuning does with it."),
        ranges: z
          .array(
            z
              .object({
                minBatch: z.int().min(1).describe("Smallest batch size of the range."),
                maxBatch: z.int().min(1).describe("Largest batch size of the range."),
                tokens: z.int().min(0).max(64).describe("Recommended draft tokens in this range."),
              })
              .describe("Draft length for a batch-size range."),
          )
          .max(32)
          .describe("Recommended draft length per batch-size range."),
        tokensAtCurrentBatch: z.int().min(0).optional().describe("Recommended length at the current load."),
        currentBatch: z
          .number()
          .min(0)
          .optional()
          .describe("Requests per replica the recommendation was made at."),
        tau: z
          .number()
          .min(0)
          .optional()
          .describe("tau at the configured draft length from the acceptance profile the ranges came from."),
        acceptanceByPosition: acceptanceByPosition.describe(
          "Acceptance by position the ranges were computed from (diluted positions under an applied schedule replaced).",
        ),
        predictedGain: z
          .number()
          .optional()
          .describe("Predicted goodput gain at the current load (0.1 = +10%)."),
        reason: z.string().max(1024).describe("Why this action."),
      })
      .optional()
      .describe("Draft length tuned to load (speculative.lengthTuning)."),
  })
  .describe("The autoscaler's last decision and the figures that drove it.");

const lengthRanges = (what: string) =>
  z
    .array(
      z
        .object({
          minBatch: z.int().min(1).describe("Smallest batch size of the range."),
          maxBatch: z.int().min(1).describe("Largest batch size of the range."),
          tokens: z.int().min(0).max(64).describe("Draft tokens in this range; 0 turns speculation off."),
        })
        .describe("Draft length for a batch-size range."),
    )
    .max(32)
    .describe(what);

export const lengthRolloutStatus = z
  .object({
    applied: lengthRanges(
      "Draft length per batch-size range the stable pods run, set by lengthTuning Apply (a lengthByBatchSize in the spec wins over it).",
    ).optional(),
    appliedTime: z.string().optional().describe("When the applied schedule was promoted (RFC 3339)."),
    appliedGain: z
      .number()
      .optional()
      .describe("Predicted goodput gain of the applied schedule (0.1 = +10%)."),
    appliedAcceptanceByPosition: acceptanceByPosition.describe(
      "Acceptance by position when the applied schedule was proposed: positions it drafts less often are read from here, not from the diluted live counters.",
    ),
    candidate: lengthRanges("The schedule being tried, or last tried.").optional(),
    predictedGain: z
      .number()
      .optional()
      .describe("Predicted goodput gain of the candidate at the load it was proposed at."),
    proposedTau: z.number().min(0).optional().describe("Live tau the candidate was computed from."),
    proposedBatch: z
      .number()
      .min(0)
      .optional()
      .describe("Requests per replica the candidate was computed at."),
    proposedAcceptanceByPosition: acceptanceByPosition.describe(
      "Acceptance by position the candidate was computed from.",
    ),
    candidateTokensPerSecondPerUser: z
      .number()
      .min(0)
      .optional()
      .describe("Per-user speed measured on the canary pods over the analysis window."),
    currentTokensPerSecondPerUser: z
      .number()
      .min(0)
      .optional()
      .describe("Per-user speed measured on the stable pods over the same window."),
    outcome: z
      .enum(["Promoted", "RolledBack", "Superseded"])
      .optional()
      .describe(
        "How the candidate's rollout ended; a RolledBack schedule is not tried again until tau or the load move materially.",
      ),
    endTime: z
      .string()
      .optional()
      .describe("When the last length rollout ended (RFC 3339); a cool-down runs from it."),
  })
  .describe("Draft length per batch size applied by speculative.lengthTuning Apply, and its rollouts.");

export const specServeStatus = z
  .object({
    observedGeneration: z.int().min(0).optional().describe("Generation last acted on."),
    conditions,
    replicas: z.int().min(0).optional().describe("Replicas that exist."),
    readyReplicas: z.int().min(0).optional().describe("Replicas ready to serve."),
    desiredReplicas: z
      .int()
      .min(0)
      .optional()
      .describe("Replicas the autoscaler (or spec.replicas) asks for."),
    selector: z.string().optional().describe("Label selector of the replicas' pods (scale subresource)."),
    state: z
      .enum(["Pending", "WaitingForDraft", "Progressing", "Ready", "Degraded", "Paused", "Failed"])
      .optional()
      .describe("One word for where the SpecServe is (kubectl get ss)."),
    draft: z
      .string()
      .max(512)
      .optional()
      .describe("The draft being served: its URI, or built-in (inside the target checkpoint)."),
    endpoint: z.string().optional().describe("In-cluster URL of the OpenAI-compatible endpoint."),
    signals: measuredSignals.optional(),
    decisions: z
      .array(
        z
          .object({
            time: z.string().describe("When (RFC 3339)."),
            from: z.int().min(0).describe("Replicas before."),
            to: z.int().min(0).describe("Replicas after."),
            reason: z.string().max(1024).describe("Why, in words and figures."),
          })
          .describe("One scaling decision."),
      )
      .max(20)
      .optional()
      .describe("Recent autoscaler decisions, newest first."),
    autoscaling: autoscalingStatus.optional(),
    rollout: z
      .object({
        state: z.enum(["Stable", "Canary", "RolledBack", "Promoted"]).describe("Where the draft rollout is."),
        currentDraft: z.string().optional().describe("Draft serving most traffic."),
        candidateDraft: z.string().optional().describe("Draft being tried."),
        candidateTau: z.number().min(0).optional().describe("Candidate's measured tau."),
        currentTau: z.number().min(0).optional().describe("Current draft's tau over the same window."),
        candidateRounds: z
          .int()
          .min(0)
          .optional()
          .describe("Verification rounds the candidate was measured on."),
        currentRounds: z
          .int()
          .min(0)
          .optional()
          .describe("Verification rounds the current draft was measured on."),
        startTime: z.string().optional().describe("When the canary started (RFC 3339)."),
        analysisStartTime: z
          .string()
          .optional()
          .describe(
            "When the analysis window began, at the canary pods' first scrape (RFC 3339); its counter totals " +
              "are kept in the ConfigMap NAME-rollout-baseline, so a restarted operator resumes the window.",
          ),
        candidateKind: z
          .enum(["Draft", "Length"])
          .optional()
          .describe(
            "What the candidate changes: the draft, or the draft length per batch size (lengthTuning Apply).",
          ),
        lengths: lengthRolloutStatus.optional(),
        message: z.string().max(1024).optional().describe("Details."),
      })
      .optional()
      .describe("Draft rollout state."),
  })
  .describe("Observed state of the SpecServe.");
