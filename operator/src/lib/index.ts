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
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_WATCH_INACTIVITY_TIMEOUT_MS,
  type DeleteOptions,
  KubeClient,
  type KubeClientOptions,
  type ListOptions,
  type PatchOptions,
  type RequestOptions,
  type WatchEventType,
  type WatchHandle,
  type WriteOptions,
} from "./client.ts";
export { type Clock, deadlineSignal, ManualClock, realClock, sleep } from "./clock.ts";
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
  connect,
  connectionFromKubeConfig,
  connectionFromKubeconfigFile,
  type LoadConnectionOptions,
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
  ApiError,
  apiMessage,
  ConflictError,
  isConflict,
  isGone,
  isNotFound,
  RequestTimeoutError,
  statusCode,
  TerminalError,
} from "./errors.ts";
export { EventRecorder, type EventType, eventKey } from "./events.ts";
export { apiError, FakeClient } from "./fakeclient.ts";
export { FencedClient, NotLeaderError } from "./fencedclient.ts";
export { addFinalizer, hasFinalizer, removeFinalizer } from "./finalizers.ts";
export { type EventHandler, Informer, type InformerOptions, InformerSyncError } from "./informer.ts";
export { findKubeconfigFiles, loadKubeconfig, mergeKubeconfigs } from "./kubeconfig.ts";
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
