import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";
import { parseDuration } from "./time.ts";

describe("loadConfig", () => {
  it("has validated defaults", () => {
    const c = loadConfig([], {});
    expect(c).toMatchObject({
      namespaces: [],
      port: 8080,
      leaderElect: true,
      leaseName: "specops-operator",
      leaseNamespace: "specops-system",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      logLevel: "info",
      progressPollIntervalMs: 30_000,
      shutdownTimeoutMs: 30_000,
      workers: 2,
    });
  });

  it("reads env vars, and flags win over them", () => {
    const env = {
      SPECOPS_WATCH_NAMESPACES: "a, b,a",
      SPECOPS_PORT: "9090",
      POD_NAMESPACE: "ops",
      SPECOPS_LOG_LEVEL: "debug",
    };
    expect(loadConfig([], env)).toMatchObject({
      namespaces: ["a", "b"],
      port: 9090,
      leaseNamespace: "ops",
      logLevel: "debug",
    });
    const c = loadConfig(
      ["--port=7000", "--namespaces", "x", "--no-leader-elect", "--progress-poll-interval=1m30s"],
      env,
    );
    expect(c).toMatchObject({
      port: 7000,
      namespaces: ["x"],
      leaderElect: false,
      progressPollIntervalMs: 90_000,
    });
    expect(loadConfig(["--leader-elect", "--port", "1"], { SPECOPS_LEADER_ELECT: "false" }).leaderElect).toBe(
      true,
    );
  });

  it.each([
    [["--port=http"], {}, /--port \/ SPECOPS_PORT \(from --port\).*got "http"/],
    [[], { SPECOPS_PORT: "70000" }, /--port \/ SPECOPS_PORT \(from env SPECOPS_PORT\)/],
    [["--namespaces=Team_A"], {}, /--namespaces.*DNS-1123/],
    [["--log-level=loud"], {}, /--log-level \/ SPECOPS_LOG_LEVEL/],
    [[], { SPECOPS_PROGRESS_POLL_INTERVAL: "soon" }, /--progress-poll-interval.*duration like 30s/],
    [["--renew-deadline=20s"], {}, /--renew-deadline.*shorter than --lease-duration/],
    [["--colour"], {}, /unknown flag --colour/],
    [["--port"], {}, /--port needs a value/],
    [["stray"], {}, /unexpected argument "stray"/],
  ])("rejects %j %j naming the setting", (argv, env, message) => {
    expect(() => loadConfig(argv, env as Record<string, string>)).toThrow(ConfigError);
    expect(() => loadConfig(argv, env as Record<string, string>)).toThrow(message);
  });

  it("reports every bad value at once", () => {
    try {
      loadConfig(["--port=x", "--max-concurrent-reconciles=0"], {});
      expect.unreachable();
    } catch (err) {
      expect(String(err)).toMatch(/--port[\s\S]*--max-concurrent-reconciles/);
    }
  });
});

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
    ["", undefined],
    ["30", undefined],
    ["3x", undefined],
    ["s", undefined],
  ])("%s → %s", (s, ms) => expect(parseDuration(s)).toBe(ms));

  it("reads the API deadlines and the kubeconfig context", () => {
    const c = loadConfig(["--request-timeout=5s", "--context", "kind-dev"], {
      SPECOPS_WATCH_INACTIVITY_TIMEOUT: "90s",
      SPECOPS_CACHE_SYNC_TIMEOUT: "1m",
    });
    expect(c).toMatchObject({
      requestTimeoutMs: 5000,
      connectTimeoutMs: 10_000,
      watchInactivityTimeoutMs: 90_000,
      cacheSyncTimeoutMs: 60_000,
      kubeContext: "kind-dev",
    });
    expect(() => loadConfig(["--request-timeout=0s"], {})).toThrow(
      /--request-timeout \/ SPECOPS_REQUEST_TIMEOUT/,
    );
  });
});
