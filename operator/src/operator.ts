// Wires the controllers into a Manager: one shared informer per kind, one controller per kind,
// one Events recorder. Used by main.ts, the integration tests and the benchmark alike.

import { PROGRESS_DEFAULT_PORT } from "./contract/constants.ts";
import {
  CONTROLLER_NAME as ACCEPTANCE_EVAL_CONTROLLER,
  type AcceptanceEvalDeps,
  evalsMeasuringSpecServe,
  evalsReferencing,
  fetchMetricsText,
} from "./controllers/acceptanceeval/controller.ts";
import { AcceptanceMetrics } from "./controllers/acceptanceeval/metrics.ts";
import {
  acceptanceEvalReconciler,
  recordTerminalError as recordEvalTerminalError,
} from "./controllers/acceptanceeval/reconcile.ts";
import {
  CONTROLLER_NAME as AUTOSCALER_CONTROLLER,
  MIN_WORKERS as AUTOSCALER_MIN_WORKERS,
  type AutoscalerDeps,
} from "./controllers/autoscaler/controller.ts";
import { AutoscalerMetrics } from "./controllers/autoscaler/metrics.ts";
import { autoscalerReconciler } from "./controllers/autoscaler/reconcile.ts";
import {
  AcceptanceEvals,
  CONTROLLER_NAME,
  type DraftTrainingDeps,
  DraftTrainings,
  parseDraftTraining,
} from "./controllers/drafttraining/controller.ts";
import { recordTerminalError } from "./controllers/drafttraining/failures.ts";
import { draftTrainingReconciler } from "./controllers/drafttraining/reconcile.ts";
import {
  MANAGED_SELECTOR,
  trimClaim,
  trimConfigMap,
  trimDeployment,
  trimJob,
  trimPod,
  trimToMetadata,
} from "./controllers/shared/informers.ts";
import { PodScrapes } from "./controllers/shared/pod-scrapes.ts";
import {
  draftTrainingToSpecServes,
  PodDisruptionBudgets,
  podToSpecServe,
  CONTROLLER_NAME as SPECSERVE_CONTROLLER,
  SpecServes,
} from "./controllers/specserve/controller.ts";
import { recordTerminalError as recordSpecServeError } from "./controllers/specserve/failures.ts";
import { specServeReconciler } from "./controllers/specserve/reconcile.ts";
import { autoscalerUpdateMatters, specServeUpdateMatters } from "./controllers/specserve/updates.ts";
import { KubeClient } from "./lib/client.ts";
import { type Clock, realClock } from "./lib/clock.ts";
import type { Config } from "./lib/config.ts";
import type { Connection, KubeConfigLike } from "./lib/connection.ts";
import { EventRecorder } from "./lib/events.ts";
import type { Logger } from "./lib/log.ts";
import { leaderIdentity, Manager } from "./lib/manager.ts";
import {
  ConfigMaps,
  Deployments,
  Jobs,
  type KubeObject,
  PersistentVolumeClaims,
  Pods,
  Services,
} from "./lib/rest.ts";

export interface OperatorOptions {
  /** loadConnection() in a pod; a client-node KubeConfig in tests. */
  connection: Connection | KubeConfigLike;
  config: Config;
  logger: Logger;
  /** Port the runtime pods serve progress on (the contract's default unless a test changes it). */
  progressPort?: number;
  readProgress?: DraftTrainingDeps["readProgress"];
  /** Reads a serving pod's /metrics text (status.signals' and the autoscaler's scrapes); tests point it elsewhere. */
  fetchMetrics?: AutoscalerDeps["fetchText"];
  clock?: Clock;
}

export function buildOperator(opts: OperatorOptions): Manager {
  const { config, logger } = opts;
  const manager = new Manager({
    client: new KubeClient(opts.connection, {
      requestTimeoutMs: config.requestTimeoutMs,
      watchInactivityTimeoutMs: config.watchInactivityTimeoutMs,
    }),
    cacheSyncTimeoutMs: config.cacheSyncTimeoutMs,
    namespaces: config.namespaces,
    port: config.port,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    logger,
    clock: opts.clock,
    leaderElection: config.leaderElect
      ? {
          name: config.leaseName,
          namespace: config.leaseNamespace,
          identity: leaderIdentity(config.podName),
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
        }
      : undefined,
  });
  // Controllers write through the manager's client: fenced by leadership.
  const client = manager.client;
  const events = new EventRecorder({
    client,
    reportingController: "specops.dev/operator",
    reportingInstance: config.podName,
    logger,
    clock: opts.clock,
  });
  const deps: DraftTrainingDeps = {
    client,
    drafts: manager.informer(DraftTrainings, { transform: parseDraftTraining }),
    jobs: manager.informer(Jobs, { labelSelector: MANAGED_SELECTOR, transform: trimJob }),
    pods: manager.informer(Pods, { labelSelector: MANAGED_SELECTOR, transform: trimPod }),
    deployments: manager.informer(Deployments, {
      labelSelector: MANAGED_SELECTOR,
      transform: trimDeployment,
    }),
    configMaps: manager.informer(ConfigMaps, { labelSelector: MANAGED_SELECTOR, transform: trimConfigMap }),
    services: manager.informer(Services, { labelSelector: MANAGED_SELECTOR, transform: trimToMetadata }),
    claims: manager.informer(PersistentVolumeClaims, {
      labelSelector: MANAGED_SELECTOR,
      transform: trimClaim,
    }),
    evals: manager.informer(AcceptanceEvals),
    events,
    image: config.runtimeImage,
    progressPort: opts.progressPort ?? PROGRESS_DEFAULT_PORT,
    clock: opts.clock,
    readProgress: opts.readProgress,
  };
  manager.controller({
    name: CONTROLLER_NAME,
    for: deps.drafts,
    owns: [deps.jobs, deps.evals, deps.deployments, deps.configMaps, deps.services, deps.claims],
    // A pod's progress or termination changes its Job's owner's status: map pod → Job → DraftTraining.
    watches: [{ informer: deps.pods, map: podToOwner(deps.jobs, "DraftTraining") }],
    reconcile: draftTrainingReconciler(deps),
    onTerminalError: recordTerminalError(deps),
    workers: config.workers,
  });
  const specServes = manager.informer(SpecServes);
  // One scrape of a serving pod a window serves both status.signals and the autoscaler.
  const scrapes = new PodScrapes({
    fetchText: opts.fetchMetrics,
    now: () => (opts.clock ?? realClock).now(),
    registry: manager.metrics.registry,
  });
  const specServeDeps = {
    client,
    specServes,
    drafts: deps.drafts,
    deployments: deps.deployments,
    configMaps: deps.configMaps,
    services: deps.services,
    podDisruptionBudgets: manager.informer(PodDisruptionBudgets, {
      labelSelector: MANAGED_SELECTOR,
      transform: trimToMetadata,
    }),
    pods: deps.pods,
    events,
    image: config.runtimeImage,
    progressPort: opts.progressPort ?? PROGRESS_DEFAULT_PORT,
    clock: opts.clock,
    scrapes,
  };
  manager.controller({
    name: SPECSERVE_CONTROLLER,
    for: specServes,
    forUpdate: specServeUpdateMatters,
    owns: [deps.deployments, deps.configMaps, deps.services, specServeDeps.podDisruptionBudgets],
    watches: [
      { informer: deps.pods, map: podToSpecServe },
      { informer: deps.drafts, map: draftTrainingToSpecServes(specServes) },
    ],
    reconcile: specServeReconciler(specServeDeps),
    onTerminalError: recordSpecServeError(specServeDeps),
    workers: config.workers,
  });

  // The autoscaler: its own controller over the same SpecServes, deciding on a clock (each window);
  // it writes only spec.replicas (through /scale) and its own status fields, under its own manager.
  const autoscalerDeps: AutoscalerDeps = {
    client,
    specServes,
    pods: deps.pods,
    events,
    metrics: new AutoscalerMetrics(manager.metrics.registry),
    clock: opts.clock,
    scrapes,
  };
  manager.controller({
    name: AUTOSCALER_CONTROLLER,
    for: specServes,
    forUpdate: autoscalerUpdateMatters,
    reconcile: autoscalerReconciler(autoscalerDeps),
    workers: Math.max(config.workers, AUTOSCALER_MIN_WORKERS),
  });

  const evalDeps: AcceptanceEvalDeps = {
    client,
    evals: deps.evals,
    drafts: deps.drafts,
    jobs: deps.jobs,
    pods: deps.pods,
    configMaps: deps.configMaps,
    specServes,
    scrapeMetrics: fetchMetricsText,
    events,
    metrics: new AcceptanceMetrics(manager.metrics.registry),
    image: config.runtimeImage,
    progressPort: deps.progressPort,
    clock: opts.clock,
  };
  manager.controller({
    name: ACCEPTANCE_EVAL_CONTROLLER,
    for: evalDeps.evals,
    owns: [evalDeps.jobs, evalDeps.configMaps],
    watches: [
      // A pod's termination carries the result: map pod → Job → AcceptanceEval.
      { informer: evalDeps.pods, map: podToOwner(evalDeps.jobs, "AcceptanceEval") },
      // A referenced DraftTraining finishing (or failing) starts (or fails) the evaluations of its draft.
      { informer: evalDeps.drafts, map: evalsReferencing(evalDeps.evals) },
      // A SpecServe becoming Ready (or its pods changing) moves the live evaluations of it.
      { informer: specServes, map: evalsMeasuringSpecServe(evalDeps.evals) },
    ],
    reconcile: acceptanceEvalReconciler(evalDeps),
    onTerminalError: recordEvalTerminalError(evalDeps),
    workers: config.workers,
  });
  return manager;
}

/** Maps a pod to the key of its Job's controller owner of the given kind. */
function podToOwner(jobs: DraftTrainingDeps["jobs"], kind: string) {
  return (pod: KubeObject): string[] => {
    const jobRef = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === "Job");
    const job = jobRef ? jobs.store.get(pod.metadata?.namespace, jobRef.name) : undefined;
    const owner = job?.metadata?.ownerReferences?.find((r) => r.controller && r.kind === kind);
    return owner ? [`${pod.metadata?.namespace}/${owner.name}`] : [];
  };
}
