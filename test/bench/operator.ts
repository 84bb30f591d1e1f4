// Operator benchmark: 200 DraftTrainings applied at once to the local control plane. Measures the
// time until every first-stage Job exists and every status is written, against the floor: the same
// creates and status patches issued directly by a minimal client with the operator's concurrency.
// Then 1000 idle (suspended) DraftTrainings for the operator's steady-state memory, and the same
// burst with 1000 DraftTrainings against a floor of 1000. A fresh operator process then watches
// the 1000 idle objects for 60 s (its CPU seconds, and its writes counted by identity in the API
// server's audit log: an idle operator writes nothing), and finally 10,000 idle objects (memory).

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig, Watch } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { Agent, fetch } from "undici";
import { draftTrainingResource } from "../../operator/src/api/kinds.ts";
import {
  stageJob,
  storageClaim,
  taskConfigMap,
} from "../../operator/src/controllers/drafttraining/desired.ts";
import { storageLayout } from "../../operator/src/controllers/drafttraining/plan.ts";
import { stageTask } from "../../operator/src/controllers/drafttraining/runtimetasks.ts";
import { OPERATOR_RBAC_RULES } from "../../operator/src/rbac.ts";
import { startControlPlane, TEST_USERS_GROUP } from "../controlplane/controlplane.ts";
import { apiServerRequests } from "../support/apiserver-requests.ts";
import { filledCompileCache, operatorImageSettings } from "./operator-image-settings.ts";
import { startOperatorProcess } from "./operator-process.ts";

const N = Number(process.env.BENCH_N ?? 200);
const N_BIG = Number(process.env.BENCH_N_BIG ?? 1000);
const IDLE = Number(process.env.BENCH_IDLE ?? 1000);
const IDLE_BIG = Number(process.env.BENCH_IDLE_BIG ?? 10_000);
const IDLE_WINDOW_S = Number(process.env.BENCH_IDLE_WINDOW_S ?? 60);
const OPERATOR_USER = "specops-operator";
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2); // the operator's --max-concurrent-reconciles (default 2)
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

// Audit log on (for the idle operator's writes, by identity); the operator has its own token.
const cp = await startControlPlane({
  controllerManager: false,
  startTimeoutSeconds: 180,
  audit: true,
  users: [OPERATOR_USER],
});
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
const dispatcher = new Agent({ connect: { ca: cp.caPem }, connections: 64 });

async function req(method: string, path: string, body?: unknown, contentType = "application/json") {
  const res = await fetch(`${cp.server}${path}`, {
    method,
    dispatcher,
    headers: { authorization: `Bearer ${cp.token}`, "content-type": contentType, accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

const manifest = yaml.load(readFileSync(join(root, "examples/tiny-drafttraining.yaml"), "utf8")) as any;
const dtOf = (ns: string, i: number, suspend = false) => ({
  ...manifest,
  metadata: { name: `bench-${i}`, namespace: ns },
  spec: { ...manifest.spec, suspend },
});
const dtPath = (ns: string) => `/apis/specops.dev/v1alpha1/namespaces/${ns}/drafttrainings`;

async function inLanes<T>(items: T[], lanes: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

for (const file of ["acceptanceevals", "drafttrainings", "specserves"]) {
  const crd = yaml.load(readFileSync(join(root, `crds/${file}.specops.dev.yaml`), "utf8")) as any;
  await req("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
}
await new Promise((r) => setTimeout(r, 3000)); // CRDs established
for (const ns of [
  "bench-floor",
  "bench-floor-big",
  "bench-op",
  "bench-op-big",
  "bench-idle",
  "specops-system",
]) {
  await req("POST", "/api/v1/namespaces", { metadata: { name: ns } });
}
// The operator holds exactly the generated ClusterRole, as the chart binds it.
await req("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
  metadata: { name: "specops-operator" },
  rules: OPERATOR_RBAC_RULES,
});
await req("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
  metadata: { name: "specops-operator" },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "specops-operator" },
  subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: TEST_USERS_GROUP }],
});

// Floor: the same API writes the operator has to make for each object, issued directly by a minimal
// client: the finalizer, server-side applies of the very objects its pure builders produce, the
// status, and the Event recording the stage start. What the operator adds on top is its machinery:
// watches, cache, queue and reconcile decisions.
const apply = (obj: any, sub = "") => {
  const plural = `${obj.kind.toLowerCase()}s`;
  const group = obj.apiVersion.includes("/") ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const path = `${group}/namespaces/${obj.metadata.namespace}/${plural}/${obj.metadata.name}${sub}`;
  return req("PATCH", `${path}?fieldManager=bench-floor&force=true`, obj, "application/apply-patch+yaml");
};
async function floor(ns: string, n: number): Promise<number> {
  const floorStart = performance.now();
  const created = await Promise.all(
    Array.from({ length: n }, (_, i) => req("POST", dtPath(ns), dtOf(ns, i))),
  );
  await inLanes(created, WORKERS, async (raw) => {
    const dt = draftTrainingResource.parse(raw);
    const layout = storageLayout(dt);
    await req(
      "PATCH",
      `${dtPath(raw.metadata.namespace)}/${raw.metadata.name}`,
      [{ op: "add", path: "/metadata/finalizers", value: ["specops.dev/drafttraining-cleanup"] }],
      "application/json-patch+json",
    );
    const claim = storageClaim(dt, layout);
    if (claim) await apply(claim);
    await apply(taskConfigMap(dt, "PrepareData", stageTask(dt, "PrepareData", layout)));
    await apply(
      stageJob(
        dt,
        "PrepareData",
        layout,
        { defaultImage: "specops-runtime:bench", progressPort: 9090 },
        { suspend: false },
      ),
    );
    const { apiVersion, kind, metadata } = raw;
    await apply(
      {
        apiVersion,
        kind,
        metadata: { name: metadata.name, namespace: metadata.namespace },
        status: { stage: "PrepareData" },
      },
      "/status",
    );
    void req("POST", `/apis/events.k8s.io/v1/namespaces/${metadata.namespace}/events`, {
      metadata: { name: `${metadata.name}.${Date.now().toString(16)}`, namespace: metadata.namespace },
      eventTime: new Date().toISOString().replace("Z", "000Z"),
      reportingController: "bench-floor",
      reportingInstance: "bench",
      action: "PrepareDataStarted",
      reason: "PrepareDataStarted",
      type: "Normal",
      note: "stage PrepareData started",
      regarding: { apiVersion, kind, name: metadata.name, namespace: metadata.namespace, uid: metadata.uid },
    }).catch((err) => console.error(`floor event: ${err.message}`));
  });
  return (performance.now() - floorStart) / 1000;
}
// BENCH_N=0 / BENCH_N_BIG=0 skip a burst and its floor (to iterate on the later steps alone).
const floorSeconds = N > 0 ? await floor("bench-floor", N) : Number.NaN;
const floorBigSeconds = N_BIG > 0 ? await floor("bench-floor-big", N_BIG) : Number.NaN;

// The operator, as its own process (as in a pod), watching the two benchmark namespaces.
// Run the operator as its image does: the same NODE_OPTIONS (V8 heap sizing) and MALLOC_ARENA_MAX
// as operator/Dockerfile, and a compile cache filled beforehand by `main.ts --help`, as the image's
// build step fills its own (without it Node loads its TypeScript stripper at start, ~25 MB of RSS).
// BENCH_NO_COMPILE_CACHE=1 measures without it.
const { nodeArgs, nodeOptions, mallocArenas } = operatorImageSettings(root);
const compileCacheDir = process.env.BENCH_NO_COMPILE_CACHE ? undefined : filledCompileCache(root, nodeArgs);
const compileCache = compileCacheDir?.dir;
const startOperator = (
  namespaces: string,
  extra: { nodeArgs?: string[]; env?: Record<string, string> } = {},
) =>
  startOperatorProcess({
    root,
    kubeconfigPath: cp.users[OPERATOR_USER]?.kubeconfigPath,
    namespaces,
    compileCache,
    nodeArgs: extra.nodeArgs,
    env: { SPECOPS_MAX_CONCURRENT_RECONCILES: String(WORKERS), ...extra.env },
  });
let op = await startOperator("bench-op,bench-op-big,bench-idle");
let metricsPort = op.metricsPort;
const memory = (field: "VmRSS" | "VmHWM") => op.memory(field);
await new Promise((r) => setTimeout(r, 3000)); // started and synced on empty namespaces

/**
 * Where an operator's resident memory lies: its mappings from /proc/<pid>/smaps grouped (the node
 * binary, other files, the malloc heap, anonymous mappings: V8's heap, mmap'd malloc chunks, thread
 * stacks), and V8's heap spaces (committed and used) and external memory from its /metrics.
 */
function memoryDetail(pid: number, metricsText: string): string {
  const groups = new Map<string, { rss: number; dirty: number }>();
  let group = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
    if (head) {
      const path = head[1] ?? "";
      group =
        path === process.execPath || path.endsWith("/node")
          ? "node binary"
          : path === "[heap]"
            ? "malloc heap [heap]"
            : path.startsWith("[stack")
              ? "main stack"
              : path.startsWith("/")
                ? "other files"
                : path === ""
                  ? "anonymous (V8 heap, mmap'd malloc, thread stacks)"
                  : path;
      continue;
    }
    const kb = line.match(/^(Rss|Private_Dirty):\s+(\d+) kB/);
    if (!kb) continue;
    const g = groups.get(group) ?? { rss: 0, dirty: 0 };
    if (kb[1] === "Rss") g.rss += Number(kb[2]);
    else g.dirty += Number(kb[2]);
    groups.set(group, g);
  }
  const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
  const lines = [...groups]
    .sort((a, b) => b[1].rss - a[1].rss)
    .map(
      ([g, v]) =>
        `    ${g.padEnd(52)} rss ${mb(v.rss).padStart(9)}  private dirty ${mb(v.dirty).padStart(9)}`,
    );
  const spaces = new Map<string, { total: number; used: number }>();
  for (const m of metricsText.matchAll(
    /^nodejs_heap_space_size_(total|used)_bytes\{space="([^"]+)"\} (\S+)/gm,
  )) {
    const s = spaces.get(m[2] as string) ?? { total: 0, used: 0 };
    s[m[1] as "total" | "used"] = Number(m[3]);
    spaces.set(m[2] as string, s);
  }
  const b = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  let committed = 0;
  let used = 0;
  for (const s of spaces.values()) {
    committed += s.total;
    used += s.used;
  }
  const external = Number(metricsText.match(/^nodejs_external_memory_bytes (\S+)/m)?.[1] ?? Number.NaN);
  return [
    "  where it lies (/proc/<pid>/smaps):",
    ...lines,
    `  V8 heap: committed ${b(committed)}, used ${b(used)}; external (ArrayBuffers, strings outside the heap) ${b(external)}`,
    ...[...spaces]
      .filter(([, s]) => s.total > 0)
      .map(
        ([name, s]) =>
          `    ${name.padEnd(24)} committed ${b(s.total).padStart(9)}  used ${b(s.used).padStart(9)}`,
      ),
  ].join("\n");
}

/**
 * Resolves when every DraftTraining in ns has a status and a Job exists for each: watched, not
 * polled, so the benchmark adds no load of its own to the API server it measures.
 */
async function waitAllWritten(ns: string, n: number, timeoutMs: number) {
  const written = new Set<string>();
  const jobs = new Set<string>();
  const watches: AbortController[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${ns}: ${written.size}/${n} statuses, ${jobs.size}/${n} Jobs after timeout`)),
        timeoutMs,
      );
      const check = () => {
        if (written.size >= n && jobs.size >= n) {
          clearTimeout(timer);
          resolve();
        }
      };
      // A watch without resourceVersion starts with every current object; client-node ends each
      // watch request after a while, so a finished watch simply starts again.
      const watch = (path: string, onObject: (o: any) => void): void => {
        void new Watch(kc)
          .watch(
            path,
            {},
            (_type, obj) => {
              onObject(obj);
              check();
            },
            () => {
              if (written.size < n || jobs.size < n) setTimeout(() => watch(path, onObject), 100);
            },
          )
          .then((c) => watches.push(c), reject);
      };
      watch(dtPath(ns), (o) => o.status?.stage && written.add(o.metadata.name));
      watch(`/apis/batch/v1/namespaces/${ns}/jobs`, (o) => jobs.add(o.metadata.name));
    });
  } finally {
    for (const w of watches) w.abort();
  }
}

/** The API server's request counters (apiserver_request_total) by verb and resource. */
const requestCounts = async () =>
  apiServerRequests(
    await (
      await fetch(`${cp.server}/metrics`, { dispatcher, headers: { authorization: `Bearer ${cp.token}` } })
    ).text(),
  );
const cpuSeconds = async () =>
  Number(
    (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).match(
      /^process_cpu_seconds_total (\S+)/m,
    )?.[1] ?? Number.NaN,
  );
const before = await requestCounts();
const cpuBefore = await cpuSeconds();
async function burst(ns: string, n: number): Promise<number> {
  if (n === 0) return Number.NaN;
  const start = performance.now();
  await Promise.all(Array.from({ length: n }, (_, i) => req("POST", dtPath(ns), dtOf(ns, i))));
  await waitAllWritten(ns, n, 900_000);
  return (performance.now() - start) / 1000;
}
const operatorSeconds = await burst("bench-op", N);
const peakAfterBurst = memory("VmHWM");
const after = await requestCounts();
const operatorCpu = (await cpuSeconds()) - cpuBefore;
const operatorMetrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
const reconciles = operatorMetrics
  .split("\n")
  .filter((l) => l.startsWith('controller_runtime_reconcile_total{controller="drafttraining"'))
  .map((l) => `${l.match(/result="([^"]+)"/)?.[1]}=${(Number(l.split(" ").at(-1)) / N).toFixed(2)}`)
  .join(" ");
const calls = [...after]
  .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
  .filter(([k, v]) => v > 0 && !k.startsWith("WATCH") && !k.includes("namespaces"))
  .sort((a, b) => b[1] - a[1]);

const idleIds = Array.from({ length: IDLE }, (_, i) => i);
await inLanes(idleIds, 16, async (i) => {
  await req("POST", dtPath("bench-idle"), dtOf("bench-idle", i, true));
});
await waitAllWritten("bench-idle", IDLE, 900_000);
await new Promise((r) => setTimeout(r, 15_000)); // settle: requeues, GC
const rssIdle = memory("VmRSS");
const idleMetrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
const heapUsedMb =
  Number(idleMetrics.match(/^nodejs_heap_size_used_bytes (\S+)/m)?.[1] ?? Number.NaN) / 1024 / 1024;
const peakIdle = memory("VmHWM");

// The same burst at 1000 objects, against the floor at 1000.
const operatorBigSeconds = await burst("bench-op-big", N_BIG);
await op.stop();

// A fresh operator on the idle objects alone: after start-up and settling, a quiet minute.
op = await startOperator("bench-idle");
metricsPort = op.metricsPort;
await new Promise((r) => setTimeout(r, 15_000));
const operatorWrites = (fromMs: number, toMs: number) =>
  cp.auditEvents().filter((e) => {
    const at = Date.parse(e.requestReceivedTimestamp);
    return e.user.username === OPERATOR_USER && at >= fromMs && at <= toMs;
  });
const idleCpuBefore = await cpuSeconds();
const idleFrom = Date.now();
await new Promise((r) => setTimeout(r, IDLE_WINDOW_S * 1000)); // BENCH_IDLE_WINDOW_S=0 skips it
const idleCpu = (await cpuSeconds()) - idleCpuBefore;
const idleWrites = operatorWrites(idleFrom, Date.now());

// 10,000 idle objects: memory.
await inLanes(
  Array.from({ length: IDLE_BIG - IDLE }, (_, i) => IDLE + i),
  16,
  async (i) => {
    await req("POST", dtPath("bench-idle"), dtOf("bench-idle", i, true));
  },
);
await waitAllWritten("bench-idle", IDLE_BIG, 1_800_000);
await new Promise((r) => setTimeout(r, 15_000));
const rssBig = memory("VmRSS");
const heapBigMb =
  Number(
    (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).match(
      /^nodejs_heap_size_used_bytes (\S+)/m,
    )?.[1] ?? Number.NaN,
  ) /
  1024 /
  1024;
const peakBig = memory("VmHWM");
const memoryBreakdown = memoryDetail(
  op.pid,
  await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
);
// BENCH_HEAP_SNAPSHOT=1 (with BENCH_OPERATOR_NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2): a heap
// snapshot of the 10,000-object operator, written in the bench's working directory.
if (process.env.BENCH_HEAP_SNAPSHOT) {
  const snapshots = () => readdirSync(".").filter((f) => f.endsWith(".heapsnapshot"));
  const had = new Set(snapshots());
  process.kill(op.pid, "SIGUSR2");
  for (let size = -1, tries = 0; tries < 120; tries++) {
    await new Promise((r) => setTimeout(r, 2000));
    const file = snapshots().find((f) => !had.has(f));
    const now = file ? statSync(file).size : -1;
    if (now > 0 && now === size) break;
    size = now;
  }
}
await op.stop();
console.error(
  `operator RSS with ${IDLE_BIG} idle objects: ${rssBig.toFixed(0)} MB (peak ${peakBig.toFixed(0)} MB, JS heap ${heapBigMb.toFixed(0)} MB)\n${memoryBreakdown}`,
);

// BENCH_RESTART_VARIANTS: fresh operators started on the 10,000 objects, one after another, each
// with the image's settings plus a variant's: ";" between variants, in each `--flag` tokens added
// to node's command line and `NAME=value` tokens to the environment ("base" adds nothing). Each is read
// once its reconciles stop and 20 s passed: RSS, JS heap, CPU seconds since start (start-up, the
// list of every kind and a reconcile of each object). To compare settings without the 10,000
// creations each time.
const restarts: string[] = [];
for (const variant of (process.env.BENCH_RESTART_VARIANTS ?? "").split(";").map((v) => v.trim())) {
  if (!variant) continue;
  const tokens = variant.split(/\s+/).filter((t) => t !== "base");
  const env = Object.fromEntries(
    tokens.filter((t) => !t.startsWith("--")).map((t) => t.split("=", 2) as [string, string]),
  );
  const started = performance.now();
  op = await startOperator("bench-idle", {
    nodeArgs: tokens.filter((t) => t.startsWith("--")),
    env,
  });
  metricsPort = op.metricsPort;
  const reconciled = async () =>
    [
      ...(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).matchAll(
        /^controller_runtime_reconcile_total\{controller="drafttraining"[^}]*\} (\S+)/gm,
      ),
    ].reduce((sum, m) => sum + Number(m[1]), 0);
  for (let last = -1, now = await reconciled(); now !== last; last = now, now = await reconciled())
    await new Promise((r) => setTimeout(r, 5000));
  const settledS = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 20_000));
  const metricsText = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const heap = Number(metricsText.match(/^nodejs_heap_size_used_bytes (\S+)/m)?.[1]) / 1024 / 1024;
  const cpu = Number(metricsText.match(/^process_cpu_seconds_total (\S+)/m)?.[1]);
  const line = `  ${variant.padEnd(56)} RSS ${op.memory("VmRSS").toFixed(0)} MB (peak ${op.memory("VmHWM").toFixed(0)}), JS heap ${heap.toFixed(0)} MB, CPU ${cpu.toFixed(1)} s, settled ${settledS.toFixed(0)} s`;
  console.error(`restart ${line}\n${memoryDetail(op.pid, metricsText)}`);
  restarts.push(line);
  await op.stop();
}
await cp.stop();
compileCacheDir?.remove();

const ratio = operatorSeconds / floorSeconds;
const ratioBig = operatorBigSeconds / floorBigSeconds;
console.log(`
reconciles per DraftTraining by result: ${reconciles}
API calls during the operator run (all clients, per DraftTraining):
${calls.map(([k, v]) => `  ${k.padEnd(40)} ${(v / N).toFixed(2)}`).join("\n")}

operator benchmark (${N} DraftTrainings applied at once; floor and operator both at ${WORKERS} concurrent writers;
operator run as node ${nodeArgs.join(" ")} with NODE_OPTIONS="${nodeOptions}" MALLOC_ARENA_MAX=${mallocArenas ?? "unset"} as in operator/Dockerfile, compile cache ${compileCache ? "warm" : "off"})
  floor: minimal client, the same API writes           ${floorSeconds.toFixed(2)} s
  operator: until every first-stage Job and status     ${operatorSeconds.toFixed(2)} s
  operator CPU during its run                          ${operatorCpu.toFixed(2)} s
  ratio operator / floor                               ${ratio.toFixed(2)}   (goal <= 1.5)
  operator peak RSS after the burst                    ${peakAfterBurst.toFixed(0)} MB
  operator JS heap used with ${IDLE} idle objects          ${heapUsedMb.toFixed(0)} MB
  operator RSS with ${IDLE} idle objects (+ ${N} active)     ${rssIdle.toFixed(0)} MB (peak ${peakIdle.toFixed(0)} MB, goal <= 200)

  ${N_BIG} at once: floor                                ${floorBigSeconds.toFixed(2)} s
  ${N_BIG} at once: operator                             ${operatorBigSeconds.toFixed(2)} s
  ratio operator / floor at ${N_BIG}                       ${ratioBig.toFixed(2)}   (goal <= 1.2)
  fresh operator, ${IDLE} idle objects, ${IDLE_WINDOW_S} s quiet: CPU       ${idleCpu.toFixed(2)} s (goal <= 0.5)
  ... its API writes in that time (audit log)          ${idleWrites.length} (goal 0)${idleWrites
    .slice(0, 3)
    .map((e) => `\n      ${e.verb} ${e.objectRef?.resource} ${e.objectRef?.name}`)
    .join("")}
  operator RSS with ${IDLE_BIG} idle objects               ${rssBig.toFixed(0)} MB (peak ${peakBig.toFixed(0)} MB, JS heap ${heapBigMb.toFixed(0)} MB, goal <= 200)
${memoryBreakdown}${restarts.length ? `\n  fresh operators on the ${IDLE_BIG} objects (BENCH_RESTART_VARIANTS):\n${restarts.join("\n")}` : ""}
`);
console.log(
  `BENCH operator ratio=${ratio.toFixed(2)} rss_mb_1000=${rssIdle.toFixed(0)} peak_rss_mb=${peakIdle.toFixed(0)} n=${N} floor_s=${floorSeconds.toFixed(2)} operator_s=${operatorSeconds.toFixed(2)} ratio_1000=${ratioBig.toFixed(2)} rss_mb_10000=${rssBig.toFixed(0)} idle_cpu_s=${idleCpu.toFixed(2)} idle_writes=${idleWrites.length}`,
);
