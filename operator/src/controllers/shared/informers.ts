// What the operator caches of the kinds it creates: only objects it manages (label selector) and only
// the fields its reconcilers read (transforms). Pod templates, volumes and env are never read back,
// and at thousands of Jobs they would be most of the operator's memory.
import { createHash } from "node:crypto";
import type { KubeObject } from "../../lib/rest.ts";

/** Every object the operator creates carries this label (see each controller's desired state). */
export const MANAGED_BY = { key: "app.kubernetes.io/managed-by", value: "specops-operator" } as const;
export const MANAGED_SELECTOR = `${MANAGED_BY.key}=${MANAGED_BY.value}`;

/**
 * Annotation holding the spec a Job was started with, which the controller rebuilds the running
 * stage's children from. The cache keeps a digest of it (stageSpecDigest), not the JSON: at 10,000
 * running or suspended Jobs the copies were ~10 MB, and the spec is nearly always the owner's
 * current one, which the digest tells. A finished Job keeps neither.
 */
export const STARTED_WITH_ANNOTATION = "specops.dev/stage-spec";

/** What the cache keeps of a Job's stage-spec annotation; compare with specDigest(JSON of a spec). */
export const specDigest = (json: string): string => createHash("sha256").update(json).digest("base64");

/** The digest of the spec a cached (trimmed) Job was started with, when it recorded one. */
export const stageSpecDigestOf = (job: KubeObject): string | undefined =>
  (job as { stageSpecDigest?: string }).stageSpecDigest;

type Any = Record<string, unknown>;
const pick = (o: unknown, keys: string[]): Any | undefined => {
  if (!o || typeof o !== "object") return undefined;
  const out: Any = {};
  for (const k of keys) if ((o as Any)[k] !== undefined) out[k] = (o as Any)[k];
  return out;
};

function trimmedMetadata(obj: KubeObject) {
  return pick(obj.metadata, [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
    "creationTimestamp",
  ]);
}

const finished = (obj: KubeObject) =>
  ((obj as Any).status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions?.some(
    (c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True",
  ) === true;

/** A Job's metadata without the stage-spec annotation, and the digest of that annotation while it runs. */
function jobMetadata(obj: KubeObject) {
  const meta = trimmedMetadata(obj);
  const annotations = meta?.annotations as Record<string, string> | undefined;
  const spec = annotations?.[STARTED_WITH_ANNOTATION];
  if (spec === undefined) return { metadata: meta };
  const { [STARTED_WITH_ANNOTATION]: _spec, ...rest } = annotations as Record<string, string>;
  return {
    metadata: { ...meta, annotations: rest },
    stageSpecDigest: finished(obj) ? undefined : specDigest(spec),
  };
}

/** Jobs: identity, suspend and shape, the whole status, and a digest of the spec they were started with. */
export const trimJob = (obj: KubeObject): KubeObject =>
  ({
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    ...jobMetadata(obj),
    spec: pick((obj as Any).spec, [
      "suspend",
      "completions",
      "parallelism",
      "completionMode",
      "backoffLimit",
    ]),
    status: (obj as Any).status,
  }) as unknown as KubeObject;

/** Pods: identity and status (phase, IP, container terminations). */
export const trimPod = (obj: KubeObject): KubeObject =>
  ({
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: trimmedMetadata(obj),
    status: pick((obj as Any).status, ["phase", "podIP", "containerStatuses", "conditions", "startTime"]),
  }) as KubeObject;

/** Objects whose existence is all that is read (e.g. the regeneration server's Deployment). */
export const trimToMetadata = (obj: KubeObject): KubeObject =>
  ({ apiVersion: obj.apiVersion, kind: obj.kind, metadata: trimmedMetadata(obj) }) as KubeObject;

/**
 * What is read of an object whose existence, applied-hash annotation and owner are all that matter
 * (ConfigMaps, claims): no labels (the label selector is the server's), no timestamps but
 * deletion's, no generation. At 10,000 DraftTrainings that is 20,000 cached objects.
 */
function identityMetadata(obj: KubeObject) {
  return pick(obj.metadata, [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
  ]);
}

/** Claims: identity, annotations and owner only (their existence and applied hash are what is read). */
export const trimClaim = (obj: KubeObject): KubeObject =>
  ({ apiVersion: obj.apiVersion, kind: obj.kind, metadata: identityMetadata(obj) }) as KubeObject;

/** A digest of a ConfigMap's data: what the cache keeps of it instead of the data. */
export const dataDigest = (data: unknown): string =>
  createHash("sha256")
    .update(JSON.stringify(data ?? {}))
    .digest("base64");

/** ConfigMaps: as claims, and a digest of the data (a task document is compared with its desired content each pass). */
export const trimConfigMap = (obj: KubeObject): KubeObject =>
  ({
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: identityMetadata(obj),
    dataDigest: dataDigest((obj as Any).data),
  }) as KubeObject;

/** Deployments: identity, replicas and the whole status (the template is never read back). */
export const trimDeployment = (obj: KubeObject): KubeObject =>
  ({
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: trimmedMetadata(obj),
    spec: pick((obj as Any).spec, ["replicas"]),
    status: (obj as Any).status,
  }) as KubeObject;
