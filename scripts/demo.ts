// `npm run demo`: SpecOps end to end on this machine. A real kube-apiserver, etcd and
// kube-controller-manager (built from Go modules on first use), the operator, and a kubelet stand-in
// that runs each pod's runtime container as a local process (there is no container runtime here).
// A DraftTraining on the reference backend then really prepares data, regenerates answers with the
// tiny target, caches its hidden states and trains a draft; the demo finally measures the trained
// draft's acceptance against an untrained one with the runtime's eval task.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import yaml from "js-yaml";
import type { z } from "zod";
import type { DraftTraining, draftTrainingResource } from "../operator/src/api/kinds.ts";
import type { Result } from "../operator/src/contract/result.ts";
import { DraftTrainings } from "../operator/src/controllers/drafttraining/controller.ts";
import { KubeClient } from "../operator/src/lib/client.ts";
import { loadConfig } from "../operator/src/lib/config.ts";
import { createLogger } from "../operator/src/lib/log.ts";
import type { KubeObject } from "../operator/src/lib/rest.ts";
import { resource } from "../operator/src/lib/rest.ts";
import { buildOperator } from "../operator/src/operator.ts";

type DraftTrainingInput = z.input<typeof draftTrainingResource>;

import { freePort, startControlPlane } from "../test/controlplane/controlplane.ts";
import { ProcessKubelet } from "../test/controlplane/process-kubelet.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const step = (msg: string) => console.log(`\n== ${msg}`);

step("Python runtime environment (runtime/.venv; the first run downloads PyTorch)");
if (spawnSync("bash", [join(root, "runtime/scripts/setup-venv.sh")], { stdio: "inherit" }).status !== 0)
  process.exit(1);

step("Control plane: kube-apiserver, etcd, kube-controller-manager (built from Go modules on first use)");
const cp = await startControlPlane({ startTimeoutSeconds: 180 });
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

try {
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
  console.log(`CRDs installed. To look around meanwhile: export KUBECONFIG=${cp.kubeconfigPath}`);
  await new Promise((r) => setTimeout(r, 2000));

  step("Operator and the local-process kubelet");
  const progressPort = await freePort();
  const config = loadConfig([], {
    SPECOPS_PORT: "0",
    SPECOPS_LEADER_ELECT: "false",
    SPECOPS_RUNTIME_IMAGE: "specops-runtime:local",
  });
  const operator = buildOperator({
    connection: kc,
    config,
    logger: createLogger({ level: "error" }),
    progressPort,
  });
  await operator.start();
  cleanup.push(() => operator.stop());
  const kubelet = new ProcessKubelet(kc, {
    storageRoot: join(work, "pvc"),
    onOutput: (pod, line) => {
      if (process.env.SPECOPS_DEMO_VERBOSE) console.log(`  [${pod}] ${line}`);
    },
  });
  await kubelet.start();
  cleanup.push(() => kubelet.stop());

  step(
    "kubectl apply -f examples/tiny-drafttraining.yaml (without its evaluation gate: AcceptanceEval has no controller yet)",
  );
  // The manifest as a user writes it (defaults are the API server's job), edited for the demo.
  const dt = yaml.load(
    readFileSync(join(root, "examples/tiny-drafttraining.yaml"), "utf8"),
  ) as DraftTrainingInput;
  delete dt.spec.evaluation;
  dt.metadata.namespace = "default";
  dt.spec.progressInterval = "2s"; // read the training pod's progress often enough to watch it
  dt.spec.training = { ...dt.spec.training, maxSteps: 400 };
  await client.create(DraftTrainings, dt);

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
    if (Date.now() - started > 20 * 60_000)
      throw new Error("the demo DraftTraining did not finish in 20 minutes");
    await new Promise((r) => setTimeout(r, 1000));
  }
  const status = final?.status ?? {};
  for (const c of status.conditions ?? [])
    console.log(`  condition ${c.type}=${c.status} (${c.reason}) ${c.message}`);
  const checkpoint = status.checkpoint;
  if (status.stage !== "Succeeded" || !checkpoint) throw new Error("the DraftTraining failed");
  console.log(`  checkpoint: ${checkpoint.uri} (step ${checkpoint.step ?? "?"})`);

  step("Acceptance of the trained draft vs an untrained one of the same shape (runtime eval task)");
  const evals: Record<string, NonNullable<Result["evaluation"]>> = {};
  const drafts: [string, string][] = [
    ["trained", checkpoint.uri],
    ["untrained", "builtin://untrained-draft"],
  ];
  for (const [label, draft] of drafts) {
    const dir = join(work, `eval-${label}`);
    const task = {
      apiVersion: "runtime.specops.dev/v1",
      kind: "eval",
      backend: "reference",
      output: { path: dir },
      params: {
        target: dt.spec.target,
        draft: { uri: draft },
        method: dt.spec.method,
        tasks: ["tiny-math", "tiny-code", "tiny-chat"].map((name) => ({
          name,
          samples: 16,
          source: { uri: `builtin://${name}` },
        })),
        decoding: { maxNewTokens: 48, speculativeLength: dt.spec.draft?.blockSize },
        baseline: true,
      },
    };
    writeFileSync(join(work, `${label}.json`), JSON.stringify(task));
    const run = spawnSync(
      join(root, "runtime/.venv/bin/python"),
      ["-m", "specops_runtime.agent", "--task", join(work, `${label}.json`)],
      {
        cwd: join(root, "runtime"),
        env: {
          ...process.env,
          SPECOPS_PVC_ROOT: join(work, "pvc"),
          SPECOPS_TERMINATION_LOG: join(work, `${label}.term`),
          SPECOPS_PROGRESS_PORT: String(await freePort()),
        },
        encoding: "utf8",
      },
    );
    if (run.status !== 0)
      throw new Error(`eval of the ${label} draft exited ${run.status}: ${run.stderr.slice(-800)}`);
    evals[label] = JSON.parse(readFileSync(join(dir, "result.json"), "utf8")).evaluation;
  }
  console.log(
    "  task         trained tau   untrained tau   acceptance by position (trained)     speedup (trained, CPU)",
  );
  for (const r of evals.trained?.results ?? []) {
    const u = evals.untrained?.results.find((x) => x.name === r.name);
    const pos = (r.acceptanceByPosition ?? []).map((a: number) => a.toFixed(2)).join(" ");
    console.log(
      `  ${r.name.padEnd(12)} ${r.tau.toFixed(2).padStart(11)} ${(u?.tau.toFixed(2) ?? "-").padStart(15)}   ${pos.padEnd(36)} ${r.speedup?.toFixed(2) ?? "-"}`,
    );
  }
  console.log(
    `  macro tau: trained ${evals.trained?.summary?.macroTau.toFixed(2)}, untrained ${evals.untrained?.summary?.macroTau.toFixed(2)} (bonus token counted)`,
  );
  console.log(
    "  (The demo's 3-layer target is about as cheap as its draft, so speculation does not pay off on a CPU here;\n" +
      "   npm run bench -- runtime measures a deeper tiny target, where it does.)",
  );
  step("Done. Everything ran on this machine; nothing was downloaded but packages.");
  await shutdown(0);
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  await shutdown(1);
}
