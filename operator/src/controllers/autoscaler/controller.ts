// The autoscaler controller: for each SpecServe with spec.autoscaling.enabled, once per window it
// scrapes the ready serving pods (through the scrape cache it shares with status.signals), decides the replicas (decide.ts, pure) and writes spec.replicas
// only through the scale subresource under its own field manager, as an HPA does. Its identity and
// what it is given; reconcile.ts runs one pass, status.ts says which status fields it owns.
import type { V1Pod } from "@kubernetes/client-node";
import type { Client } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import type { EventRecorder } from "../../lib/events.ts";
import type { Informer } from "../../lib/informer.ts";
import type { Wire } from "../../lib/rest.ts";
import type { PodScrapes } from "../shared/pod-scrapes.ts";
import type { SpecServeWire } from "../specserve/controller.ts";
import { AUTOSCALER_FIELD_MANAGER } from "../specserve/scale.ts";
import type { FetchText } from "../specserve/scrape.ts";
import type { AutoscalerMetrics } from "./metrics.ts";

export const CONTROLLER_NAME = "autoscaler";
/**
 * Decisions it runs at once, at least: a decision mostly waits on its pods' scrapes and an API
 * write or two, not on the CPU, so the operator's default of 2 would leave a large fleet's window
 * mostly waiting (100 SpecServes of 10 pods: `npm run bench -- autoscaler-scale`).
 */
export const MIN_WORKERS = 8;
/** Owns spec.replicas (through /scale) and the autoscaler's status fields; nothing else. */
export const FIELD_MANAGER = AUTOSCALER_FIELD_MANAGER;

export interface AutoscalerDeps {
  client: Client;
  specServes: Informer<SpecServeWire>;
  pods: Informer<Wire<V1Pod>>;
  events: EventRecorder;
  metrics: AutoscalerMetrics;
  clock?: Clock;
  /** Reads a pod's /metrics text; tests point it elsewhere. */
  fetchText?: FetchText;
  /** The scrapes shared with the SpecServe controller's status.signals; its own (over fetchText) if unset. */
  scrapes?: PodScrapes;
}
