// The DraftTraining controller: its identity (names, field manager, finalizer, the kinds it reads
// and writes), what it is given (informers, clients), and how its pieces fit. Pure modules compute
// (plan, runtimetasks, desired, observe, stages, health, pipeline); thin I/O modules act (read,
// children, teardown, poll, status, failures), and reconcile.ts runs one pass through them.

import type { V1ConfigMap, V1Job, V1Pod } from "@kubernetes/client-node";
import type { AcceptanceEvalSpec, AcceptanceEvalStatus } from "../../api/acceptanceeval.ts";
import { API_VERSION } from "../../api/common.ts";
import {
  acceptanceEvalKind,
  type DraftTraining,
  draftTrainingKind,
  draftTrainingResource,
} from "../../api/kinds.ts";
import type { Client } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import type { EventRecorder } from "../../lib/events.ts";
import type { Informer } from "../../lib/informer.ts";
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

/** The DraftTraining informer's transform: validate and default once per change, not per reconcile. */
export function parseDraftTraining(raw: KubeObject): KubeObject {
  const parsed = draftTrainingResource.safeParse(raw);
  if (parsed.success) return parsed.data as DraftTrainingObject;
  const issue = parsed.error.issues[0];
  return {
    ...raw,
    invalid: `invalid DraftTraining: ${issue?.path.join(".")}: ${issue?.message}`,
  } as KubeObject;
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
