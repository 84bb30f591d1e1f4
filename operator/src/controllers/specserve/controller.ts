// The SpecServe controller: its identity (name, field manager, the kinds it reads and writes), what
// it is given (informers, clients) and how events map to keys. Pure modules compute (plan, desired,
// observe); reconcile.ts runs one pass, failures.ts records terminal errors, scale.ts is the
// autoscaler's write path to spec.replicas.
import type { V1Pod } from "@kubernetes/client-node";
import { API_VERSION } from "../../api/common.ts";
import { specServeKind } from "../../api/kinds.ts";
import type { Client } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import type { EventRecorder } from "../../lib/events.ts";
import type { Informer } from "../../lib/informer.ts";
import {
  CORE_RESOURCES,
  customResource,
  type KubeObject,
  ResourceTable,
  resource,
  type Wire,
} from "../../lib/rest.ts";
import type { PodScrapes } from "../shared/pod-scrapes.ts";
import { LWS_API_VERSION } from "./desired.ts";
import type { SpecServeStatus } from "./observe.ts";
import { LABELS } from "./plan.ts";

export { AUTOSCALER_FIELD_MANAGER } from "./scale.ts";

export const CONTROLLER_NAME = "specserve";
export const FIELD_MANAGER = "specops-specserve";

export type SpecServeWire = KubeObject & { spec?: unknown; status?: SpecServeStatus };
export const SpecServes = customResource<SpecServeWire>(API_VERSION, specServeKind);
export const PodDisruptionBudgets = resource<KubeObject>(
  "policy/v1",
  "PodDisruptionBudget",
  "poddisruptionbudgets",
);
export const LeaderWorkerSets = resource<KubeObject>(LWS_API_VERSION, "LeaderWorkerSet", "leaderworkersets");
export const CustomResourceDefinitions = resource<KubeObject>(
  "apiextensions.k8s.io/v1",
  "CustomResourceDefinition",
  "customresourcedefinitions",
  false,
);
export const LWS_CRD_NAME = "leaderworkersets.leaderworkerset.x-k8s.io";
export const RESOURCES = new ResourceTable([
  ...CORE_RESOURCES,
  SpecServes,
  PodDisruptionBudgets,
  LeaderWorkerSets,
]);

export interface SpecServeDeps {
  client: Client;
  specServes: Informer<SpecServeWire>;
  drafts: Informer<KubeObject>;
  deployments: Informer<KubeObject>;
  /** The task ConfigMaps and Services it applies, as cached (an unchanged child is not applied again). */
  configMaps: Informer<KubeObject>;
  services: Informer<KubeObject>;
  /** The PodDisruptionBudgets it applies: a deleted or edited one is applied again at once. */
  podDisruptionBudgets: Informer<KubeObject>;
  pods: Informer<Wire<V1Pod>>;
  events: EventRecorder;
  /** The operator's default runtime image, used only for servers created from now on. */
  image: string;
  progressPort: number;
  clock?: Clock;
  /** Reads a pod's /metrics text (the rollout gate's per-pod scrapes); tests point it elsewhere. */
  scrapeMetrics?: (url: string, signal: AbortSignal) => Promise<string>;
  /** The scrapes status.signals shares with the autoscaler; its own (over scrapeMetrics) if unset. */
  scrapes?: PodScrapes;
}

/** Pod → its SpecServe, by the owner label every serving pod carries. */
export function podToSpecServe(pod: KubeObject): string[] {
  const owner = pod.metadata?.labels?.[LABELS.owner];
  return owner ? [`${pod.metadata?.namespace}/${owner}`] : [];
}

/** DraftTraining → the SpecServes in its namespace that serve its checkpoint. */
export function draftTrainingToSpecServes(specServes: Informer<SpecServeWire>) {
  return (dt: KubeObject): string[] =>
    specServes.store
      .list(dt.metadata?.namespace)
      .filter(
        (ss) =>
          (ss.spec as { draft?: { draftTrainingRef?: { name?: string } } } | undefined)?.draft
            ?.draftTrainingRef?.name === dt.metadata?.name,
      )
      .map((ss) => `${ss.metadata?.namespace}/${ss.metadata?.name}`);
}
