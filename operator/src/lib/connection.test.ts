import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConnectionError, connectionFromKubeconfigFile, loadConnection } from "./connection.ts";

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
  it("uses the current context's server and bearer token", () => {
    const c = connectionFromKubeconfigFile(kubeconfig({ token: "abc" }));
    expect(c.server).toBe("https://10.0.0.1:6443");
    expect(c.headers()).toEqual({ authorization: "Bearer abc" });
  });

  it("reads a token file relative to the kubeconfig, and basic auth", () => {
    const file = kubeconfig({ tokenFile: "token" });
    writeFileSync(join(file, "..", "token"), "from-file\n");
    expect(connectionFromKubeconfigFile(file).headers()).toEqual({ authorization: "Bearer from-file" });
    const basic = connectionFromKubeconfigFile(kubeconfig({ username: "a", password: "b" }));
    expect(basic.headers()).toEqual({ authorization: `Basic ${Buffer.from("a:b").toString("base64")}` });
  });

  it("refuses exec plugins with a clear message", () => {
    const file = kubeconfig({ exec: { command: "aws" } });
    expect(() => connectionFromKubeconfigFile(file)).toThrow(ConnectionError);
    expect(() => connectionFromKubeconfigFile(file)).toThrow(/exec or auth-provider plugin/);
  });

  it("names a missing current context", () => {
    const dir = mkdtempSync(join(tmpdir(), "kc-"));
    writeFileSync(join(dir, "config"), JSON.stringify({ "current-context": "nope", contexts: [] }));
    expect(() => connectionFromKubeconfigFile(join(dir, "config"))).toThrow(
      /current-context "nope" not found/,
    );
  });

  it("follows $KUBECONFIG outside a pod, and says when there is nothing to use", () => {
    const file = kubeconfig({ token: "t" });
    expect(loadConnection({ KUBECONFIG: file }).server).toBe("https://10.0.0.1:6443");
    expect(() => loadConnection({ KUBECONFIG: "/nonexistent/config" })).toThrow(
      /no kubeconfig at \/nonexistent\/config/,
    );
  });
});
