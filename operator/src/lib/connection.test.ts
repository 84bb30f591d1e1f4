import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConnectionError, connect, connectionFromKubeconfigFile, loadConnection } from "./connection.ts";

function kubeconfig(user: object, cluster: object = { server: "https://10.0.0.1:6443/" }): string {
  const dir = mkdtempSync(join(tmpdir(), "kc-"));
  const file = join(dir, "config");
  writeFileSync(
    file,
    JSON.stringify({
      "current-context": "c",
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
      clusters: [{ name: "k", cluster }],
      users: [{ name: "u", user }],
    }),
  );
  return file;
}

describe("kubeconfig connections", () => {
  it("uses the current context's server and bearer token", async () => {
    const c = connectionFromKubeconfigFile(kubeconfig({ token: "abc" }));
    expect(c.server).toBe("https://10.0.0.1:6443");
    expect(await c.headers()).toEqual({ authorization: "Bearer abc" });
  });

  it("reads a token file relative to the kubeconfig, and basic auth", async () => {
    const file = kubeconfig({ tokenFile: "token" });
    writeFileSync(join(file, "..", "token"), "from-file\n");
    expect(await connectionFromKubeconfigFile(file).headers()).toEqual({ authorization: "Bearer from-file" });
    const basic = connectionFromKubeconfigFile(kubeconfig({ username: "a", password: "b" }));
    expect(await basic.headers()).toEqual({
      authorization: `Basic ${Buffer.from("a:b").toString("base64")}`,
    });
  });

  it("refuses auth-provider plugins and unknown exec apiVersions with a clear message", () => {
    const file = kubeconfig({ "auth-provider": { name: "oidc" } });
    expect(() => connectionFromKubeconfigFile(file)).toThrow(ConnectionError);
    expect(() => connectionFromKubeconfigFile(file)).toThrow(/auth-provider plugin.*use an exec plugin/);
    const old = kubeconfig({ exec: { apiVersion: "client.authentication.k8s.io/v1alpha1", command: "aws" } });
    expect(() => connectionFromKubeconfigFile(old)).toThrow(/v1alpha1" is not supported/);
  });

  it("names a missing context", () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    writeFileSync(join(dir, "config"), JSON.stringify({ "current-context": "nope", contexts: [] }));
    expect(() => connectionFromKubeconfigFile(join(dir, "config"))).toThrow(/context "nope" not found/);
  });

  it("follows $KUBECONFIG outside a pod, and says when there is nothing to use", () => {
    const file = kubeconfig({ token: "t" });
    expect(loadConnection({ KUBECONFIG: file }).server).toBe("https://10.0.0.1:6443");
    expect(() => loadConnection({ KUBECONFIG: "/nonexistent/config" })).toThrow(
      /no kubeconfig at \/nonexistent\/config/,
    );
  });
});

/** An exec credential plugin: a real script that logs each run and prints an ExecCredential. */
function execPlugin(dir: string, token: string, expiresInS: number | undefined): string {
  const script = join(dir, "plugin.sh");
  const status =
    expiresInS === undefined
      ? `{"token":"${token}"}`
      : `{"token":"${token}","expirationTimestamp":"'"$(date -u -d "@$(( $(date +%s) + ${expiresInS} ))" +%Y-%m-%dT%H:%M:%SZ)"'"}`;
  writeFileSync(
    script,
    `#!/bin/sh\necho "$KUBERNETES_EXEC_INFO" >> "${join(dir, "runs")}"\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":${status}}'\n`,
  );
  chmodSync(script, 0o755);
  return script;
}

const runs = (dir: string) =>
  existsSync(join(dir, "runs")) ? readFileSync(join(dir, "runs"), "utf8").trim().split("\n") : [];

describe("exec credential plugins (client.authentication.k8s.io/v1)", () => {
  it("runs the plugin once and caches its token until expirationTimestamp", async () => {
    const file = kubeconfig({
      exec: { apiVersion: "client.authentication.k8s.io/v1", command: "./plugin.sh" },
    });
    const dir = join(file, "..");
    execPlugin(dir, "tok-1", 3600); // relative command: resolved against the kubeconfig's directory
    const c = connectionFromKubeconfigFile(file);
    const all = await Promise.all([c.headers(), c.headers(), c.headers()]);
    expect(await c.headers()).toEqual({ authorization: "Bearer tok-1" });
    expect(all.every((h) => h.authorization === "Bearer tok-1")).toBe(true);
    expect(runs(dir)).toHaveLength(1);
    expect(JSON.parse(runs(dir)[0] as string)).toMatchObject({
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      spec: { interactive: false },
    });
  });

  it("runs it again once the credential has expired", async () => {
    const file = kubeconfig({
      exec: { apiVersion: "client.authentication.k8s.io/v1", command: "./plugin.sh" },
    });
    const dir = join(file, "..");
    execPlugin(dir, "short", -1); // already expired when printed
    const c = connectionFromKubeconfigFile(file);
    await c.headers();
    await c.headers();
    expect(runs(dir)).toHaveLength(2);
  });

  it("says which plugin failed", async () => {
    const file = kubeconfig({
      exec: { apiVersion: "client.authentication.k8s.io/v1", command: "/bin/false" },
    });
    await expect(connectionFromKubeconfigFile(file).headers()).rejects.toThrow(
      /exec plugin "\/bin\/false" failed/,
    );
  });
});

describe("KUBECONFIG lists and --context (kubectl's merge)", () => {
  it("merges two files: the context in one, cluster and user in the other; first definition wins", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    const a = join(dir, "a.yaml");
    const b = join(dir, "sub", "b.yaml");
    mkdirSync(join(dir, "sub"));
    writeFileSync(
      a,
      JSON.stringify({
        "current-context": "dev",
        contexts: [{ name: "dev", context: { cluster: "k", user: "u" } }],
        users: [{ name: "other", user: { token: "from-a" } }],
      }),
    );
    writeFileSync(
      b,
      JSON.stringify({
        "current-context": "prod", // ignored: a.yaml set it first
        contexts: [
          { name: "prod", context: { cluster: "k2", user: "other" } },
          { name: "dev", context: { cluster: "k2", user: "other" } }, // a.yaml's dev wins
        ],
        clusters: [
          { name: "k", cluster: { server: "https://k.example:6443" } },
          { name: "k2", cluster: { server: "https://k2.example:6443" } },
        ],
        users: [
          { name: "u", user: { tokenFile: "tok" } }, // relative to b.yaml's directory
          { name: "other", user: { token: "from-b" } },
        ],
      }),
    );
    writeFileSync(join(dir, "sub", "tok"), "file-token");
    const env = { KUBECONFIG: `${a}:${join(dir, "missing.yaml")}:${b}` };
    const dev = loadConnection(env);
    expect(dev.server).toBe("https://k.example:6443");
    expect(await dev.headers()).toEqual({ authorization: "Bearer file-token" });
    const prod = loadConnection(env, { context: "prod" });
    expect(prod.server).toBe("https://k2.example:6443");
    expect(await prod.headers()).toEqual({ authorization: "Bearer from-a" });
    expect(() => loadConnection(env, { context: "nope" })).toThrow(/context "nope" not found/);
  });
});

describe("client certificate files", () => {
  it("re-reads rotated certificate files: a new pool with the new certificate", () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    writeFileSync(join(dir, "tls.crt"), "cert-1");
    writeFileSync(join(dir, "tls.key"), "key-1");
    const c = connect({
      server: "https://10.0.0.1:6443",
      certFile: join(dir, "tls.crt"),
      keyFile: join(dir, "tls.key"),
      fileCheckIntervalMs: 0,
    });
    const first = c.dispatcher;
    expect(c.dispatcher).toBe(first); // unchanged files: same pool
    writeFileSync(join(dir, "tls.crt"), "cert-2");
    utimesSync(join(dir, "tls.crt"), new Date(), new Date(Date.now() + 5000));
    expect(c.dispatcher).not.toBe(first);
  });
});
