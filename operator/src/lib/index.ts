// The SpecOps controller library: see README.md in this folder.
export {
  apply,
  controllerReference,
  defaultResources,
  type StatusOf,
  statusUnchanged,
  updateStatus,
} from "./apply.ts";
export {
  type Client,
  KubeClient,
  type PatchOptions,
  type WatchEventType,
  type WatchHandle,
} from "./client.ts";
export { type Clock, ManualClock, realClock, sleep } from "./clock.ts";
export {
  type Condition,
  type ConditionInput,
  type ConditionStatus,
  formatTime,
  getCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
} from "./conditions.ts";
export { type Config, ConfigError, configHelp, loadConfig } from "./config.ts";
export {
  type Connection,
  ConnectionError,
  connectionFromKubeConfig,
  connectionFromKubeconfigFile,
  loadConnection,
} from "./connection.ts";
export {
  Controller,
  type ControllerOptions,
  controllerOf,
  type MapFunc,
  ownerKeys,
  type Reconcile,
  type ReconcileContext,
  type ReconcileResult,
} from "./controller.ts";
export { semanticEqual } from "./equality.ts";
export {
  apiMessage,
  ConflictError,
  isConflict,
  isGone,
  isNotFound,
  statusCode,
  TerminalError,
} from "./errors.ts";
export { EventRecorder, type EventType, eventKey } from "./events.ts";
export { apiError, FakeClient } from "./fakeclient.ts";
export { addFinalizer, hasFinalizer, removeFinalizer } from "./finalizers.ts";
export { type EventHandler, Informer, type InformerOptions } from "./informer.ts";
export { type LeaderElectionOptions, LeaderElector } from "./leaderelection.ts";
export { createLogger, type Logger, silentLogger } from "./log.ts";
export { type LeaderElectionConfig, leaderIdentity, Manager, type ManagerOptions } from "./manager.ts";
export { Metrics } from "./metrics.ts";
export { dropUndefined } from "./objects.ts";
export { WorkQueue } from "./queue.ts";
export { defaultRateLimiter, type RateLimiter } from "./ratelimit.ts";
export { redact, redactString } from "./redact.ts";
export * from "./rest.ts";
export type { Store } from "./store.ts";
export { microTime, parseDuration } from "./time.ts";
