// The project's Helm chart (charts/specops) installed with helm built from its Go module
// (build-helm.sh: helm.sh/helm/v4 at the version test/helm/go.mod pins, cached under
// ~/.cache/specops/helm-<version>-<go>). Used by the demo and the chart's real-node test to run the
// operator as the chart's Deployment, on the operator image, in a cluster whose pods reach the API
// server in-cluster (controlplane.ts options.inCluster).
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";

const here = dirname(fileURLToPath(import.meta.url));
export const CHART_DIR = join(here, "..", "..", "charts", "specops");

/** Whether helm is built already (else it needs go and a few minutes). */
export function helmCached(): boolean {
  return spawnSync("bash", [join(here, "build-helm.sh"), "--check"], { stdio: "ignore" }).status === 0;
}

/** Why helm cannot be had here, or undefined when it is built or can be. */
export function helmUnavailable(): string | undefined {
  if (helmCached()) return undefined;
  const go = spawnSync("go", ["version"], { stdio: "ignore" });
  if (go.error || go.status !== 0) return "go is not installed (helm is built from its module, test/helm)";
  return undefined;
}

/** Builds (once, a few minutes) or finds the cached helm; returns its path. */
export function helmBinary(): string {
  const built = spawnSync("bash", [join(here, "build-helm.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (built.status !== 0) throw new Error("test/helm/build-helm.sh failed (see its output above)");
  return built.stdout.trim().split("\n").at(-1) ?? "";
}

function run(helm: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(helm, args, { encoding: "utf8", timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`helm ${args[0]} failed: ${(stderr || stdout || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

export interface OperatorRelease {
  release: string;
  namespace: string;
  /** The Deployment's name (the chart's specops.fullname). */
  deployment: string;
  /** The Deployment's pods once it is rolled out (one per replica). */
  pods: V1Pod[];
  /** What `helm upgrade --install` printed first (its status line). */
  helmStatus: string;
  seconds: number;
  uninstall(): Promise<void>;
}

export interface OperatorChartOptions {
  kubeconfigPath: string;
  /** The chart's values (merged over values.yaml by helm; null removes a default). */
  values: Record<string, unknown>;
  release?: string;
  namespace?: string;
  timeoutSeconds?: number;
}

/**
 * `helm upgrade --install` of charts/specops, waiting (helm's --wait) until its resources are ready:
 * the CRDs established, the operator's Deployment rolled out with every pod passing its readiness
 * probe. On failure the error carries the operator pods' states, which say why.
 */
export async function installOperatorChart(
  kc: KubeConfig,
  opts: OperatorChartOptions,
): Promise<OperatorRelease> {
  const helm = helmBinary();
  const release = opts.release ?? "specops";
  const namespace = opts.namespace ?? "specops-system";
  const timeoutSeconds = opts.timeoutSeconds ?? 300;
  const scratch = mkdtempSync(join(tmpdir(), "specops-helm-"));
  const valuesFile = join(scratch, "values.json"); // JSON is YAML
  writeFileSync(valuesFile, JSON.stringify(opts.values));
  const t0 = Date.now();
  const common = ["--kubeconfig", opts.kubeconfigPath, "--namespace", namespace];
  try {
    const out = await run(
      helm,
      [
        "upgrade",
        "--install",
        release,
        CHART_DIR,
        ...common,
        "--create-namespace",
        "--values",
        valuesFile,
        // kstatus: the CRDs Established, the Deployment rolled out with its pods Ready.
        "--wait=watcher",
        "--timeout",
        `${timeoutSeconds}s`,
      ],
      (timeoutSeconds + 60) * 1000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await podStates(kc, namespace, release)}`);
    });
    const deployment = `${release}-operator`;
    const apps = kc.makeApiClient(AppsV1Api);
    const dep = await apps.readNamespacedDeployment({ name: deployment, namespace });
    const selector = Object.entries(dep.spec?.selector.matchLabels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const pods = (
      await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: selector })
    ).items.filter((p) => !p.metadata?.deletionTimestamp);
    return {
      release,
      namespace,
      deployment,
      pods,
      helmStatus:
        out
          .split("\n")
          .find((l) => l.startsWith("STATUS:"))
          ?.trim() ?? "",
      seconds: (Date.now() - t0) / 1000,
      uninstall: async () => {
        // Foreground: the Deployment's pods are gone when it returns.
        await run(
          helm,
          ["uninstall", release, ...common, "--cascade", "foreground", "--wait=watcher", "--timeout", "60s"],
          120_000,
        );
      },
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The release's pods in a line each: phase, readiness, restarts and the last reason. */
export async function podStates(kc: KubeConfig, namespace: string, release: string): Promise<string> {
  const pods = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/instance=${release}` })
    .catch(() => undefined);
  if (!pods || pods.items.length === 0) return `no pods of release ${release} in ${namespace}`;
  return pods.items
    .map((p) => {
      const c = p.status?.containerStatuses?.[0];
      const waiting = c?.state?.waiting;
      const last = c?.lastState?.terminated;
      return `pod ${p.metadata?.name}: ${p.status?.phase} ready=${c?.ready ?? false} restarts=${c?.restartCount ?? 0}${waiting ? ` waiting ${waiting.reason}: ${waiting.message ?? ""}` : ""}${last ? ` last exit ${last.exitCode} ${last.reason ?? ""}` : ""}${p.status?.conditions?.find((x) => x.type === "PodScheduled" && x.status === "False")?.message ?? ""}`;
    })
    .join("\n");
}
