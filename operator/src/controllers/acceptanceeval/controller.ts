// The AcceptanceEval controller: its identity (names, field manager, the kinds it reads and writes)
// and what it is given (informers, clients, metrics). Pure modules compute (plan, runtimetasks,
// desired, verdict, decide); thin I/O modules act (read, children, status), and reconcile.ts runs
// one pass through them.
import type { V1ConfigMap, V1Job, V1Pod } from "@kubernetes/client-node";
import { fetch } from "undici";
import { API_VERSION } from "../../api/common.ts";
import { acceptanceEvalKind } from "../../api/kinds.ts";
import type { Client } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import type { EventRecorder } from "../../lib/events.ts";
import type { Informer } from "../../lib/informer.ts";
import { CORE_RESOURCES, customResource, type KubeObject, ResourceTable, type Wire } from "../../lib/rest.ts";
import type { AcceptanceEvalStatus } from "./decide.ts";
import type { AcceptanceMetrics } from "./metrics.ts";

export const CONTROLLER_NAME = "acceptanceeval";
export const FIELD_MANAGER = "specops-acceptanceeval";

export type AcceptanceEvalObject = KubeObject & { spec?: unknown; status?: AcceptanceEvalStatus };
export const AcceptanceEvals = customResource<AcceptanceEvalObject>(API_VERSION, acceptanceEvalKind);
export const RESOURCES = new ResourceTable([...CORE_RESOURCES, AcceptanceEvals]);

export interface AcceptanceEvalDeps {
  client: Client;
  evals: Informer<AcceptanceEvalObject>;
  /** DraftTrainings, read for the checkpoint of draft.draftTrainingRef. */
  drafts: Informer<KubeObject>;
  jobs: Informer<Wire<V1Job>>;
  pods: Informer<Wire<V1Pod>>;
  configMaps: Informer<Wire<V1ConfigMap>>;
  /** SpecServes, read for draft.specServeRef (live evaluation). */
  specServes: Informer<KubeObject>;
  /** GETs a serving pod's /metrics text (live evaluation); within the pass's deadline. */
  scrapeMetrics: (url: string, signal: AbortSignal | undefined) => Promise<string>;
  events: EventRecorder;
  metrics: AcceptanceMetrics;
  image: string;
  progressPort: number;
  clock?: Clock;
}

/** Maps a DraftTraining to the AcceptanceEvals that measure its draft. */
export function evalsReferencing(evals: Informer<AcceptanceEvalObject>) {
  return (dt: KubeObject): string[] =>
    evals.store
      .list(dt.metadata?.namespace)
      .filter(
        (ae) =>
          (ae.spec as { draft?: { draftTrainingRef?: { name?: string } } } | undefined)?.draft
            ?.draftTrainingRef?.name === dt.metadata?.name,
      )
      .map((ae) => `${ae.metadata?.namespace}/${ae.metadata?.name}`);
}

/** Maps a SpecServe to the AcceptanceEvals that measure it live. */
export function evalsMeasuringSpecServe(evals: Informer<AcceptanceEvalObject>) {
  return (ss: KubeObject): string[] =>
    evals.store
      .list(ss.metadata?.namespace)
      .filter(
        (ae) =>
          (ae.spec as { draft?: { specServeRef?: { name?: string } } } | undefined)?.draft?.specServeRef
            ?.name === ss.metadata?.name,
      )
      .map((ae) => `${ae.metadata?.namespace}/${ae.metadata?.name}`);
}

/** A serving pod's /metrics text, or an error naming the URL; at most 5 seconds. */
export async function fetchMetricsText(url: string, signal: AbortSignal | undefined): Promise<string> {
  const timeout = AbortSignal.timeout(5000);
  const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  if (!res.ok) throw new Error(`${url} answered HTTP ${res.status}`);
  return res.text();
}
