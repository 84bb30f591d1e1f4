// A pod of the runtime's reference image on a real node (real-node.ts: containerd + runc, CNI bridge,
// kubelet, kube-scheduler and kube-proxy from the pinned module, CoreDNS from its module): placed by the scheduler, its env from a real
// Secret, its termination message written in the container and read by the real kubelet; a Service
// reached through kube-proxy and by its DNS names through CoreDNS; a claim provisioned and mounted. Its own control plane (with the volume
// binder, which the shared one leaves off). Skipped, saying why, where the node cannot start (not
// root, no containerd, images or node binaries not built, SPECOPS_REAL_NODE=0).

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type CoreV1Event, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ControlPlane, startControlPlane } from "../controlplane/controlplane.ts";
import { HOST_PATH_PV_ROOT, HOST_PATH_STORAGE_CLASS } from "../controlplane/hostpath-pv.ts";
import { clusterIPRoutes } from "../controlplane/kube-proxy-rules.ts";
import { type RealNode, startRealNode } from "../controlplane/real-node.ts";
import { imagesConfig } from "../images/podman.ts";
import { realNodeUnavailableForTests } from "./e2e-node.ts";

const { referenceImage } = imagesConfig();
const unavailable = realNodeUnavailableForTests([referenceImage]);
if (unavailable && process.env.SPECOPS_REAL_NODE === "1")
  throw new Error(`SPECOPS_REAL_NODE=1, but the real node cannot start: ${unavailable}`);
if (unavailable) console.warn(`real-node tests skipped: ${unavailable}`);

const NS = "real-node-e2e";
// The reference image plus one layer of its own, new each run: imported as that layer only.
const PROBE_IMAGE = "localhost/specops-runtime:import-probe";
const probeToken = `probe-${process.pid}-${Date.now()}`;

function buildProbeImage(): void {
  const ctx = mkdtempSync(join(tmpdir(), "specops-probe-"));
  try {
    writeFileSync(join(ctx, "probe"), probeToken);
    writeFileSync(join(ctx, "Containerfile"), `FROM ${referenceImage}\nCOPY probe /opt/specops/probe\n`);
    const built = spawnSync("podman", ["build", "--pull=never", "-q", "-t", PROBE_IMAGE, ctx], {
      encoding: "utf8",
    });
    if (built.status !== 0) throw new Error(`podman build of the probe image: ${built.stderr}`);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}
const IMAGE_UID = 10001; // runtime/Dockerfile: useradd --uid 10001

async function waitForEnd(core: CoreV1Api, name: string, timeoutMs: number): Promise<V1Pod> {
  const deadline = Date.now() + timeoutMs;
  let pod = await core.readNamespacedPod({ name, namespace: NS });
  while (Date.now() < deadline && pod.status?.phase !== "Succeeded" && pod.status?.phase !== "Failed") {
    await new Promise((r) => setTimeout(r, 500));
    pod = await core.readNamespacedPod({ name, namespace: NS });
  }
  return pod;
}

describe.skipIf(unavailable !== undefined)("a real node (containerd, kubelet, kube-scheduler)", () => {
  const kc = new KubeConfig();
  let core: CoreV1Api;
  let node: RealNode | undefined;
  let cp: ControlPlane | undefined;

  beforeAll(async () => {
    cp = await startControlPlane({ persistentVolumes: true, startTimeoutSeconds: 120 });
    kc.loadFromFile(cp.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    buildProbeImage();
    node = await startRealNode({
      kubeconfigPath: cp.kubeconfigPath,
      images: [referenceImage, PROBE_IMAGE],
      log: (line) => console.log(line),
    });
    await core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => undefined);
  }, 1_800_000); // the first run imports the 7 GB reference image into containerd

  afterAll(async () => {
    await core?.deleteNamespace({ name: NS }).catch(() => undefined);
    if (node)
      spawnSync(
        "ctr",
        ["-a", join(node.dir, "containerd.sock"), "-n", "k8s.io", "images", "rm", PROBE_IMAGE],
        {
          stdio: "ignore",
        },
      );
    await node?.stop();
    await cp?.stop();
    spawnSync("podman", ["rmi", PROBE_IMAGE], { stdio: "ignore" });
  }, 120_000);

  it("runs a reference-image pod placed by the scheduler, with env from a Secret and a termination message read by the kubelet", async () => {
    if (!node) throw new Error("no node");
    const secretValue = `s3cr3t-${Date.now()}`;
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "token" }, stringData: { token: secretValue } },
    });
    // The container proves what it saw without printing the secret: its digest, its user, its Python.
    const script = [
      "import hashlib, json, os, sys",
      "t = os.environ['SPECOPS_TEST_TOKEN'].encode()",
      "m = {'tokenSha256': hashlib.sha256(t).hexdigest(), 'uid': os.getuid(), 'python': sys.version.split()[0]}",
      "open('/dev/termination-log', 'w').write(json.dumps(m))",
    ].join("\n");
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "tiny-task" },
        spec: {
          restartPolicy: "Never",
          // Other test files leave fake nodes behind; this pod is for the real one, placed by the scheduler.
          nodeSelector: { "kubernetes.io/hostname": node.nodeName },
          containers: [
            {
              name: "runtime",
              image: referenceImage,
              imagePullPolicy: "Never",
              command: ["python3", "-c", script],
              env: [
                { name: "SPECOPS_TEST_TOKEN", valueFrom: { secretKeyRef: { name: "token", key: "token" } } },
              ],
              terminationMessagePolicy: "File",
            },
          ],
        },
      },
    });
    let pod: V1Pod | undefined;
    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline) {
      pod = await core.readNamespacedPod({ name: "tiny-task", namespace: NS });
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const state = pod?.status?.containerStatuses?.[0]?.state?.terminated;
    if (pod?.status?.phase !== "Succeeded") {
      const events = await core.listNamespacedEvent({ namespace: NS });
      const seen = events.items.map((e) => `${e.reason}: ${e.message}`).join("\n");
      throw new Error(
        `pod not Succeeded: ${JSON.stringify(pod?.status)}\nevents:\n${seen}\nkubelet:\n${node.logTail("kubelet")}\ncontainerd:\n${node.logTail("containerd")}`,
      );
    }
    expect(pod?.spec?.nodeName).toBe(node.nodeName);
    expect(state?.exitCode).toBe(0);
    // A real container ID from containerd, and a pod IP from the node's CNI bridge, not the host's.
    expect(pod?.status?.containerStatuses?.[0]?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(pod?.status?.podIP).toMatch(/^10\.2\d\d\./);
    const message = JSON.parse(state?.message ?? "{}");
    expect(message).toMatchObject({
      tokenSha256: createHash("sha256").update(secretValue).digest("hex"),
      uid: IMAGE_UID,
    });
    // Placed by kube-scheduler, not bound by a stand-in.
    const events = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: "involvedObject.name=tiny-task",
    });
    const scheduled = events.items.find((e: CoreV1Event) => e.reason === "Scheduled");
    expect(scheduled?.source?.component ?? scheduled?.reportingComponent).toBe("default-scheduler");
  });

  it("reaches a pod through its Service's ClusterIP (kube-proxy, iptables mode)", async () => {
    if (!node) throw new Error("no node");
    const placement = { nodeSelector: { "kubernetes.io/hostname": node.nodeName } };
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "web", labels: { app: "web" } },
        spec: {
          ...placement,
          containers: [
            {
              name: "web",
              image: referenceImage,
              imagePullPolicy: "Never",
              // Serves a file naming itself, so the client shows it reached this pod.
              command: [
                "sh",
                "-c",
                "mkdir -p /tmp/w && echo served-by-$HOSTNAME > /tmp/w/id && exec python3 -m http.server 8080 -d /tmp/w",
              ],
              ports: [{ containerPort: 8080 }],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const svc = await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: "web" },
        spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    const clusterIP = svc.spec?.clusterIP ?? "";
    expect(clusterIP).toMatch(/^10\.0\.0\./);
    // Ready behind the Service (a real readiness probe by the kubelet), then fetched from another pod.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const web = await core.readNamespacedPod({ name: "web", namespace: NS });
      if (web.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`web not Ready: ${JSON.stringify(web.status)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    // kube-proxy's nat rules send the ClusterIP to the Ready pod (what the e2e tests wait for before
    // their first request from the host), and a new connection from the host gets there.
    const podIP = (await core.readNamespacedPod({ name: "web", namespace: NS })).status?.podIP;
    let routes: string[] = [];
    for (let i = 0; i < 60 && !routes.includes(`${podIP}:8080`); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 500));
      routes = clusterIPRoutes(clusterIP, 80);
    }
    expect(routes, node.logTail("kube-proxy")).toEqual([`${podIP}:8080`]);
    const fromHost = await fetch(`http://${clusterIP}/id`, { dispatcher: new Agent({ pipelining: 0 }) });
    expect((await fromHost.text()).trim()).toBe("served-by-web");
    const fetchScript = [
      "import time, urllib.request",
      "last = ''",
      "for _ in range(40):",
      "    try:",
      `        last = urllib.request.urlopen('http://${clusterIP}/id', timeout=2).read().decode().strip(); break`,
      "    except Exception as e:",
      "        last = repr(e); time.sleep(0.5)",
      "open('/dev/termination-log', 'w').write(last)",
    ].join("\n");
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "client" },
        spec: {
          ...placement,
          restartPolicy: "Never",
          containers: [
            {
              name: "client",
              image: referenceImage,
              imagePullPolicy: "Never",
              command: ["python3", "-c", fetchScript],
            },
          ],
        },
      },
    });
    const client = await waitForEnd(core, "client", 40_000);
    const message = client.status?.containerStatuses?.[0]?.state?.terminated?.message;
    expect(message, `${JSON.stringify(client.status)}\nkube-proxy:\n${node.logTail("kube-proxy")}`).toBe(
      "served-by-web",
    );
  });

  it("resolves a Service's DNS names through CoreDNS (full and short), reaches it by name, and resolves nothing outside the cluster", async () => {
    if (!node?.dns) throw new Error("no node, or no cluster DNS on it");
    const placement = { nodeSelector: { "kubernetes.io/hostname": node.nodeName } };
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "named", labels: { app: "named" } },
        spec: {
          ...placement,
          containers: [
            {
              name: "web",
              image: referenceImage,
              imagePullPolicy: "Never",
              command: [
                "sh",
                "-c",
                "mkdir -p /tmp/w && echo served-by-$HOSTNAME > /tmp/w/id && exec python3 -m http.server 8080 -d /tmp/w",
              ],
              ports: [{ containerPort: 8080 }],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const svc = await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: "named-svc" },
        spec: { selector: { app: "named" }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    const fqdn = `named-svc.${NS}.svc.${node.dns.domain}`;
    // The client names the Service only: its resolv.conf (from the kubelet's clusterDNS) does the rest.
    const script = [
      "import json, socket, time, urllib.request",
      "out = {'resolv': open('/etc/resolv.conf').read()}",
      "for _ in range(60):",
      "    try:",
      `        out['fqdn'] = socket.gethostbyname('${fqdn}')`,
      "        out['short'] = socket.gethostbyname('named-svc')",
      "        out['body'] = urllib.request.urlopen('http://named-svc/id', timeout=2).read().decode().strip()",
      "        break",
      "    except Exception as e:",
      "        out['error'] = repr(e); time.sleep(0.5)",
      "try:",
      "    out['outside'] = socket.gethostbyname('pypi.org')",
      "except socket.gaierror as e:",
      "    out['outside'] = 'gaierror'",
      "open('/dev/termination-log', 'w').write(json.dumps(out))",
    ].join("\n");
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "dns-client" },
        spec: {
          ...placement,
          restartPolicy: "Never",
          containers: [
            {
              name: "client",
              image: referenceImage,
              imagePullPolicy: "Never",
              command: ["python3", "-c", script],
            },
          ],
        },
      },
    });
    const client = await waitForEnd(core, "dns-client", 90_000);
    const seen = JSON.parse(client.status?.containerStatuses?.[0]?.state?.terminated?.message ?? "{}");
    const context = `${JSON.stringify(seen)}\ncoredns:\n${node.logTail("coredns")}\nkube-proxy:\n${node.logTail("kube-proxy")}`;
    // The kubelet's resolv.conf for a ClusterFirst pod: the kube-dns ClusterIP, the namespace's search list.
    expect(seen.resolv, context).toMatch(
      new RegExp(`^nameserver ${node.dns.clusterIP.replaceAll(".", "\\.")}$`, "m"),
    );
    expect(seen.resolv).toMatch(
      new RegExp(`^search ${NS}\\.svc\\.cluster\\.local svc\\.cluster\\.local cluster\\.local`, "m"),
    );
    expect(seen.fqdn, context).toBe(svc.spec?.clusterIP);
    expect(seen.short).toBe(svc.spec?.clusterIP);
    expect(seen.body).toBe("served-by-named");
    // Nothing outside cluster.local is forwarded anywhere.
    expect(seen.outside).toBe("gaierror");
  });

  it("binds a claim to a host-path volume of the default StorageClass, written by one pod as the image's user and read by the next", async () => {
    if (!node) throw new Error("no node");
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: {
        metadata: { name: "data" },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
      },
    });
    const withClaim = (name: string, script: string) => ({
      metadata: { name },
      spec: {
        nodeSelector: { "kubernetes.io/hostname": node?.nodeName ?? "" },
        restartPolicy: "Never",
        containers: [
          {
            name: "runtime",
            image: referenceImage,
            imagePullPolicy: "Never",
            command: ["python3", "-c", script],
            volumeMounts: [{ name: "data", mountPath: "/mnt/specops/pvc/data" }],
          },
        ],
        volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }],
      },
    });
    const token = `written-${Date.now()}`;
    await core.createNamespacedPod({
      namespace: NS,
      body: withClaim("writer", `open('/mnt/specops/pvc/data/out.txt', 'w').write('${token}')`),
    });
    const writer = await waitForEnd(core, "writer", 60_000);
    expect(writer.status?.phase, JSON.stringify(writer.status)).toBe("Succeeded");
    await core.createNamespacedPod({
      namespace: NS,
      body: withClaim(
        "reader",
        "open('/dev/termination-log', 'w').write(open('/mnt/specops/pvc/data/out.txt').read())",
      ),
    });
    const reader = await waitForEnd(core, "reader", 60_000);
    expect(reader.status?.containerStatuses?.[0]?.state?.terminated?.message).toBe(token);
    // Bound by the binder to a volume the in-tree provisioner made on this host, in the default class.
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: "data", namespace: NS });
    expect(claim.status?.phase).toBe("Bound");
    expect(claim.spec?.storageClassName).toBe(HOST_PATH_STORAGE_CLASS);
    const pv = await core.readPersistentVolume({ name: claim.spec?.volumeName ?? "" });
    const dir = pv.spec?.hostPath?.path ?? "";
    expect(dir.startsWith(`${HOST_PATH_PV_ROOT}/`)).toBe(true);
    const file = join(dir, "out.txt");
    expect(readFileSync(file, "utf8")).toBe(token);
    expect(statSync(file).uid).toBe(IMAGE_UID);
  });

  it("imports a rebuilt image as its new layer only, and runs it", async () => {
    if (!node) throw new Error("no node");
    const probeImport = node.imports[PROBE_IMAGE];
    expect(probeImport?.mode).toBe("layers");
    // Its own layer, and the reference image's code layers when those came in compressed (a layer
    // import stores new layers gzipped, under a digest the next image's layer list does not name):
    // megabytes, not the 7.6 GB of the whole image.
    expect(probeImport?.bytes).toBeLessThan(50e6);
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "probe" },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": node.nodeName },
          restartPolicy: "Never",
          containers: [
            {
              name: "probe",
              image: PROBE_IMAGE,
              imagePullPolicy: "Never",
              // The new layer's file, and the agent's package from the layers below it.
              command: [
                "python3",
                "-c",
                "import specops_runtime.agent as a; open('/dev/termination-log', 'w').write(open('/opt/specops/probe').read() + ' ' + a.__name__)",
              ],
            },
          ],
        },
      },
    });
    const probe = await waitForEnd(core, "probe", 60_000);
    expect(probe.status?.containerStatuses?.[0]?.state?.terminated?.message).toBe(
      `${probeToken} specops_runtime.agent`,
    );
  });

  // Last: it replaces the node. A container left in the store pins its image's snapshots (gigabytes
  // for the reference image) from containerd's garbage collection, run after run.
  it("clears at start the containers a node killed mid-way left in containerd's store, and runs pods after", async () => {
    if (!node || !cp) throw new Error("no node");
    const sleeper = (name: string, seconds: number): V1Pod => ({
      metadata: { name },
      spec: {
        nodeSelector: { "kubernetes.io/hostname": node?.nodeName ?? "" },
        restartPolicy: "Never",
        terminationGracePeriodSeconds: 0,
        containers: [
          {
            name: "main",
            image: referenceImage,
            imagePullPolicy: "Never",
            command: ["python3", "-c", `import time; time.sleep(${seconds})`],
          },
        ],
      },
    });
    await core.createNamespacedPod({ namespace: NS, body: sleeper("left-running", 600) });
    const deadline = Date.now() + 60_000;
    while (
      (await core.readNamespacedPod({ name: "left-running", namespace: NS })).status?.phase !== "Running"
    ) {
      if (Date.now() > deadline) throw new Error(`left-running not Running:\n${node.logTail("kubelet")}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const left = node.containers();
    expect(left.length).toBeGreaterThanOrEqual(2); // the pod's sandbox and its container
    const crashed = node.dir;
    await node.crash();
    // Nothing of it runs on: no shim of its containerd, and so no container.
    expect(spawnSync("pgrep", ["-f", "--", `-address ${crashed}/`]).status).toBe(1);
    // No kubelet ends it now: the API's record goes by force.
    await core.deleteNamespacedPod({ name: "left-running", namespace: NS, gracePeriodSeconds: 0 });

    const lines: string[] = [];
    node = await startRealNode({
      kubeconfigPath: cp.kubeconfigPath,
      images: [referenceImage, PROBE_IMAGE],
      log: (line) => {
        lines.push(line);
        console.log(line);
      },
    });
    expect(lines.join("\n")).toMatch(/removed the containers a node killed earlier left/);
    expect(node.containers().filter((id) => left.includes(id))).toEqual([]);
    await core.createNamespacedPod({ namespace: NS, body: sleeper("after-restart", 0) });
    const after = await waitForEnd(core, "after-restart", 60_000);
    expect(after.status?.phase, node.logTail("kubelet")).toBe("Succeeded");
  }, 300_000);
});
