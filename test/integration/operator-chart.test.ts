// The Helm chart (charts/specops) installed with helm built from its module (test/helm) on a real
// node (real-node.ts): the operator as the chart's Deployment, on the operator image imported into
// the node's containerd, talking to the API server in-cluster (its service-account token and the
// kube-root-ca.crt CA mounted by the kubelet, the `kubernetes` Service's ClusterIP routed by
// kube-proxy: controlplane.ts options.inCluster). It runs as the image's non-root user on a read-only
// root filesystem, passes its probes under the real kubelet, takes the leader-election Lease, and
// reconciles a DraftTraining. Its own control plane; opt-in (SPECOPS_REAL_NODE=1; the other
// real-node tests run wherever the node can start), skipped saying why where the node or helm cannot be had.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { AppsV1Api, CoordinationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.ts";
import { type RealNode, realNodeUnavailable, startRealNode } from "../controlplane/real-node.ts";
import { example } from "../fixtures/examples.ts";
import { helmUnavailable, installOperatorChart, type OperatorRelease, podStates } from "../helm/helm.ts";
import { imagesConfig } from "../images/podman.ts";
import { kubeRequest } from "./kube.ts";
import { until } from "./operator-harness.ts";

const { operatorImage, referenceImage } = imagesConfig();
// Opt-in (SPECOPS_REAL_NODE=1), where the e2e tests use the real node by default: it keeps `npm test` short.
const unavailable = realNodeUnavailable([operatorImage], { requireOptIn: true }) ?? helmUnavailable();
if (unavailable) console.warn(`operator chart tests skipped: ${unavailable}`);

const NS = "chart-e2e";
const IMAGE_UID = 65532; // operator/Dockerfile: USER 65532:65532

describe.skipIf(unavailable !== undefined)(
  "the chart's operator Deployment on a real node (helm upgrade --install, in-cluster API access)",
  () => {
    const kc = new KubeConfig();
    let cp: ControlPlane | undefined;
    let node: RealNode | undefined;
    let release: OperatorRelease | undefined;

    beforeAll(async () => {
      cp = await startControlPlane({ inCluster: true, startTimeoutSeconds: 120 });
      kc.loadFromFile(cp.kubeconfigPath);
      node = await startRealNode({
        kubeconfigPath: cp.kubeconfigPath,
        images: [operatorImage],
        log: (line) => console.log(line),
      });
      release = await installOperatorChart(kc, {
        kubeconfigPath: cp.kubeconfigPath,
        values: {
          operator: { image: operatorImage, replicas: 1, leaderElect: true, namespaces: [NS] },
          runtime: { image: referenceImage },
        },
        timeoutSeconds: 180,
      });
      await kc
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: NS } } })
        .catch(() => undefined);
    }, 600_000); // helm's first build takes minutes

    afterAll(async () => {
      if (release) console.log(await podStates(kc, release.namespace, release.release));
      await release?.uninstall().catch((err) => console.warn(`helm uninstall: ${(err as Error).message}`));
      await node?.stop();
      await cp?.stop();
    }, 180_000);

    const operatorPod = async () => {
      if (!release) throw new Error("the chart is not installed");
      const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({
        namespace: release.namespace,
        labelSelector: `app.kubernetes.io/instance=${release.release}`,
      });
      const pod = pods.items.find((p) => !p.metadata?.deletionTimestamp);
      if (!pod) throw new Error("no operator pod");
      return pod;
    };

    it("rolls out the Deployment from the operator image on the node, ready under the real kubelet's probes", async () => {
      if (!release || !node) throw new Error("no release");
      const dep = await kc
        .makeApiClient(AppsV1Api)
        .readNamespacedDeployment({ name: release.deployment, namespace: release.namespace });
      expect(dep.status?.readyReplicas).toBe(1);
      const pod = await operatorPod();
      expect(pod.spec?.nodeName).toBe(node.nodeName);
      expect(pod.spec?.containers[0]?.image).toBe(operatorImage);
      expect(pod.spec?.serviceAccountName).toBe(release.deployment);
      const status = pod.status?.containerStatuses?.[0];
      expect(status?.ready).toBe(true); // the readiness probe (/readyz: caches synced) passed
      expect(status?.restartCount).toBe(0); // and the liveness probe (/healthz) never failed
      expect(status?.containerID).toMatch(/^containerd:\/\//);
      // Its metrics from this machine, at the pod's IP on the node's bridge.
      const metrics = await (await fetch(`http://${pod.status?.podIP}:8080/metrics`)).text();
      expect(metrics).toContain("controller_runtime_reconcile_total");
    });

    it("runs as the image's non-root user on a read-only root filesystem (the kernel's view)", async () => {
      if (!node) throw new Error("no node");
      const pod = await operatorPod();
      const id = pod.status?.containerStatuses?.[0]?.containerID?.replace("containerd://", "") ?? "";
      const tasks = spawnSync(
        "ctr",
        ["-a", join(node.dir, "containerd.sock"), "-n", "k8s.io", "tasks", "ls"],
        {
          encoding: "utf8",
        },
      );
      const pid = tasks.stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .find((f) => f[0] === id)?.[1];
      expect(pid, `no task ${id} in containerd:\n${tasks.stdout}`).toBeDefined();
      const procStatus = readFileSync(`/proc/${pid}/status`, "utf8");
      expect(procStatus).toMatch(
        new RegExp(`^Uid:\\s+${IMAGE_UID}\\s+${IMAGE_UID}\\s+${IMAGE_UID}\\s+${IMAGE_UID}$`, "m"),
      );
      // mountinfo: mount point "/" with its per-mount options ("ro,...").
      const root = readFileSync(`/proc/${pid}/mountinfo`, "utf8")
        .split("\n")
        .map((l) => l.split(" "))
        .find((f) => f[4] === "/");
      expect(root?.[5]?.split(",")).toContain("ro");
    });

    it("reaches the API server in-cluster with its service-account token and holds the leader Lease", async () => {
      if (!release || !cp) throw new Error("no release");
      const pod = await operatorPod();
      const env = pod.spec?.containers[0]?.env ?? [];
      expect(env.map((e) => e.name)).toContain("POD_NAME");
      const projected = pod.spec?.volumes?.find((v) => v.projected)?.projected?.sources ?? [];
      expect(projected.some((s) => s.serviceAccountToken)).toBe(true);
      expect(projected.some((s) => s.configMap?.name === "kube-root-ca.crt")).toBe(true);
      // The `kubernetes` Service's endpoint is the control plane's in-cluster address.
      const slices = await kubeRequest(
        kc,
        "GET",
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes",
      );
      const addresses = slices.body.items.flatMap((s: any) => s.endpoints.flatMap((e: any) => e.addresses));
      expect(addresses).toContain(cp.clusterAddress);
      const lease = await until("the operator's leader Lease", async () => {
        const l = await kc
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: "specops-operator", namespace: release?.namespace ?? "" })
          .catch(() => undefined);
        return l?.spec?.holderIdentity ? l : undefined;
      });
      expect(lease.spec?.holderIdentity).toContain(pod.metadata?.name ?? "-");
    });

    it("reconciles a DraftTraining: status with observedGeneration and its first Job", async () => {
      const dt = example("tiny-drafttraining.yaml");
      dt.metadata = { name: "from-the-chart", namespace: NS };
      const created = await kubeRequest(
        kc,
        "POST",
        `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings`,
        dt,
      );
      expect(created.body?.message).toBeUndefined();
      const status = await until(
        "the DraftTraining's status from the chart's operator",
        async () => {
          const got = await kubeRequest(
            kc,
            "GET",
            `/apis/specops.dev/v1alpha1/namespaces/${NS}/drafttrainings/from-the-chart`,
          );
          return got.body?.status?.conditions?.length ? got.body.status : undefined;
        },
        60_000,
      );
      expect(status.observedGeneration).toBe(1);
      const jobs = await kubeRequest(kc, "GET", `/apis/batch/v1/namespaces/${NS}/jobs`);
      expect(jobs.body.items.map((j: any) => j.metadata.name).join(" ")).toContain("from-the-chart");
      const pod = await operatorPod();
      const metrics = await (await fetch(`http://${pod.status?.podIP}:8080/metrics`)).text();
      const reconciles = metrics
        .split("\n")
        .filter((l) => l.startsWith("controller_runtime_reconcile_total{") && /drafttraining/i.test(l))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
      expect(reconciles).toBeGreaterThan(0);
      // No request of the operator was refused: the chart's ClusterRole covers what it did (its log,
      // as the kubelet wrote it; the node serves no log API to the control plane).
      const logDir = `/var/log/pods/${pod.metadata?.namespace}_${pod.metadata?.name}_${pod.metadata?.uid}/operator`;
      const log = readdirSync(logDir)
        .map((f) => readFileSync(join(logDir, f), "utf8"))
        .join("");
      expect(log).toContain('"msg":"became leader"');
      expect(log).not.toMatch(/forbidden/i);
    });
  },
);
