// `npm run demo`: SpecOps end to end on this machine. A real kube-apiserver, etcd and
// kube-controller-manager (built from Go modules on first use), a node for the pods (demo-node.ts),
// and the operator: a real node — containerd, runc, kubelet, kube-scheduler and kube-proxy — running
// the pods as containers of the runtime's reference image and the operator as the Helm chart's
// Deployment (charts/specops, helm built from its module) on the operator image, talking to the API
// server in-cluster, where it can start here; else a stand-in that runs each pod's runtime container
// as a local process, with the operator a local process too; it says which and why.
// A DraftTraining on the reference backend then really prepares data, regenerates answers with the
// tiny target, caches its hidden states and trains a draft, and its evaluation gate measures it; the
// AcceptanceEval of examples/tiny-acceptanceeval.yaml then measures the trained draft against an
// untrained one, all through the operator; finally a SpecServe on the reference engine serves the
// trained draft and answers an OpenAI request through its Service.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import yaml from "js-yaml";
import type { z } from "zod";
import type { DraftTraining, draftTrainingResource } from "../operator/src/api/kinds.ts";
import { AcceptanceEvals } from "../operator/src/controllers/acceptanceeval/controller.ts";
import type { AcceptanceEvalStatus } from "../operator/src/controllers/acceptanceeval/decide.ts";
import { DraftTrainings } from "../operator/src/controllers/drafttraining/controller.ts";
import { SpecServes } from "../operator/src/controllers/specserve/controller.ts";
import { KubeClient } from "../operator/src/lib/client.ts";
import { loadConfig } from "../operator/src/lib/config.ts";
import { createLogger } from "../operator/src/lib/log.ts";
import type { KubeObject } from "../operator/src/lib/rest.ts";
import { resource } from "../operator/src/lib/rest.ts";
import { buildOperator } from "../operator/src/operator.ts";

type DraftTrainingInput = z.input<typeof draftTrainingResource>;

import { freePort, startControlPlane } from "../test/controlplane/controlplane.ts";
import { cpuMillis, DEMO_CONCURRENT_PODS, demoCpu } from "./demo-cpu.ts";
import {
  type ChartOperator,
  chartOperatorState,
  chooseNode,
  installChartOperator,
  startDemoNode,
} from "./demo-node.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const step = (msg: string) => console.log(`\n== ${msg}`);
const demoStarted = Date.now();

step("Python runtime environment (runtime/.venv; the first run downloads PyTorch)");
if (spawnSync("bash", [join(root, "runtime/scripts/setup-venv.sh")], { stdio: "inherit" }).status !== 0)
  process.exit(1);

step("Node: a real kubelet with containerd, or the local-process stand-in (SPECOPS_DEMO_NODE=real|process)");
const choice = (() => {
  try {
    return chooseNode(root, (line) => console.log(`  ${line}`));
  } catch (err) {
    console.error(`demo failed: ${(err as Error).message}`);
    process.exit(2);
  }
})();
console.log(
  choice.kind === "real"
    ? `  node: real (${choice.reason}); pods run as containers of the reference image, the operator as the chart's Deployment`
    : `  node: local processes (${choice.reason})`,
);

step("Control plane: kube-apiserver, etcd, kube-controller-manager (built from Go modules on first use)");
// A real node mounts claims: the volume binder and the host-path provisioner for the DraftTraining's;
// and its operator pod reaches the API server in-cluster (the `kubernetes` Service, its token and CA).
const real = choice.kind === "real";
const cp = await startControlPlane({ startTimeoutSeconds: 180, persistentVolumes: real, inCluster: real });
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
const client = new KubeClient(kc);
const work = mkdtempSync(join(tmpdir(), "specops-demo-"));
const cleanup: (() => Promise<void>)[] = [async () => cp.stop()];
const shutdown = async (code: number) => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
  process.exit(code);
};
process.once("SIGINT", () => void shutdown(130));

let chartOperator: ChartOperator | undefined;

try {
  // On the real node the chart installs the CRDs (its templates/crds, generated with crds/).
  if (!real) await installCrds();
  console.log(`To look around meanwhile: export KUBECONFIG=${cp.kubeconfigPath}`);

  step(
    real
      ? "Real node (containerd + runc, kubelet, kube-scheduler, kube-proxy), then the operator from the Helm chart"
      : "Local-process kubelet and the operator (a local process)",
  );
  const node = await startDemoNode(choice.kind, kc, {
    kubeconfigPath: cp.kubeconfigPath,
    storageRoot: join(work, "pvc"),
    log: (line) => console.log(`  ${line}`),
    verbose: Boolean(process.env.SPECOPS_DEMO_VERBOSE),
  });
  cleanup.push(() => node.stop());
  console.log(`  node takes pods after ${node.startSeconds.toFixed(1)}s; runtime image ${node.runtimeImage}`);
  // The demo's objects ask for no GPU (CPU-only reference backend), so no node advertises one.
  console.log("  no GPU: the demo's objects request none (gpusPerNode/gpus/gpusPerReplica: 0)");
  if (real) {
    console.log(
      "  helm upgrade --install specops charts/specops -n specops-system --create-namespace --wait",
    );
    chartOperator = await installChartOperator(kc, cp.kubeconfigPath);
    const op = chartOperator;
    cleanup.push(() => op.uninstall());
    console.log(
      `  ${op.helmStatus || "STATUS: deployed"}; the operator runs as the chart's Deployment ${op.namespace}/${op.deployment}, rolled out in ${op.seconds.toFixed(1)}s:`,
    );
    console.log(`    pod ${op.pod}  image ${op.image}  node ${op.nodeName}  pod IP ${op.podIP}`);
    console.log(
      `    leader: Lease ${op.namespace}/${op.lease.name} held by ${op.lease.holder}; the API server reached in-cluster (the \`kubernetes\` Service's ClusterIP through kube-proxy, the pod's service-account token and kube-root-ca.crt mounted by the kubelet)`,
    );
  } else {
    const progressPort = await freePort();
    const config = loadConfig([], {
      SPECOPS_PORT: "0",
      SPECOPS_LEADER_ELECT: "false",
      SPECOPS_RUNTIME_IMAGE: node.runtimeImage,
    });
    const operator = buildOperator({
      connection: kc,
      config,
      logger: createLogger({ level: "error" }),
      progressPort,
    });
    await operator.start();
    cleanup.push(() => operator.stop());
  }

  // The examples ask for 2 CPUs a pod; the demo's pods ask for at most a share of the node's CPUs, so
  // a DraftTraining stage and an AcceptanceEval run side by side on a 2-core laptop (demo-cpu.ts).
  const nodes = await kc.makeApiClient(CoreV1Api).listNode();
  const allocatable = Math.min(
    ...nodes.items.map((n) => cpuMillis(n.status?.allocatable?.cpu) ?? Number.POSITIVE_INFINITY),
  );
  const fitCpu = <T extends { spec: { resources?: { cpu?: string | number } } }>(obj: T): T => {
    if (obj.spec.resources?.cpu !== undefined && Number.isFinite(allocatable))
      obj.spec.resources.cpu = demoCpu(obj.spec.resources.cpu, allocatable);
    return obj;
  };
  if (Number.isFinite(allocatable) && demoCpu("2", allocatable) !== "2")
    console.log(
      `  pods ask for ${demoCpu("2", allocatable)} CPU where the examples ask for 2: ${DEMO_CONCURRENT_PODS} of the demo's pods run at once, on a node of ${allocatable / 1000} CPUs`,
    );

  step("kubectl apply -f examples/tiny-drafttraining.yaml (training, then its evaluation gate)");
  // The manifests as a user writes them (defaults are the API server's job), edited for the demo.
  const dt = yaml.load(
    readFileSync(join(root, "examples/tiny-drafttraining.yaml"), "utf8"),
  ) as DraftTrainingInput;
  dt.metadata.namespace = "default";
  dt.spec.progressInterval = "2s"; // read the training pod's progress often enough to watch it
  dt.spec.training = { ...dt.spec.training, maxSteps: 400 };
  dt.spec.evaluation = {
    tasks: (dt.spec.evaluation?.tasks ?? []).map((t) => ({ ...t, samples: 16 })),
    minTau: 1.2,
  };
  await client.create(DraftTrainings, fitCpu(dt));

  step(
    "kubectl apply -f examples/tiny-acceptanceeval.yaml (waits for the training), and the same eval of an untrained draft",
  );
  const ae = yaml.load(
    readFileSync(join(root, "examples/tiny-acceptanceeval.yaml"), "utf8"),
  ) as KubeObject & {
    metadata: { name: string };
    spec: Record<string, unknown>;
  };
  ae.metadata.namespace = "default";
  fitCpu(ae);
  await client.create(AcceptanceEvals, ae);
  const untrained = structuredClone(ae);
  untrained.metadata.name = "tiny-untrained-eval";
  untrained.spec.draft = { source: { uri: "builtin://untrained-draft" } };
  delete untrained.spec.gate;
  await client.create(AcceptanceEvals, untrained);

  let last = "";
  const started = Date.now();
  let final: DraftTraining | undefined;
  for (;;) {
    const obj = (await client.get(DraftTrainings, "default", dt.metadata.name ?? "")) as DraftTraining;
    const s = obj.status ?? {};
    const p = s.progress ?? {};
    const line = [
      `stage=${s.stage ?? "-"}`,
      p.step !== undefined ? `step=${p.step}/${p.totalSteps ?? "?"}` : "",
      p.loss !== undefined ? `loss=${p.loss}` : "",
      p.tauEstimate !== undefined ? `tau~${p.tauEstimate}` : "",
      p.message ? `(${String(p.message).slice(0, 60)})` : "",
    ]
      .filter(Boolean)
      .join(" ");
    if (line !== last) console.log(`  ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s  ${line}`);
    last = line;
    if (s.stage === "Succeeded" || s.stage === "Failed") {
      final = obj;
      break;
    }
    if (Date.now() - started > 45 * 60_000)
      throw new Error("the demo DraftTraining did not finish in 45 minutes");
    await new Promise((r) => setTimeout(r, 1000));
  }
  const status = final?.status ?? {};
  for (const c of status.conditions ?? [])
    console.log(`  condition ${c.type}=${c.status} (${c.reason}) ${c.message}`);
  const checkpoint = status.checkpoint;
  if (status.stage !== "Succeeded" || !checkpoint) throw new Error("the DraftTraining failed");
  console.log(`  checkpoint: ${checkpoint.uri} (step ${checkpoint.step ?? "?"})`);
  console.log(
    `  evaluation gate (AcceptanceEval ${status.evaluation?.acceptanceEval}): macro tau ${status.evaluation?.macroTau}, passed: ${status.evaluation?.passed}`,
  );
  await printPods(kc, "default");

  step("kubectl get ae: the trained draft vs an untrained one of the same shape, measured by the operator");
  const done: Record<string, AcceptanceEvalStatus> = {};
  for (const name of [ae.metadata.name, untrained.metadata.name]) {
    for (;;) {
      const s = ((await client.get(AcceptanceEvals, "default", name)) as { status?: AcceptanceEvalStatus })
        .status;
      if (s?.phase === "Succeeded" || s?.phase === "Failed") {
        done[name] = s;
        break;
      }
      if (Date.now() - started > 60 * 60_000) throw new Error(`AcceptanceEval ${name} did not finish`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  console.log("  NAME                     PHASE       DRAFT                       TAU     VERDICT");
  for (const [name, s] of Object.entries(done)) {
    console.log(
      `  ${name.padEnd(24)} ${String(s.phase).padEnd(11)} ${String(s.draft?.name ?? "-").padEnd(27)} ${String(s.summary?.macroTau ?? "-").padEnd(7)} ${s.gate?.verdict ?? "-"}`,
    );
    const failed = s.conditions?.find((c) => c.type === "Succeeded" && c.status === "False");
    if (failed) throw new Error(`AcceptanceEval ${name} failed: ${failed.message}`);
  }
  const trained = done[ae.metadata.name];
  const baseline = done[untrained.metadata.name];
  console.log(
    "\n  task         trained tau   untrained tau   acceptance by position (trained)     speedup (trained, CPU)",
  );
  for (const r of trained?.results ?? []) {
    const u = baseline?.results?.find((x) => x.name === r.name);
    const pos = (r.acceptanceByPosition ?? []).map((a: number) => a.toFixed(2)).join(" ");
    console.log(
      `  ${r.name.padEnd(12)} ${r.tau.toFixed(2).padStart(11)} ${(u?.tau.toFixed(2) ?? "-").padStart(15)}   ${pos.padEnd(36)} ${r.speedup?.toFixed(2) ?? "-"}`,
    );
  }
  console.log(
    `  macro tau: trained ${trained?.summary?.macroTau.toFixed(2)}, untrained ${baseline?.summary?.macroTau.toFixed(2)} (bonus token counted)`,
  );
  console.log(
    "  (The demo's 3-layer target is about as cheap as its draft, so speculation does not pay off on a CPU here;\n" +
      "   npm run bench -- runtime measures a deeper tiny target, where it does.)",
  );
  step(
    "kubectl apply -f examples/tiny-specserve.yaml: the trained draft served, an OpenAI request to its Service",
  );
  const ss = yaml.load(readFileSync(join(root, "examples/tiny-specserve.yaml"), "utf8")) as KubeObject & {
    metadata: { name: string; namespace?: string };
    spec: { resources?: { cpu?: string | number } };
  };
  ss.metadata.namespace = "default";
  await client.create(SpecServes, fitCpu(ss));
  const serveStarted = Date.now();
  for (;;) {
    const obj = (await client.get(SpecServes, "default", ss.metadata.name)) as KubeObject & {
      status?: { state?: string; readyReplicas?: number; replicas?: number; draft?: string };
    };
    const st = obj.status ?? {};
    if (st.state === "Ready") {
      console.log(
        `  kubectl get ss: replicas=${st.replicas} ready=${st.readyReplicas} draft=${st.draft} state=${st.state}`,
      );
      break;
    }
    if (Date.now() - serveStarted > 5 * 60_000)
      throw new Error(`the SpecServe is not Ready: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const addr = await node.serviceAddress("default", ss.metadata.name, "openai");
  console.log(`  Service ${ss.metadata.name}: ${addr.host}:${addr.port}, reached through ${addr.via}`);
  const base = `http://${addr.host}:${addr.port}`;
  let text: string | undefined;
  for (let i = 0; i < 120 && text === undefined; i++) {
    try {
      const res = await fetch(`${base}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "builtin://tiny-qwen3",
          prompt: "Question: 12 + 7 =",
          max_tokens: 32,
          temperature: 0,
        }),
      });
      if (res.ok) text = ((await res.json()) as { choices: { text: string }[] }).choices[0]?.text;
    } catch {
      // the engine is still loading
    }
    if (text === undefined) await new Promise((r) => setTimeout(r, 1000));
  }
  if (text === undefined) throw new Error("the SpecServe's Service did not answer");
  console.log(`  POST ${ss.metadata.name}:8000/v1/completions -> ${JSON.stringify(text)}`);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const counter = (name: string) =>
    Number(metrics.match(new RegExp(`^${name}\\{[^}]*\\} ([0-9.e+]+)$`, "m"))?.[1] ?? 0);
  const rounds = counter("vllm:spec_decode_num_drafts_total");
  const accepted = counter("vllm:spec_decode_num_accepted_tokens_total");
  console.log(
    `  /metrics: ${rounds} verification rounds, tau ${rounds ? (1 + accepted / rounds).toFixed(2) : "-"}`,
  );
  // The operator scrapes the pod once per measurement window (spec.autoscaling.window) and writes
  // status.signals: the Tau column of kubectl get ss. Once it holds a first scrape, one more request
  // surely falls into a measured window.
  const signalsStarted = Date.now();
  for (;;) {
    const obj = (await client.get(SpecServes, "default", ss.metadata.name)) as KubeObject & {
      status?: { conditions?: { type: string; status: string }[] };
    };
    if (obj.status?.conditions?.some((c) => c.type === "MetricsAvailable" && c.status === "True")) break;
    if (Date.now() - signalsStarted > 60_000) throw new Error("the operator did not scrape the pod");
    await new Promise((r) => setTimeout(r, 1000));
  }
  const again = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "builtin://tiny-qwen3",
      prompt: "Question: 3 + 4 =",
      max_tokens: 32,
      temperature: 0,
    }),
  });
  if (!again.ok) throw new Error(`the second request failed: HTTP ${again.status}`);
  for (;;) {
    const obj = (await client.get(SpecServes, "default", ss.metadata.name)) as KubeObject & {
      status?: {
        state?: string;
        readyReplicas?: number;
        replicas?: number;
        draft?: string;
        signals?: { tau?: number; rounds?: number; window?: string };
      };
    };
    const st = obj.status ?? {};
    if (st.signals?.tau !== undefined) {
      console.log(
        `  kubectl get ss: replicas=${st.replicas} ready=${st.readyReplicas} draft=${st.draft} tau=${st.signals.tau} state=${st.state}` +
          ` (status.signals over ${st.signals.rounds} rounds in a ${st.signals.window} window)`,
      );
      break;
    }
    if (Date.now() - signalsStarted > 3 * 60_000) throw new Error("status.signals.tau did not appear");
    await new Promise((r) => setTimeout(r, 2000));
  }

  await printPods(kc, "default");
  if (chartOperator) await printPods(kc, chartOperator.namespace);
  step("Done. Everything ran on this machine; nothing was downloaded but packages.");
  console.log(
    `  demo wall time ${((Date.now() - demoStarted) / 1000).toFixed(0)}s on the ${node.kind === "real" ? "real node, the operator as the chart's Deployment" : "local-process kubelet, the operator a local process"} (node start ${node.startSeconds.toFixed(1)}s${chartOperator ? `, operator rolled out ${chartOperator.seconds.toFixed(1)}s` : ""})`,
  );
  await shutdown(0);
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  if (real)
    console.error(
      await chartOperatorState(
        kc,
        chartOperator ?? { namespace: "specops-system", release: "specops" },
      ).catch(() => ""),
    );
  await shutdown(1);
}

/** The CRDs from crds/, applied server-side (what `kubectl apply --server-side -f crds/` does). */
async function installCrds(): Promise<void> {
  const CRDs = resource(
    "apiextensions.k8s.io/v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    false,
  );
  for (const file of ["drafttrainings", "acceptanceevals", "specserves"]) {
    const crd = yaml.load(readFileSync(join(root, `crds/${file}.specops.dev.yaml`), "utf8")) as KubeObject & {
      metadata: { name: string };
    };
    await client.patch(CRDs, undefined, crd.metadata.name, crd, {
      type: "apply",
      fieldManager: "specops-demo",
      force: true,
    });
  }
  console.log("CRDs installed.");
  await new Promise((r) => setTimeout(r, 2000));
}

/** kubectl get pods -o wide, in short: where each pod ran, as what, and how it ended. */
async function printPods(kc: KubeConfig, namespace: string): Promise<void> {
  const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
  console.log(`  pods in ${namespace} (kubectl get pods -n ${namespace} -o wide):`);
  for (const pod of pods.items) {
    const c = pod.status?.containerStatuses?.[0];
    const state = c?.state?.terminated
      ? `exited ${c.state.terminated.exitCode}`
      : c?.state?.running
        ? `running${c.ready ? ", ready" : ""}`
        : (pod.status?.phase ?? "-");
    console.log(
      `    ${String(pod.metadata?.name).padEnd(40)} ${state.padEnd(16)} node=${pod.spec?.nodeName ?? "-"} ip=${pod.status?.podIP ?? "-"} ${c?.containerID ? c.containerID.slice(0, 25) : real ? "(no container yet)" : "(a local process)"}`,
    );
  }
}
