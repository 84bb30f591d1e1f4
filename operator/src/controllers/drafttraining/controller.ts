// The DraftTraining controller: its identity (names, field manager, finalizer, the kinds it reads
// and writes), what it is given (informers, clients), and how its pieces fit. Pure modules compute
// (plan, runtimetasks, desired, observe, stages, health, pipeline); thin I/O modules act (read,
// children, teardown, poll, status, failures), and reconcile.ts runs one pass through them.

import { createHash } from "node:crypto";
import type { V1ConfigMap, V1Job, V1Pod } from "@kubernetes/client-node";
import type { AcceptanceEvalSpec, AcceptanceEvalStatus } from "../../api/acceptanceeval.ts";
import { API_VERSION } from "../../api/common.ts";
import { type DraftTrainingSpec, draftTrainingSpec } from "../../api/drafttraining.ts";
import { acceptanceEvalKind, type DraftTraining, draftTrainingKind } from "../../api/kinds.ts";
import type { Client } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import type { EventRecorder } from "../../lib/events.ts";
import type { Informer } from "../../lib/informer.ts";
import { deepFreeze } from "../../lib/objects.ts";
import { CORE_RESOURCES, customResource, type KubeObject, ResourceTable, type Wire } from "../../lib/rest.ts";
import type { ProgressRead } from "../shared/progress.ts";

export const CONTROLLER_NAME = "drafttraining";
export const FIELD_MANAGER = "specops-drafttraining";
export const FINALIZER = "specops.dev/drafttraining-cleanup";

/**
 * A cached DraftTraining: parsed once by the informer (defaults applied, CEL rules checked), so a
 * reconcile reads typed fields. `invalid` says why an object could not be parsed; its spec is then
 * the raw one and must not be read.
 */
export type DraftTrainingObject = DraftTraining & KubeObject & { invalid?: string };
export type AcceptanceEvalObject = KubeObject & { spec?: AcceptanceEvalSpec; status?: AcceptanceEvalStatus };
export type JobObject = Wire<V1Job>;
export type PodObject = Wire<V1Pod>;
export type ConfigMapObject = Wire<V1ConfigMap>;

export const DraftTrainings = customResource<DraftTrainingObject>(API_VERSION, draftTrainingKind);
export const AcceptanceEvals = customResource<AcceptanceEvalObject>(API_VERSION, acceptanceEvalKind);
export const RESOURCES = new ResourceTable([...CORE_RESOURCES, DraftTrainings, AcceptanceEvals]);

/**
 * Parsed specs by digest of the spec's JSON, reused while a spec is unchanged (status writes and
 * metadata edits do not re-parse) and shared by every DraftTraining with the same spec: at 10,000
 * objects a parsed spec per object was ~2 KB of heap each, and DraftTrainings made from one
 * template have one spec. Shared, so frozen: a reconciler that wrote to one would write to all.
 */
const parsedSpecs = new Map<string, { spec?: DraftTrainingSpec; invalid?: string }>();
const PARSED_SPECS_MAX = 20_000;

/**
 * The DraftTraining informer's transform: the spec is validated and defaulted (zod with the CRD's
 * CEL rules) once per distinct spec, not on every reconcile or status change.
 */
export function parseDraftTraining(raw: KubeObject): KubeObject {
  // A digest, not the JSON itself: at thousands of objects the strings would cost megabytes.
  const digest = createHash("sha1")
    .update(JSON.stringify((raw as { spec?: unknown }).spec) ?? "")
    .digest("base64");
  let parsed = parsedSpecs.get(digest);
  if (parsed === undefined) {
    const result = draftTrainingSpec.safeParse((raw as { spec?: unknown }).spec);
    const issue = result.success ? undefined : result.error.issues[0];
    parsed = result.success
      ? { spec: deepFreeze(result.data) }
      : {
          invalid: `invalid DraftTraining: ${["spec", ...(issue?.path ?? [])].join(".")}: ${issue?.message}`,
        };
  }
  // Most recently used last: specs no object has any more age out.
  parsedSpecs.delete(digest);
  parsedSpecs.set(digest, parsed);
  if (parsedSpecs.size > PARSED_SPECS_MAX) parsedSpecs.delete(parsedSpecs.keys().next().value as string);
  if (parsed.invalid) return { ...raw, invalid: parsed.invalid } as KubeObject;
  return { ...raw, spec: parsed.spec } as DraftTrainingObject;
}

export interface DraftTrainingDeps {
  client: Client;
  drafts: Informer<DraftTrainingObject>;
  jobs: Informer<JobObject>;
  pods: Informer<PodObject>;
  deployments: Informer<KubeObject>;
  configMaps: Informer<ConfigMapObject>;
  services: Informer<KubeObject>;
  claims: Informer<KubeObject>;
  evals: Informer<AcceptanceEvalObject>;
  events: EventRecorder;
  image: string;
  progressPort: number;
  clock?: Clock;
  /** How a pod's progress is read; tests point it at a local server. */
  readProgress?: (podIP: string, port: number) => Promise<ProgressRead>;
}
