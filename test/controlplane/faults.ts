// Fault scenarios on the real control plane, shared by test/integration/faults.test.ts (small object
// counts, in `npm test`) and `npm run bench -- faults` (the long runs). Each scenario injects one
// fault into running DraftTraining pipelines, waits for them to converge and reports the end state:
// how many converged, duplicates (a stage Job created twice, a stage run twice) and losses (a stage
// record or checkpoint missing from status, an object change the operator never acted on), read from
// the API server and its audit log, never from the operator's own account of itself.
// The operator runs as its own process (as in a pod) with its own token per replica, so the audit
// log tells replicas apart; pods are played by the fake kubelet (the test edge: no container runtime).

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { KubeClient } from "../../operator/src/lib/client.ts";
import { isNotFound } from "../../operator/src/lib/errors.ts";
import { ConfigMaps, Jobs, type KubeObject, Leases, Pods, resource } from "../../operator/src/lib/rest.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { until } from "../support/until.ts";
import { type AuditEvent, type ControlPlane, startControlPlane, TEST_USERS_GROUP } from "./controlplane.ts";
import { startFreezingProxy } from "./freezing-proxy.ts";
import { FakeKubelet } from "./kubelet.ts";
import { type OperatorProcess, startOperatorProcess } from "./operator-process.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const REPLICAS = ["operator-a", "operator-b", "operator-c"] as const;
const DraftTrainings = resource<KubeObject & { spec?: any; status?: any }>(
  "specops.dev/v1alpha1",
  "DraftTraining",
  "drafttrainings",
);
const ResourceQuotas = resource("v1", "ResourceQuota", "resourcequotas");
const Namespaces = resource("v1", "Namespace", "namespaces", false);
const CRDs = resource(
  "apiextensions.k8s.io/v1",
  "CustomResourceDefinition",
  "customresourcedefinitions",
  false,
);
const ClusterRoles = resource("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", false);
const ClusterRoleBindings = resource(
  "rbac.authorization.k8s.io/v1",
  "ClusterRoleBinding",
  "clusterrolebindings",
  false,
);
const OWNER_LABEL = "specops.dev/drafttraining";
const STAGE_LABEL = "specops.dev/stage";
const MANAGER = "specops-fault-tests";

export interface FaultResult {
  fault: string;
  objects: number;
  converged: number;
  duplicates: number;
  lost: number;
  /** From the fault's end (or injection, for a fault that lasts) to the last object converging. */
  secondsToConverge: number;
  /** Writes the API server accepted from a replica after its leadership deadline had passed. */
  staleLeaderWrites?: number;
  /** Seconds from the freeze until the old leader said it stopped leading (it logs it). */
  leaderStoppedAfterS?: number;
  /** Anything else worth a line in the table (e.g. when the standby took over). */
  notes: string[];
}

export interface FaultEnv {
  cp: ControlPlane;
  kc: KubeConfig;
  admin: KubeClient;
  /** Operator processes started by scenarios, stopped by close(). */
  operators: Set<OperatorProcess>;
  close(): Promise<void>;
}

/** A control plane with an audit log and one token per replica, the CRDs and the operator's role. */
export async function startFaultEnv(opts: { startTimeoutSeconds?: number } = {}): Promise<FaultEnv> {
  const cp = await startControlPlane({
    audit: true,
    users: [...REPLICAS],
    startTimeoutSeconds: opts.startTimeoutSeconds ?? 120,
  });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const admin = new KubeClient(kc);
  const apply = (r: ReturnType<typeof resource>, obj: KubeObject) =>
    admin.patch(r, undefined, obj.metadata?.name ?? "", obj, {
      type: "apply",
      fieldManager: MANAGER,
      force: true,
    });
  for (const file of ["drafttrainings", "acceptanceevals", "specserves"]) {
    await apply(
      CRDs,
      yaml.load(readFileSync(join(root, `crds/${file}.specops.dev.yaml`), "utf8")) as KubeObject,
    );
  }
  // Every replica holds exactly the generated ClusterRole, as the chart binds it.
  await apply(ClusterRoles, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: "specops-operator" },
    rules: OPERATOR_RBAC_RULES,
  } as KubeObject);
  await apply(ClusterRoleBindings, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: "specops-operator" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "specops-operator" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: TEST_USERS_GROUP }],
  } as KubeObject);
  await until("CRDs served", async () => {
    await admin.list(DraftTrainings, "default");
    return true;
  });
  const operators = new Set<OperatorProcess>();
  return {
    cp,
    kc,
    admin,
    operators,
    async close() {
      await Promise.all([...operators].map((o) => o.stop()));
      await cp.stop();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Building blocks

const manifest = yaml.load(readFileSync(join(root, "examples/tiny-drafttraining.yaml"), "utf8")) as any;

/** The tiny example without its evaluation gate (nothing reconciles AcceptanceEvals yet). */
export function tinyDraftTraining(namespace: string, name: string): KubeObject & { spec: any } {
  const spec = structuredClone(manifest.spec);
  delete spec.evaluation;
  return { apiVersion: "specops.dev/v1alpha1", kind: "DraftTraining", metadata: { name, namespace }, spec };
}

async function createNamespace(env: FaultEnv, name: string): Promise<void> {
  await env.admin
    .create(Namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } })
    .catch((err) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
}

async function createDraftTrainings(env: FaultEnv, namespace: string, names: string[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < names.length) {
        const name = names[next++] as string;
        await env.admin.create(DraftTrainings, tinyDraftTraining(namespace, name));
      }
    }),
  );
}

/** The Result a runtime pod writes to its termination log, for the stage its labels name. */
function stageResult(pod: V1Pod): string {
  const stage = pod.metadata?.labels?.[STAGE_LABEL] ?? "";
  const kinds: Record<string, string> = {
    PrepareData: "prepare-data",
    Regenerate: "regenerate",
    TargetCache: "target-cache",
    Train: "train",
  };
  return JSON.stringify({
    apiVersion: "runtime.specops.dev/v1",
    kind: "Result",
    taskKind: kinds[stage] ?? "prepare-data",
    backend: "reference",
    status: "succeeded",
    exitCode: 0,
    reason: "success",
    startTime: new Date(Date.now() - 1000).toISOString(),
    completionTime: new Date().toISOString(),
    durationSeconds: 1,
    ...(stage === "Train" ? { outputs: { checkpoint: { path: "/x", step: 200 } } } : {}),
  });
}

/** A kubelet stand-in whose pods succeed as soon as they run (optionally only in some namespaces). */
async function succeedingKubelet(env: FaultEnv, node: string, namespaces?: string[]): Promise<FakeKubelet> {
  const kubelet = new FakeKubelet(env.kc, {
    nodeName: node,
    podIP: () => "127.0.0.1",
    policy: (pod) =>
      !namespaces || namespaces.includes(pod.metadata?.namespace ?? "")
        ? { exitCode: 0, message: stageResult(pod) }
        : undefined,
  });
  await kubelet.start();
  return kubelet;
}

function operatorEnv(namespace: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SPECOPS_LEADER_ELECTION_ID: "specops-operator",
    SPECOPS_LEASE_DURATION: "6s",
    SPECOPS_RENEW_DEADLINE: "4s",
    SPECOPS_RETRY_PERIOD: "1s",
    ...extra,
    POD_NAMESPACE: namespace,
  };
}

async function startReplica(
  env: FaultEnv,
  name: (typeof REPLICAS)[number],
  namespace: string,
  opts: { server?: string; leaderElect?: boolean; env?: Record<string, string> } = {},
): Promise<OperatorProcess> {
  const op = await startOperatorProcess({
    name,
    kubeconfigPath: env.cp.kubeconfigFor(name, opts.server),
    namespaces: [namespace],
    leaseNamespace: namespace,
    leaderElect: opts.leaderElect ?? true,
    env: operatorEnv(namespace, opts.env),
    onLog: process.env.SPECOPS_FAULTS_VERBOSE ? (n, l) => console.log(`[${n}] ${l}`) : undefined,
  });
  env.operators.add(op);
  void op.exited.then(() => env.operators.delete(op));
  return op;
}

async function leaseHolder(env: FaultEnv, namespace: string): Promise<string> {
  try {
    const lease = await env.admin.get(Leases, namespace, "specops-operator");
    return lease.spec?.holderIdentity ?? "";
  } catch (err) {
    if (isNotFound(err)) return "";
    throw err;
  }
}

const holderReplica = (holder: string) => REPLICAS.find((r) => holder.startsWith(`${r}_`));

interface EndState {
  converged: number;
  duplicates: number;
  lost: number;
  notes: string[];
}

const STAGES = ["PrepareData", "Regenerate", "TargetCache", "Train"];

/**
 * End state of pipelines that should all have succeeded: every stage record Succeeded (or Skipped)
 * in status with the checkpoint, exactly one Job per stage, one pod per Job, and no Job created twice
 * (the audit log's 201s).
 */
async function pipelinesEndState(env: FaultEnv, namespace: string, names: string[]): Promise<EndState> {
  const dts = new Map(
    (await env.admin.list(DraftTrainings, namespace)).items.map((d) => [d.metadata?.name ?? "", d]),
  );
  const jobs = (await env.admin.list(Jobs, namespace)).items;
  const pods = (await env.admin.list(Pods, namespace)).items;
  const created = jobCreations(env.cp.auditEvents(), namespace);
  let converged = 0;
  let duplicates = 0;
  let lost = 0;
  const notes: string[] = [];
  for (const name of names) {
    const status = dts.get(name)?.status ?? {};
    const records: any[] = status.stages ?? [];
    const missing = STAGES.filter(
      (s) => !records.some((r) => r.name === s && (r.state === "Succeeded" || r.state === "Skipped")),
    );
    const noCheckpoint = status.stage === "Succeeded" && !status.checkpoint ? 1 : 0;
    if (status.stage === "Succeeded" && missing.length === 0 && !noCheckpoint) converged++;
    else if (status.stage === "Succeeded") notes.push(`${name}: Succeeded but missing ${missing.join(",")}`);
    lost += missing.length + noCheckpoint;
    const own = jobs.filter((j) => j.metadata?.labels?.[OWNER_LABEL] === name);
    for (const stage of STAGES) {
      const stageJobs = own.filter((j) => j.metadata?.labels?.[STAGE_LABEL] === stage);
      if (stageJobs.length > 1) duplicates += stageJobs.length - 1;
      for (const job of stageJobs) {
        const runs = pods.filter((p) => p.metadata?.labels?.["job-name"] === job.metadata?.name).length;
        const creations = created.get(job.metadata?.name ?? "") ?? 0;
        if (runs > 1) duplicates += runs - 1;
        if (creations > 1) duplicates += creations - 1;
        if (runs > 1 || creations > 1)
          notes.push(`${job.metadata?.name}: ${runs} pods, created ${creations}x`);
      }
    }
  }
  return { converged, duplicates, lost, notes };
}

/** Job name → how many times the API server created it (201 answers to create or apply). */
function jobCreations(events: AuditEvent[], namespace: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of events) {
    const o = e.objectRef;
    if (o?.resource !== "jobs" || o.namespace !== namespace || o.subresource || !o.name) continue;
    if ((e.verb === "create" || e.verb === "patch") && e.responseStatus?.code === 201)
      counts.set(o.name, (counts.get(o.name) ?? 0) + 1);
  }
  return counts;
}

async function allSucceeded(env: FaultEnv, namespace: string, n: number): Promise<boolean> {
  const { items } = await env.admin.list(DraftTrainings, namespace);
  return items.filter((d) => d.status?.stage === "Succeeded").length >= n;
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

// ---------------------------------------------------------------------------------------------
// Scenarios

/** kube-apiserver SIGKILLed and restarted on the same etcd while n pipelines run. */
export async function apiServerRestart(env: FaultEnv, n: number, downSeconds = 3): Promise<FaultResult> {
  const ns = "fault-restart";
  await createNamespace(env, ns);
  const kubelet = await succeedingKubelet(env, "restart-node", [ns]);
  const replicas = [await startReplica(env, "operator-a", ns), await startReplica(env, "operator-b", ns)];
  try {
    const dts = names("restart", n);
    await createDraftTrainings(env, ns, dts);
    // In the middle: a third of all stage Jobs exist.
    await until(
      "a third of the stage Jobs",
      async () => (await env.admin.list(Jobs, ns)).items.length >= Math.ceil((n * STAGES.length) / 3),
      120_000,
      100,
    );
    const jobsAtKill = (await env.admin.list(Jobs, ns)).items.length;
    await env.cp.killApiServer();
    await sleep(downSeconds * 1000);
    await env.cp.startApiServer();
    const back = performance.now();
    await until("every pipeline succeeded", () => allSucceeded(env, ns, n), 60_000 + n * 4000, 500);
    const secondsToConverge = (performance.now() - back) / 1000;
    await sleep(1000); // anything still in flight lands before the end state is read
    const end = await pipelinesEndState(env, ns, dts);
    return {
      fault: `kube-apiserver killed ${downSeconds}s, restarted`,
      objects: n,
      secondsToConverge,
      ...end,
      notes: [`killed with ${jobsAtKill}/${n * STAGES.length} stage Jobs created`, ...end.notes],
    };
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await kubelet.stop();
  }
}

/**
 * The leader SIGKILLed between a stage's applies: a quota refuses the Jobs, so every first stage
 * has its claim and task ConfigMap but no Job when the leader dies; the next leader completes it.
 */
export async function leaderKilledBetweenApplies(env: FaultEnv, n: number): Promise<FaultResult> {
  const ns = "fault-sigkill";
  await createNamespace(env, ns);
  await env.admin.create(ResourceQuotas, {
    apiVersion: "v1",
    kind: "ResourceQuota",
    metadata: { name: "no-jobs", namespace: ns },
    spec: { hard: { "count/jobs.batch": "0" } },
  } as KubeObject);
  const kubelet = await succeedingKubelet(env, "sigkill-node", [ns]);
  const a = await startReplica(env, "operator-a", ns);
  await until("operator-a leading", async () => holderReplica(await leaseHolder(env, ns)) === "operator-a");
  const b = await startReplica(env, "operator-b", ns);
  try {
    const dts = names("halfway", n);
    await createDraftTrainings(env, ns, dts);
    await until(
      "every first stage's task ConfigMap, and no Job",
      async () => {
        const cms = (await env.admin.list(ConfigMaps, ns)).items.filter((c) =>
          c.metadata?.name?.endsWith("-data-task"),
        );
        return cms.length === n;
      },
      60_000 + n * 1000,
    );
    const jobsAtKill = (await env.admin.list(Jobs, ns)).items.length;
    const refused = env.cp
      .auditEvents()
      .filter(
        (e) =>
          e.user.username === "operator-a" &&
          e.objectRef?.resource === "jobs" &&
          e.responseStatus?.code === 403,
      ).length;
    a.kill("SIGKILL");
    await a.exited;
    const killedAt = performance.now();
    await env.admin.delete(ResourceQuotas, ns, "no-jobs");
    await until(
      "operator-b leading",
      async () => holderReplica(await leaseHolder(env, ns)) === "operator-b",
      30_000,
    );
    const takeover = (performance.now() - killedAt) / 1000;
    await until("every pipeline succeeded", () => allSucceeded(env, ns, n), 60_000 + n * 4000, 500);
    const secondsToConverge = (performance.now() - killedAt) / 1000;
    await sleep(1000);
    const end = await pipelinesEndState(env, ns, dts);
    return {
      fault: "leader SIGKILLed between a stage's applies",
      objects: n,
      secondsToConverge,
      ...end,
      notes: [
        `at the kill: ${jobsAtKill} Jobs, ${refused} Job applies refused by the quota; standby led after ${takeover.toFixed(1)}s`,
        ...end.notes,
      ],
    };
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await kubelet.stop();
  }
}

/**
 * The leader's API server frozen (its proxy forwards nothing, connections stay open) while n
 * pipelines run: it must stop writing within its renew deadline, a standby takes over once the
 * lease has passed, and after the freeze thaws no write of the old leader lands late.
 */
export async function frozenLeader(env: FaultEnv, n: number, frozenExtraSeconds = 3): Promise<FaultResult> {
  const ns = "fault-freeze";
  const renewDeadlineMs = 4000;
  await createNamespace(env, ns);
  const kubelet = await succeedingKubelet(env, "freeze-node", [ns]);
  const url = new URL(env.cp.server);
  const proxy = await startFreezingProxy({ host: url.hostname, port: Number(url.port) });
  const a = await startReplica(env, "operator-a", ns, { server: proxy.url });
  await until("operator-a leading", async () => holderReplica(await leaseHolder(env, ns)) === "operator-a");
  const b = await startReplica(env, "operator-b", ns);
  try {
    const dts = names("frozen", n);
    await createDraftTrainings(env, ns, dts);
    // Freeze while the leader is busy: its first Job is out, the other objects' writes in flight.
    await until(
      "the leader at work",
      async () => (await env.admin.list(Jobs, ns)).items.length >= 1,
      60_000,
      50,
    );
    proxy.freeze();
    const frozenAt = Date.now();
    await until(
      "operator-b leading",
      async () => holderReplica(await leaseHolder(env, ns)) === "operator-b",
      60_000,
      100,
    );
    const takeoverS = (Date.now() - frozenAt) / 1000;
    await sleep(frozenExtraSeconds * 1000);
    proxy.thaw();
    const thawedAt = Date.now();
    await until("every pipeline succeeded", () => allSucceeded(env, ns, n), 60_000 + n * 4000, 500);
    const secondsToConverge = (Date.now() - frozenAt) / 1000;
    await sleep(3000); // late writes of the old leader, if any, land now
    const events = env.cp.auditEvents();
    const stale = staleWrites(events, "operator-a", ns, renewDeadlineMs);
    const stoppedLeading = a.logs
      .map((l) => {
        try {
          const entry = JSON.parse(l) as { time?: number | string; msg?: string };
          const time = typeof entry.time === "string" ? Date.parse(entry.time) : entry.time;
          return { time, msg: entry.msg };
        } catch {
          return {};
        }
      })
      .find(
        (l) =>
          l.time &&
          l.time >= frozenAt &&
          /leadership lost|stopped leading|lost leadership/i.test(l.msg ?? ""),
      );
    const end = await pipelinesEndState(env, ns, dts);
    return {
      fault: "leader's API server frozen (proxy)",
      objects: n,
      secondsToConverge,
      staleLeaderWrites: stale.count,
      leaderStoppedAfterS: stoppedLeading?.time ? (stoppedLeading.time - frozenAt) / 1000 : undefined,
      ...end,
      notes: [
        `standby led ${takeoverS.toFixed(1)}s after the freeze (lease 6s, renew deadline 4s); thawed ${((thawedAt - frozenAt) / 1000).toFixed(1)}s after it`,
        stoppedLeading?.time
          ? `old leader logged losing leadership ${((stoppedLeading.time - frozenAt) / 1000).toFixed(1)}s after the freeze`
          : "old leader never logged losing leadership",
        ...stale.examples,
        ...end.notes,
      ],
    };
  } finally {
    proxy.thaw();
    await Promise.all([a.stop(), b.stop()]);
    await proxy.close();
    await kubelet.stop();
  }
}

/**
 * Writes by `user` that the API server accepted (2xx) and received after the user's leadership
 * deadline: its last accepted Lease renewal before another replica took the Lease, plus the renew
 * deadline. Before the deadline a leader may write; after it, a correct one has stopped.
 */
export function staleWrites(
  events: AuditEvent[],
  user: string,
  namespace: string,
  renewDeadlineMs: number,
): { count: number; deadline?: string; examples: string[] } {
  const ok = (e: AuditEvent) => (e.responseStatus?.code ?? 0) < 300;
  const leaseWrites = events.filter(
    (e) => e.objectRef?.resource === "leases" && e.objectRef.namespace === namespace && ok(e),
  );
  const takeover = leaseWrites.find(
    (e, i) => e.user.username !== user && leaseWrites.slice(0, i).some((p) => p.user.username === user),
  );
  if (!takeover) return { count: 0, examples: ["no takeover in the audit log"] };
  const takeoverAt = Date.parse(takeover.requestReceivedTimestamp);
  const lastRenew = leaseWrites
    .filter((e) => e.user.username === user && Date.parse(e.stageTimestamp) <= takeoverAt)
    .at(-1);
  if (!lastRenew) return { count: 0, examples: [] };
  const deadline = Date.parse(lastRenew.stageTimestamp) + renewDeadlineMs;
  const late = events.filter(
    (e) => e.user.username === user && ok(e) && Date.parse(e.requestReceivedTimestamp) > deadline,
  );
  return {
    count: late.length,
    deadline: new Date(deadline).toISOString(),
    examples: late
      .slice(0, 3)
      .map(
        (e) =>
          `stale write: ${e.verb} ${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""} ${e.objectRef?.name} at +${((Date.parse(e.requestReceivedTimestamp) - deadline) / 1000).toFixed(1)}s past the deadline`,
      ),
  };
}

/**
 * A watch that expires: kube-apiserver restarted with --watch-cache=false, the operator's
 * connection frozen while objects are created, suspended and deleted, etcd compacted, then the
 * connection reset: its watches resume from a compacted resourceVersion, get 410 Gone and must
 * relist. Every change is acted on once: new ones get their Job, suspended ones a suspended Job,
 * deleted ones are cleaned up; no Job is created twice.
 */
export async function watchExpired(env: FaultEnv, n: number): Promise<FaultResult> {
  const ns = "fault-gone";
  await env.cp.killApiServer();
  await env.cp.startApiServer(["--watch-cache=false"]);
  await createNamespace(env, ns);
  // Pods stay running: every object sits in its first stage.
  const kubelet = new FakeKubelet(env.kc, { nodeName: "gone-node", podIP: () => "127.0.0.1" });
  await kubelet.start();
  const url = new URL(env.cp.server);
  const proxy = await startFreezingProxy({ host: url.hostname, port: Number(url.port) });
  const op = await startReplica(env, "operator-c", ns, { server: proxy.url, leaderElect: false });
  try {
    const before = names("gone", n);
    await createDraftTrainings(env, ns, before);
    const hasJob = async (name: string) =>
      (await env.admin.get(Jobs, ns, `${name}-data`).then(
        () => true,
        () => false,
      )) as boolean;
    await until(
      "every first-stage Job",
      async () => (await env.admin.list(Jobs, ns)).items.length >= n,
      60_000 + n * 1000,
    );
    proxy.freeze();
    const changed = Math.max(1, Math.floor(n / 4));
    const created = names("gone-new", Math.max(1, Math.floor(n / 2)));
    const suspended = before.slice(0, changed);
    const deleted = before.slice(changed, 2 * changed);
    await createDraftTrainings(env, ns, created);
    for (const name of suspended)
      await env.admin.patch(DraftTrainings, ns, name, { spec: { suspend: true } }, { type: "merge" });
    for (const name of deleted) await env.admin.delete(DraftTrainings, ns, name);
    const revision = await env.cp.compactEtcd();
    const faultAt = performance.now();
    proxy.reset();
    proxy.thaw();
    const missed = async () => {
      const out: string[] = [];
      for (const name of created) if (!(await hasJob(name))) out.push(`${name}: no Job`);
      for (const name of suspended) {
        const job = await env.admin.get(Jobs, ns, `${name}-data`).catch(() => undefined);
        if (!(job as any)?.spec?.suspend) out.push(`${name}: Job not suspended`);
      }
      for (const name of deleted) {
        const dt = await env.admin.get(DraftTrainings, ns, name).catch(() => undefined);
        if (dt) out.push(`${name}: not cleaned up`);
      }
      return out;
    };
    let lastMissed: string[] = [];
    const converged = await until(
      "every change acted on",
      async () => {
        lastMissed = await missed();
        return lastMissed.length === 0;
      },
      60_000,
      300,
    ).catch(() => false);
    const secondsToConverge = (performance.now() - faultAt) / 1000;
    await sleep(1000);
    const gone = op.logs.filter((l) => l.includes("410")).length;
    const jobs = (await env.admin.list(Jobs, ns)).items;
    const creations = jobCreations(env.cp.auditEvents(), ns);
    let duplicates = 0;
    for (const [, c] of creations) if (c > 1) duplicates += c - 1;
    for (const name of [...before, ...created]) {
      const own = jobs.filter((j) => j.metadata?.labels?.[OWNER_LABEL] === name).length;
      if (own > 1) duplicates += own - 1;
    }
    const objects = before.length + created.length;
    return {
      fault: "watch expired (410 Gone: compacted, watch cache off)",
      objects,
      converged: converged ? objects : objects - lastMissed.length,
      duplicates,
      lost: lastMissed.length,
      secondsToConverge,
      notes: [
        `etcd compacted at revision ${revision}; operator logged ${gone} 410 relist(s)`,
        ...lastMissed.slice(0, 5),
      ],
    };
  } finally {
    proxy.thaw();
    await op.stop();
    await proxy.close();
    await kubelet.stop();
  }
}

export function faultTable(results: FaultResult[]): string {
  const header = ["fault", "objects", "converged", "duplicates", "lost", "time to converge"];
  const rows = results.map((r) => [
    r.fault,
    String(r.objects),
    String(r.converged),
    String(r.duplicates),
    String(r.lost),
    `${r.secondsToConverge.toFixed(1)} s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ");
  const notes = results.flatMap((r) => r.notes.map((n) => `  ${r.fault}: ${n}`));
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line), "", ...notes].join("\n");
}

/**
 * A runtime pod lost mid-training: the reference backend really trains (its pods run as local
 * processes, process-kubelet.ts); once status shows training past its first checkpoint, the train pod
 * is deleted. The Job's next pod must resume from the latest checkpoint and status must show the
 * resumed step (never a step below the checkpoint the runtime resumed from).
 */
export async function podLostMidTraining(
  env: FaultEnv,
  opts: { maxSteps?: number; checkpointInterval?: number } = {},
): Promise<FaultResult> {
  const { ProcessKubelet } = await import("./process-kubelet.ts");
  const { buildOperator } = await import("../../operator/src/operator.ts");
  const { loadConfig } = await import("../../operator/src/lib/config.ts");
  const { createLogger } = await import("../../operator/src/lib/log.ts");
  const { freePort } = await import("./controlplane.ts");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  // ~45 steps/s on these cores: long enough after the resume for status to show a few steps.
  const maxSteps = opts.maxSteps ?? 400;
  const interval = opts.checkpointInterval ?? 100;
  const ns = "fault-podlost";
  await createNamespace(env, ns);
  const storage = mkdtempSync(join(tmpdir(), "specops-podlost-"));
  const resumed: number[] = [];
  const runtimeLog: string[] = [];
  const kubelet = new ProcessKubelet(env.kc, {
    storageRoot: storage,
    onOutput: (pod, line) => {
      runtimeLog.push(`[${pod}] ${line}`);
      if (process.env.SPECOPS_FAULTS_VERBOSE) console.log(`[${pod}] ${line}`);
      const m = line.match(/AUTO-RESUME from .* at step (\d+)/);
      if (m) resumed.push(Number(m[1]));
    },
  });
  await kubelet.start();
  // In-process (this scenario kills a pod, not the operator): progress is read on a free port.
  const progressPort = await freePort();
  const operatorKc = new KubeConfig();
  operatorKc.loadFromFile(env.cp.kubeconfigFor("operator-c"));
  const manager = buildOperator({
    connection: operatorKc,
    config: loadConfig([], {
      SPECOPS_WATCH_NAMESPACES: ns,
      SPECOPS_PORT: "0",
      SPECOPS_LEADER_ELECT: "false",
      SPECOPS_RUNTIME_IMAGE: "specops-runtime:local",
    }),
    logger: createLogger({ level: "silent" }),
    progressPort,
  });
  await manager.start();
  const name = "podlost";
  try {
    const dt = tinyDraftTraining(ns, name);
    dt.spec.progressInterval = "1s";
    dt.spec.data.maxSamples = 64;
    dt.spec.training = { ...dt.spec.training, maxSteps, checkpointInterval: interval };
    await env.admin.create(DraftTrainings, dt);
    let shown = "";
    const get = async () => {
      const obj = await env.admin.get(DraftTrainings, ns, name);
      const line = `${obj.status?.stage} step=${obj.status?.progress?.step}`;
      if (process.env.SPECOPS_FAULTS_VERBOSE && line !== shown) console.log(`[status] ${line}`);
      shown = line;
      return obj;
    };
    const trainPod = async () =>
      (await env.admin.list(Pods, ns, { labelSelector: `job-name=${name}-train` })).items.find(
        (p) => p.status?.phase === "Running" && !p.metadata?.deletionTimestamp,
      );
    // Past the first checkpoint, as status shows it.
    const before = await until(
      "training past its first checkpoint in status",
      async () => {
        const s = (await get()).status;
        return s?.stage === "Train" && (s.progress?.step ?? 0) > interval ? s.progress.step : undefined;
      },
      300_000,
      250,
    );
    const lostPod = await trainPod();
    if (!lostPod) throw new Error("no running train pod to delete");
    await env.admin.delete(Pods, ns, lostPod.metadata?.name ?? "");
    const lostAt = performance.now();
    const next = await until(
      "the Job's next pod running",
      async () => {
        const p = await trainPod();
        return p && p.metadata?.name !== lostPod.metadata?.name ? p : undefined;
      },
      120_000,
      250,
    );
    // Every step status shows from here on; the first ones may still be the lost pod's last report.
    const seen: number[] = [];
    const done = await until(
      "training finished",
      async () => {
        const s = (await get()).status;
        if (s?.progress?.step !== undefined && s.stage === "Train") seen.push(s.progress.step);
        return s?.stage === "Succeeded" || s?.stage === "Failed" ? s : undefined;
      },
      240_000,
      250,
    );
    const secondsToConverge = (performance.now() - lostAt) / 1000;
    const resumedFrom = resumed.at(-1);
    const train = (done.stages ?? []).find((r: any) => r.name === "Train");
    const afterResume = seen.filter((s) => s !== before);
    const wentBack = resumedFrom === undefined ? true : afterResume.some((s) => s < resumedFrom);
    const ok =
      done.stage === "Succeeded" &&
      resumedFrom !== undefined &&
      resumedFrom >= interval &&
      done.checkpoint?.step === maxSteps &&
      afterResume.length > 0 &&
      !wentBack;
    return {
      fault: "runtime pod lost mid-training",
      objects: 1,
      converged: ok ? 1 : 0,
      // The stage ran again from scratch instead of resuming: a duplicate of the work done.
      duplicates: resumedFrom === undefined || resumedFrom === 0 ? 1 : 0,
      lost: done.checkpoint?.step === maxSteps ? 0 : 1,
      secondsToConverge,
      notes: [
        `pod ${lostPod.metadata?.name} deleted at status step ${before}; ${next.metadata?.name} resumed from step ${resumedFrom ?? "none"} (checkpoints every ${interval})`,
        `status steps after the loss: ${afterResume.length ? `${Math.min(...afterResume)}..${Math.max(...afterResume)}` : "none seen"}; Train attempts ${train?.attempts}; final checkpoint step ${done.checkpoint?.step}`,
        ...(ok ? [] : runtimeLog.slice(-10)),
      ],
    };
  } finally {
    await manager.stop();
    await kubelet.stop();
    rmSync(storage, { recursive: true, force: true });
  }
}
