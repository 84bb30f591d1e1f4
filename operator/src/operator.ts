// Wires the controllers into a Manager: one shared informer per kind, one controller per kind,
// one Events recorder. Used by main.ts, the integration tests and the benchmark alike.

import { PROGRESS_DEFAULT_PORT } from "./contract/constants.ts";
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
  trimConfigMap,
  trimJob,
  trimPod,
  trimToMetadata,
} from "./controllers/shared/informers.ts";
import { KubeClient } from "./lib/client.ts";
import type { Clock } from "./lib/clock.ts";
import type { Config } from "./lib/config.ts";
import type { Connection, KubeConfigLike } from "./lib/connection.ts";
import { EventRecorder } from "./lib/events.ts";
import type { Logger } from "./lib/log.ts";
import { leaderIdentity, Manager } from "./lib/manager.ts";
import { ConfigMaps, Deployments, Jobs, PersistentVolumeClaims, Pods, Services } from "./lib/rest.ts";

export interface OperatorOptions {
  /** loadConnection() in a pod; a client-node KubeConfig in tests. */
  connection: Connection | KubeConfigLike;
  config: Config;
  logger: Logger;
  /** Port the runtime pods serve progress on (the contract's default unless a test changes it). */
  progressPort?: number;
  readProgress?: DraftTrainingDeps["readProgress"];
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
      transform: trimToMetadata,
    }),
    configMaps: manager.informer(ConfigMaps, { labelSelector: MANAGED_SELECTOR, transform: trimConfigMap }),
    services: manager.informer(Services, { labelSelector: MANAGED_SELECTOR, transform: trimToMetadata }),
    claims: manager.informer(PersistentVolumeClaims, {
      labelSelector: MANAGED_SELECTOR,
      transform: trimToMetadata,
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
    watches: [
      {
        informer: deps.pods,
        map: (pod) => {
          const jobRef = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === "Job");
          const job = jobRef ? deps.jobs.store.get(pod.metadata?.namespace, jobRef.name) : undefined;
          const owner = job?.metadata?.ownerReferences?.find(
            (r) => r.controller && r.kind === "DraftTraining",
          );
          return owner ? [`${pod.metadata?.namespace}/${owner.name}`] : [];
        },
      },
    ],
    reconcile: draftTrainingReconciler(deps),
    onTerminalError: recordTerminalError(deps),
    workers: config.workers,
  });
  return manager;
}
