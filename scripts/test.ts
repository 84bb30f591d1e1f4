// `npm test`: every check CI runs, in order, continuing past failures so one run shows them all.
// Exits non-zero when any step failed.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

interface Step {
  name: string;
  command: string[];
  /** Skip (with a note) when this file is absent. */
  needs?: string;
}

const python = "runtime/.venv/bin/python";
const steps: Step[] = [
  { name: "lint (biome)", command: ["biome", "check", "."] },
  { name: "typecheck (tsc)", command: ["tsc", "--noEmit", "-p", "."] },
  { name: "generated CRDs and RBAC up to date", command: ["node", "operator/src/generate.ts", "--check"] },
  {
    name: "generated runtime contract up to date",
    command: ["node", "operator/src/contract/generate.ts", "--check"],
    needs: "operator/src/contract/generate.ts",
  },
  {
    name: "python environment (runtime/.venv)",
    command: ["bash", "runtime/scripts/setup-venv.sh"],
    needs: "runtime/scripts/setup-venv.sh",
  },
  {
    name: "python lint and format (ruff)",
    command: ["bash", "-c", "cd runtime && .venv/bin/ruff check . && .venv/bin/ruff format --check ."],
    needs: "runtime/requirements-dev.txt",
  },
  {
    name: "Dockerfile lint (hadolint)",
    command: [
      "runtime/.venv/bin/hadolint",
      "operator/Dockerfile",
      "runtime/Dockerfile",
      "scripts/images/python-base.Containerfile",
      "scripts/images/node-base.Containerfile",
      "scripts/images/engine-stand-in-base.Containerfile",
    ],
    needs: "runtime/.venv/bin/hadolint",
  },
  { name: "unit, integration and image tests (vitest)", command: ["vitest", "run"] },
  {
    name: "runtime tests (pytest)",
    command: [python, "-m", "pytest", "-q", "runtime/tests"],
    needs: "runtime/tests",
  },
];

const results: { name: string; status: "passed" | "failed" | "skipped"; seconds: number }[] = [];
for (const step of steps) {
  if (step.needs && !existsSync(step.needs)) {
    results.push({ name: step.name, status: "skipped", seconds: 0 });
    continue;
  }
  console.log(`\n=== ${step.name}: ${step.command.join(" ")}`);
  const started = Date.now();
  const [cmd, ...args] = step.command;
  const run = spawnSync(cmd ?? "", args, { stdio: "inherit" });
  const ok = run.status === 0;
  results.push({ name: step.name, status: ok ? "passed" : "failed", seconds: (Date.now() - started) / 1000 });
}

console.log("\n=== summary");
for (const r of results) console.log(`${r.status.padEnd(7)} ${r.seconds.toFixed(1).padStart(7)}s  ${r.name}`);
const failed = results.filter((r) => r.status === "failed").length;
process.exit(failed > 0 ? 1 : 0);
