// Out-of-cluster kubeconfigs against the real kube-apiserver: an exec credential plugin (a real
// script printing the control plane's token) reached through a local HTTP CONNECT proxy
// (proxy-url), from a KUBECONFIG list of two files (context in one, cluster and user in the other).
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigMaps, KubeClient, loadConnection } from "../../operator/src/lib/index.ts";
import { startConnectProxy } from "../support/connect-proxy.ts";
import { ensureNamespace, kubeConfig } from "./kube.ts";

const NS = "lib-kubeconfig";

describe("kubeconfig on the real control plane", () => {
  it("authenticates with an exec plugin (cached) through a CONNECT proxy, from a merged KUBECONFIG", async () => {
    const admin = kubeConfig();
    await ensureNamespace(admin, NS);
    const cluster = admin.getCurrentCluster();
    const dir = mkdtempSync(join(tmpdir(), "kc-int-"));
    const plugin = join(dir, "plugin.sh");
    const expires = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
    writeFileSync(
      plugin,
      `#!/bin/sh\necho run >> "${join(dir, "runs")}"\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${admin.getCurrentUser()?.token}","expirationTimestamp":"${expires}"}}'\n`,
    );
    chmodSync(plugin, 0o755);

    const proxy = await startConnectProxy();
    const { tunnels, url: proxyUrl } = proxy;

    const contexts = join(dir, "contexts.yaml");
    const clusters = join(dir, "clusters.yaml");
    writeFileSync(
      contexts,
      JSON.stringify({
        "current-context": "dev",
        contexts: [{ name: "dev", context: { cluster: "cp", user: "exec-user" } }],
      }),
    );
    writeFileSync(
      clusters,
      JSON.stringify({
        clusters: [
          {
            name: "cp",
            cluster: {
              server: cluster?.server,
              "certificate-authority-data": cluster?.caData,
              "proxy-url": proxyUrl,
            },
          },
        ],
        users: [
          {
            name: "exec-user",
            user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "./plugin.sh" } },
          },
        ],
      }),
    );
    try {
      const client = new KubeClient(loadConnection({ KUBECONFIG: `${contexts}:${clusters}` }));
      for (let i = 0; i < 3; i++) {
        await client
          .create(ConfigMaps, {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name: `cm-${i}`, namespace: NS },
          })
          .catch((err: { code?: number }) => {
            if (err.code !== 409) throw err;
          });
      }
      const list = await client.list(ConfigMaps, NS);
      expect(list.items.map((o) => o.metadata?.name)).toEqual(
        expect.arrayContaining(["cm-0", "cm-1", "cm-2"]),
      );
      expect(readFileSync(join(dir, "runs"), "utf8").trim().split("\n")).toHaveLength(1); // cached
      expect(tunnels.length).toBeGreaterThanOrEqual(1);
      expect(tunnels.every((t) => t === new URL(cluster?.server ?? "").host)).toBe(true);
    } finally {
      proxy.close();
    }
  });
});
