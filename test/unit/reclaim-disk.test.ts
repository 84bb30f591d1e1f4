// scripts/reclaim-disk.sh, run for real in a sandbox: every path it may touch (the project's cache,
// the user's caches, Go's build cache, the scratch folders) is a temp dir, and podman's store is left
// alone (SPECOPS_RECLAIM_PODMAN=0), so nothing of this machine's is removed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it } from "vitest";

const script = join(dirname(fileURLToPath(import.meta.url)), "../../scripts/reclaim-disk.sh");
let sandbox: string;
const at = (...p: string[]) => join(sandbox, ...p);

function touchOld(path: string, minutesAgo: number): void {
  const t = new Date(Date.now() - minutesAgo * 60_000);
  utimesSync(path, t, t);
}

function makeDir(path: string, minutesAgo = 0): string {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, "file"), "x");
  if (minutesAgo > 0) touchOld(path, minutesAgo);
  return path;
}

/** A process id that no process has: spawn one and let it finish. */
function deadPid(): number {
  const done = spawnSync("true");
  return done.pid ?? 999_999;
}

function run(args: string[], minFreeGb: number) {
  return spawnSync("bash", [script, ...args], {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      HOME: at("home"),
      XDG_CACHE_HOME: at("home", ".cache"),
      GOCACHE: at("home", ".cache", "go-build"),
      GOMODCACHE: at("home", "go", "pkg", "mod"),
      GOFLAGS: "-mod=mod",
      SPECOPS_CACHE_DIR: at("home", ".cache", "specops"),
      TMPDIR: at("tmp"),
      SPECOPS_PODMAN_TMP: at("var-tmp"),
      SPECOPS_RECLAIM_PODMAN: "0",
      SPECOPS_MIN_FREE_GB: String(minFreeGb),
    },
  });
}

beforeEach(() => {
  sandbox = mkdtempSync(join(tmpdir(), "reclaim-disk-test-"));
});
afterEach(() => rmSync(sandbox, { recursive: true, force: true }));

it("removes what earlier runs left and keeps what a run still uses or will read", () => {
  const cache = at("home", ".cache", "specops");
  const deadBuild = makeDir(join(cache, `controlplane-k8s-v1.36.3.partial.${deadPid()}`));
  const liveBuild = makeDir(join(cache, `prometheus-v0.316.0.partial.${process.pid}`));
  const built = makeDir(join(cache, "controlplane-k8s-v1.36.3"));
  const halfImport = makeDir(join(cache, "node-containerd", "import-abc123"));
  const store = makeDir(join(cache, "node-containerd", "root"));
  const staleScratch = makeDir(at("tmp", "specops-cp-old"), 600);
  const freshScratch = makeDir(at("tmp", "specops-cp-now"));
  const otherTmp = makeDir(at("tmp", "someone-elses"), 600);
  const staleBuildah = makeDir(at("var-tmp", "buildah123"), 600);
  const staleLayerCopy = makeDir(at("var-tmp", "storage123"), 600);
  const staleGoBuild = makeDir(at("tmp", "go-build123"), 600);
  const freshBuildah = makeDir(at("var-tmp", "buildah456"));
  const pipCache = makeDir(at("home", ".cache", "pip"));

  const r = run([], 0);
  expect(r.status, r.stderr).toBe(0);
  for (const gone of [deadBuild, halfImport, staleScratch, staleBuildah, staleLayerCopy, staleGoBuild])
    expect(existsSync(gone), gone).toBe(false);
  for (const kept of [liveBuild, built, store, freshScratch, otherTmp, freshBuildah, pipCache])
    expect(existsSync(kept), kept).toBe(true);
  expect(r.stderr).toMatch(/removing .*partial.*is gone/);
  expect(r.stderr).toMatch(/1 scratch folder\(s\) older than 180 min/);
});

it("keeps the real node's half-done imports while its store is in use", () => {
  const store = join(at("home", ".cache", "specops"), "node-containerd");
  const halfImport = makeDir(join(store, "import-abc123"));
  writeFileSync(join(store, "owner.pid"), String(process.pid));
  expect(run([], 0).status).toBe(0);
  expect(existsSync(halfImport)).toBe(true);
});

it("drops rebuildable caches, cheapest first, only while the disk is short, and says so", () => {
  const cache = at("home", ".cache", "specops");
  const pipCache = makeDir(at("home", ".cache", "pip"));
  const npmCache = makeDir(at("home", ".npm", "_cacache"));
  // Go's build cache keeps its entries in folders named by two hex digits.
  const goBuild = makeDir(at("home", ".cache", "go-build", "ab"));
  const goModules = makeDir(at("home", "go", "pkg", "mod", "example.com", "m@v1.0.0"));
  const store = makeDir(join(cache, "node-containerd", "root"));
  const built = makeDir(join(cache, "controlplane-k8s-v1.36.3"));

  // Far more than any disk has free: every tier runs, and the run is still let go on.
  const short = run([], 10_000_000);
  expect(short.status, short.stderr).toBe(0);
  for (const gone of [pipCache, npmCache, store]) expect(existsSync(gone), gone).toBe(false);
  // go clean empties its caches (where the go command is here).
  if (spawnSync("go", ["version"]).status === 0) {
    expect(existsSync(goBuild)).toBe(false);
    expect(existsSync(goModules)).toBe(false);
  }
  expect(existsSync(built)).toBe(true);
  const order = ["pip's cache", "npm's cache", "containerd store"].map((what) => short.stderr.indexOf(what));
  expect(order.every((i) => i >= 0)).toBe(true);
  expect([...order].sort((a, b) => a - b)).toEqual(order);
  expect(short.stderr).toMatch(/still under 10000000 GB free/);
});

it("touches nothing with --report, or when the disk has room", () => {
  const cache = at("home", ".cache", "specops");
  const deadBuild = makeDir(join(cache, `x.partial.${deadPid()}`));
  const pipCache = makeDir(at("home", ".cache", "pip"));
  const report = run(["--report"], 10_000_000);
  expect(report.status).toBe(0);
  expect(report.stderr).toMatch(/free: \d+ GB under/);
  expect(existsSync(deadBuild) && existsSync(pipCache)).toBe(true);

  expect(run([], 0).status).toBe(0);
  expect(existsSync(pipCache)).toBe(true);
  expect(existsSync(deadBuild)).toBe(false);
});
