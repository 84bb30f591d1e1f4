// Building blocks shared by the three SpecOps kinds. Every field carries a description: it becomes
// `kubectl explain` text through the generated CRDs.
import { z } from "zod";
import { atMostOne, type CelRule, exactlyOne, withRules } from "./rules.ts";

export const GROUP = "specops.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Name of an object in the same namespace (DNS-1123 subdomain). */
export const objectName = (what: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(DNS1123_SUBDOMAIN, { error: "must be a lowercase DNS-1123 name" })
    .describe(`Name of the ${what} in the same namespace.`);

/** A string-keyed map with bounds, so CEL rules over it stay within the API server's cost budget. */
export const boundedRecord = <V extends z.ZodType>(value: V, maxProperties: number, description: string) =>
  z.record(z.string().max(253), value).meta({ description, maxProperties });

export const labelName = () => z.string().min(1).max(63).regex(DNS1123_LABEL);

/** Go-style durations as Kubernetes writes them: 500ms, 30s, 5m, 1h30m. */
export const duration = (description: string) =>
  z
    .string()
    .max(32)
    .regex(/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/, { error: "must be a duration such as 500ms, 30s, 5m or 1h" })
    .describe(description);

const DURATION_PART = "[0-9]+(\\.[0-9]+)?(ms|s|m|h)";
/** One part whose number is not zero: 1s, 0.5s, 10m (not 0s, 0.0m). */
const NONZERO_PART = "([0-9]*[1-9][0-9]*(\\.[0-9]+)?|[0-9]+\\.[0-9]*[1-9][0-9]*)(ms|s|m|h)";

/**
 * A duration that must be longer than zero (intervals, windows, latency SLOs): "0s" or "0m0s" is
 * refused at admission, where an interval of zero would poll without pause and a zero window or SLO
 * means nothing. A regular expression (no CEL), so the API server and zod refuse the same strings.
 */
export const positiveDuration = (description: string) =>
  z
    .string()
    .max(32)
    .regex(new RegExp(`^(${DURATION_PART})*${NONZERO_PART}(${DURATION_PART})*$`), {
      error: "must be a duration longer than zero, such as 500ms, 30s, 5m or 1h",
    })
    .describe(description);

/** Kubernetes resource quantity (int-or-string), e.g. 8, 500m, 64Gi. */
export const quantity = (description: string) =>
  z
    .union([
      z.int().min(0),
      z.string().regex(/^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/, {
        error: "must be a Kubernetes quantity such as 8, 500m or 64Gi",
      }),
    ])
    .meta({ description, "x-kubernetes-int-or-string": true });

export const secretRef = z
  .object({ name: objectName("Secret") })
  .describe(
    "A Secret in the same namespace whose keys become environment variables of the pods that read this " +
      "location (HF_TOKEN for hf://, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and optionally " +
      "AWS_SESSION_TOKEN for s3://, GOOGLE_APPLICATION_CREDENTIALS_JSON (a service-account key) for gs://). " +
      "Omit it to use the pod's cloud identity (IRSA, GKE Workload Identity) through the default " +
      "credential chain. Credentials are never written inline.",
  );

const HF = "hf://[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*";
const S3 = String.raw`s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s@]*)?`;
const GS = String.raw`gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s@]*)?`;
const PVC = String.raw`pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[^\s@]*)?`;
const BUILTIN = "builtin://[a-z0-9][a-z0-9.-]*";
const uriPattern = (...alternatives: string[]) => new RegExp(`^(${alternatives.join("|")})$`);

/** Where an s3:// or gs:// location is served from, beside its URI (S3-compatible stores, emulators). */
export const objectStoreFields = {
  endpoint: z
    .string()
    .max(512)
    .regex(/^https?:\/\/[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(\/[^\s]*)?$/, {
      error: "must be an http(s) URL such as https://minio.storage.svc:9000",
    })
    .optional()
    .describe(
      "Endpoint of the store for s3:// (MinIO, Ceph RGW, Cloudflare R2, ...) or gs:// (a private or " +
        "emulated GCS endpoint); default the provider's own.",
    ),
  region: z
    .string()
    .max(64)
    .regex(/^[a-z0-9-]+$/, { error: "must be a region name such as us-east-1" })
    .optional()
    .describe("Region of an s3:// bucket, e.g. us-east-1 (auto for R2); default the client's."),
  pathStyle: z
    .boolean()
    .optional()
    .describe(
      "Address s3:// buckets by path (endpoint/bucket/key) instead of by virtual host; most " +
        "S3-compatible stores need it.",
    ),
};

// What S3 and GCS refuse as bucket names beyond the characters and lengths the URI patterns check
// (docs: AWS "Bucket naming rules", Google Cloud "Bucket names").
export const objectStoreRules: CelRule[] = [
  {
    rule: "!has(self.region) || self.uri.startsWith('s3://')",
    message: "region applies only to s3:// locations",
    fieldPath: ".region",
  },
  {
    rule: "!has(self.pathStyle) || self.uri.startsWith('s3://')",
    message: "pathStyle applies only to s3:// locations",
    fieldPath: ".pathStyle",
  },
  {
    rule: "!has(self.endpoint) || self.uri.startsWith('s3://') || self.uri.startsWith('gs://')",
    message: "endpoint applies only to s3:// and gs:// locations",
    fieldPath: ".endpoint",
  },
  {
    rule: "!self.uri.matches('^(s3|gs)://[^/]*[.][.]')",
    message: "bucket names may not contain two adjacent periods",
    fieldPath: ".uri",
  },
  {
    rule: "!self.uri.matches('^(s3|gs)://[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+(/|$)')",
    message: "bucket names may not be IP addresses",
    fieldPath: ".uri",
  },
  {
    rule: "!self.uri.matches('^s3://(xn--|sthree-|amzn-s3-demo-)')",
    message: "S3 bucket names may not start with xn--, sthree- or amzn-s3-demo-",
    fieldPath: ".uri",
  },
  {
    rule: "!self.uri.matches('^s3://[^/]*(-s3alias|--ol-s3|[.]mrap|--x-s3|--table-s3)(/|$)')",
    message: "S3 bucket names may not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3",
    fieldPath: ".uri",
  },
  {
    rule: "!self.uri.matches('^gs://([^/]*[.])?[a-z0-9_-]{64,}([.]|/|$)')",
    message: "GCS bucket names are at most 63 characters, or 222 with dots and at most 63 between them",
    fieldPath: ".uri",
  },
  {
    rule: "!self.uri.matches('^gs://(goog|[^/]*(google|g00gle|googl3|go0gle|g0ogle))')",
    message: "GCS bucket names may not start with goog or contain google or a misspelling of it",
    fieldPath: ".uri",
  },
];

const MODEL_URI_HELP =
  "hf://org/name (Hugging Face), s3://bucket/path, gs://bucket/path, pvc://claim/path (a PVC in the " +
  "same namespace) or builtin://name (a tiny model shipped with the runtime, reference backend only)";

export const modelSource = withRules(
  z.object({
    uri: z
      .string()
      .max(512)
      .regex(uriPattern(HF, S3, GS, PVC, BUILTIN), { error: `must be a model URI: ${MODEL_URI_HELP}` })
      .describe(`Where the model lives: ${MODEL_URI_HELP}.`),
    revision: z
      .string()
      .max(128)
      .regex(/^[A-Za-z0-9._/-]+$/)
      .optional()
      .describe("Git revision (branch, tag or commit) of an hf:// model. Pin it for reproducible runs."),
    credentialsSecretRef: secretRef.optional(),
    ...objectStoreFields,
  }),
  [
    {
      rule: "!has(self.revision) || self.uri.startsWith('hf://')",
      message: "revision is only meaningful for hf:// URIs",
      fieldPath: ".revision",
    },
    ...objectStoreRules,
  ],
).describe("A model location.");
export type ModelSource = z.infer<typeof modelSource>;

const DATA_URI_HELP =
  "hf://org/dataset, s3://bucket/file.jsonl, gs://bucket/file.jsonl, pvc://claim/path or builtin://name " +
  "(a synthetic set shipped with the runtime, reference backend only)";
export const datasetSource = withRules(
  z.object({
    uri: z
      .string()
      .max(512)
      .regex(uriPattern(HF, S3, GS, PVC, BUILTIN), { error: `must be a dataset URI: ${DATA_URI_HELP}` })
      .describe(`Where the data lives: ${DATA_URI_HELP}.`),
    revision: z.string().max(128).optional().describe("Git revision of an hf:// dataset."),
    credentialsSecretRef: secretRef.optional(),
    ...objectStoreFields,
  }),
  objectStoreRules,
).describe("A dataset location (JSONL, one sample per line, or a Hugging Face dataset).");

export const outputLocation = withRules(
  z.object({
    uri: z
      .string()
      .max(512)
      .regex(uriPattern(S3, GS, PVC), {
        error: "must be s3://bucket/path, gs://bucket/path or pvc://claim/path",
      })
      .describe("Where results are copied: s3://bucket/path, gs://bucket/path or pvc://claim/path."),
    credentialsSecretRef: secretRef.optional(),
    ...objectStoreFields,
  }),
  objectStoreRules,
).describe("A location the operator's pods write to.");

export type OutputLocation = z.infer<typeof outputLocation>;

/** status.output of a kind that copies its product to an object store: what arrived, verified there. */
export const publishedOutput = (what: string, description: string) =>
  z
    .object({
      uri: z.string().describe(`Where ${what} was copied (spec.output.uri).`),
      files: z.int().min(0).optional().describe("Files copied."),
      sizeBytes: z.int().min(0).optional().describe("Their total size in bytes."),
      checksum: z
        .string()
        .optional()
        .describe("sha256 over the sorted `name size md5` lines of the files, each verified in the store."),
      completionTime: z.string().optional().describe("When the copy finished (RFC 3339)."),
    })
    .optional()
    .describe(description);

export const draftMethod = z
  .enum(["dspark", "dflash", "eagle3"])
  .describe(
    "Speculative decoding method: dspark (parallel block drafter with Markov and confidence heads), dflash " +
      "(parallel block drafter) or eagle3 (autoregressive head on target hidden states).",
  );
export type DraftMethod = z.infer<typeof draftMethod>;

/** Methods an engine can serve: the trainable ones plus mtp, whose heads live in the target's weights. */
export const servingMethod = z
  .enum([...draftMethod.options, "mtp"])
  .describe(
    "Speculative method passed to the engine: dspark, dflash, eagle3, or mtp (multi-token-prediction heads " +
      "inside the target checkpoint, e.g. DeepSeek's; needs draft.builtIn).",
  );
export type ServingMethod = z.infer<typeof servingMethod>;

/** The draft ships inside the target checkpoint: no separate draft model is loaded. */
export const builtInDraft = z
  .object({})
  .describe(
    "The draft ships inside the target checkpoint (DeepSeek MTP heads; the DSpark drafter of " +
      "DeepSeek-V4-Pro-DSpark): the engine loads it from the target, no draft model is given.",
  );

export const jobBackend = z
  .enum(["deepspec", "reference"])
  .default("deepspec")
  .describe(
    "What runs the work: deepspec (GPU) or reference (tiny PyTorch models on CPU, for tests and demos).",
  );

export const servingEngine = z
  .enum(["vllm", "sglang", "reference"])
  .describe("Serving engine: vllm, sglang, or reference (tiny models on CPU, for tests and demos).");

export const toleration = z
  .object({
    key: z
      .string()
      .max(316)
      .optional()
      .describe("Taint key the toleration applies to; empty means all keys."),
    operator: z.enum(["Exists", "Equal"]).default("Equal").describe("Exists or Equal."),
    value: z.string().max(63).optional().describe("Taint value to match when operator is Equal."),
    effect: z
      .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"])
      .optional()
      .describe("Taint effect to match; empty matches all effects."),
    tolerationSeconds: z.int().min(0).optional().describe("How long a NoExecute taint is tolerated."),
  })
  .describe("A pod toleration, as in core/v1.");

export const placement = z
  .object({
    nodeSelector: boundedRecord(
      z.string().max(63),
      64,
      "Node labels the pods must match, e.g. a GPU pool.",
    ).optional(),
    tolerations: z.array(toleration).max(32).optional().describe("Tolerations added to every pod."),
    affinity: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({ description: "Pod affinity, as core/v1 Affinity; validated when pods are created." }),
    priorityClassName: z.string().max(253).optional().describe("PriorityClass of the pods."),
    schedulerName: z
      .string()
      .max(253)
      .optional()
      .describe("Scheduler of the pods, e.g. a Volcano or Kueue-integrated scheduler."),
    serviceAccountName: z.string().max(253).optional().describe("ServiceAccount the pods run as."),
  })
  .describe("Where and how the pods are scheduled.");

/** Compute of each pod except the GPU count, which each kind names for its own unit (node or replica). */
export const podResources = z
  .object({
    gpuProduct: z
      .string()
      .max(128)
      .optional()
      .describe("Required GPU product (node label nvidia.com/gpu.product), e.g. NVIDIA-H200."),
    gpuResourceName: z
      .string()
      .max(253)
      .default("nvidia.com/gpu")
      .describe("Extended resource name of the GPU, e.g. nvidia.com/gpu or amd.com/gpu."),
    cpu: quantity("CPU request and limit of each pod, e.g. 16 or 500m.").optional(),
    memory: quantity("Memory request and limit of each pod, e.g. 128Gi.").optional(),
  })
  .describe("Compute per pod.");

export const gpuCount = (description: string, defaultGpus: number) =>
  z.int().min(0).max(64).default(defaultGpus).describe(description);

export const runtimeImage = z
  .object({
    image: z
      .string()
      .max(512)
      .optional()
      .describe("Overrides the runtime image the operator is configured with (same contract required)."),
    imagePullPolicy: z
      .enum(["Always", "IfNotPresent", "Never"])
      .optional()
      .describe("Pull policy of the image."),
    imagePullSecrets: z
      .array(z.object({ name: objectName("Secret") }).describe("A pull Secret."))
      .max(8)
      .optional()
      .describe("Pull secrets for a private registry."),
  })
  .describe("The runtime image the pods run.");

export const storage = withRules(
  z.object({
    existingClaim: z
      .object({
        name: objectName("PersistentVolumeClaim"),
        subPath: z.string().max(256).optional().describe("Folder inside the claim to use."),
      })
      .optional()
      .describe("Use an existing PersistentVolumeClaim (ReadWriteMany for multi-node work)."),
    size: quantity("Size of a PersistentVolumeClaim the operator creates, e.g. 2Ti.").optional(),
    storageClassName: z.string().max(253).optional().describe("StorageClass of the created claim."),
    accessMode: z
      .enum(["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"])
      .default("ReadWriteMany")
      .describe("Access mode of the created claim."),
    retentionPolicy: z
      .enum(["Retain", "Delete"])
      .default("Retain")
      .describe("Whether a created claim outlives its resource (Retain) or is deleted with it (Delete)."),
  }),
  [
    {
      rule: exactlyOne("existingClaim", "size"),
      message: "set exactly one of storage.existingClaim or storage.size",
      reason: "FieldValueInvalid",
    },
    {
      rule: "!has(self.existingClaim) || !has(self.storageClassName)",
      message: "storageClassName applies only to a claim the operator creates (storage.size)",
      fieldPath: ".storageClassName",
    },
  ],
).describe("Shared storage for data, caches and checkpoints, mounted at the same path in every pod.");

export { atMostOne, exactlyOne };

/** Standard Kubernetes condition (metav1.Condition). */
export const condition = z
  .object({
    type: z.string().max(316).describe("Condition type, e.g. Ready."),
    status: z.enum(["True", "False", "Unknown"]).describe("True, False or Unknown."),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The .metadata.generation this was computed from."),
    lastTransitionTime: z.string().describe("When status last changed (RFC 3339)."),
    reason: z.string().max(1024).describe("CamelCase reason for the last transition."),
    message: z.string().max(32768).describe("Human-readable details."),
  })
  .describe("A condition of the resource.");
export type Condition = z.infer<typeof condition>;

export const conditions = z
  .array(condition)
  .optional()
  .meta({
    description: "Current state, one entry per condition type.",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  });

/** Per-position acceptance: entry i is the share of rounds whose i-th draft token was accepted. */
export const acceptanceByPosition = z
  .array(z.number().min(0).max(1))
  .max(64)
  .optional()
  .describe("Share of verification rounds whose i-th draft token was accepted, i = 0, 1, ...");
