import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { createSecureServer as createHttp2Server } from "node:http2";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { describe, expect, it } from "vitest";
import { KubeClient } from "./client.ts";
import { ConnectionError, connect, connectionFromKubeconfigFile, loadConnection } from "./connection.ts";
import { ConfigMaps } from "./rest.ts";

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

/** A test CA, a server certificate for 127.0.0.1 and two client certificates, made with openssl. */
function testPki(dir: string) {
  const sh = (cmd: string) => execFileSync("bash", ["-c", cmd], { cwd: dir, stdio: "pipe" });
  const key = (name: string) => `-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${name}.key`;
  sh(`openssl req -x509 ${key("ca")} -out ca.crt -subj /CN=test-ca -days 1`);
  const sign = (name: string, cn: string, ext: string) =>
    sh(
      `openssl req ${key(name)} -out ${name}.csr -subj /CN=${cn} && printf '${ext}' > ${name}.ext && ` +
        `openssl x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out ${name}.crt -days 1 -extfile ${name}.ext`,
    );
  sign("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1");
  sign("client-1", "client-1", "extendedKeyUsage=clientAuth");
  sign("client-2", "client-2", "extendedKeyUsage=clientAuth");
  const read = (f: string) => readFileSync(join(dir, f));
  return { ca: read("ca.crt"), server: { cert: read("server.crt"), key: read("server.key") }, read };
}

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("client certificate files", () => {
  it.skipIf(!hasOpenssl)(
    "presents the rotated client certificate once the files change (real mTLS)",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "pki-"));
      const pki = testPki(dir);
      // The server answers with the common name of the certificate the client presented.
      const server = createHttpsServer(
        { ...pki.server, ca: pki.ca, requestCert: true, rejectUnauthorized: true },
        (req, res) => {
          const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
          res.end(JSON.stringify({ metadata: { name: cn } }));
        },
      );
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      try {
        writeFileSync(join(dir, "tls.crt"), pki.read("client-1.crt"));
        writeFileSync(join(dir, "tls.key"), pki.read("client-1.key"));
        const client = new KubeClient(
          connect({
            server: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
            ca: pki.ca,
            certFile: join(dir, "tls.crt"),
            keyFile: join(dir, "tls.key"),
            fileCheckIntervalMs: 0,
          }),
        );
        expect((await client.get(ConfigMaps, "ns", "x")).metadata?.name).toBe("client-1");
        writeFileSync(join(dir, "tls.crt"), pki.read("client-2.crt")); // cert-manager renews the Secret
        writeFileSync(join(dir, "tls.key"), pki.read("client-2.key"));
        const later = new Date(Date.now() + 5000);
        utimesSync(join(dir, "tls.crt"), later, later);
        expect((await client.get(ConfigMaps, "ns", "x")).metadata?.name).toBe("client-2");
      } finally {
        server.closeAllConnections();
        server.close();
      }
    },
  );

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

describe("protocol", () => {
  it.skipIf(!hasOpenssl)(
    "speaks HTTP/1.1 to a server that offers HTTP/2 too (resetting HTTP/2 streams could spin node's nghttp2)",
    async () => {
      const pki = testPki(mkdtempSync(join(tmpdir(), "pki-")));
      // Like the kube-apiserver: HTTP/2 by ALPN, HTTP/1.1 for clients that do not ask for it.
      const server = createHttp2Server({ ...pki.server, allowHTTP1: true }, (req, res) => {
        res.end(JSON.stringify({ metadata: { name: `http-${req.httpVersion}` } }));
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      try {
        const client = new KubeClient(
          connect({ server: `https://127.0.0.1:${(server.address() as { port: number }).port}`, ca: pki.ca }),
        );
        expect((await client.get(ConfigMaps, "ns", "x")).metadata?.name).toBe("http-1.1");
      } finally {
        server.close();
      }
    },
  );
});
